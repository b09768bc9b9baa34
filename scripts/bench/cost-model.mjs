// What a fleet costs to run on Cloudflare, from the counts a benchmark measured (fleet-sim's
// `counts`, recorded by serve.mjs --count through counting-entry.mjs) and Cloudflare's published
// Workers Paid prices. Used by run.mjs (printed after each run) and runnable on a saved result:
//
//   node scripts/bench/cost-model.mjs bench-results/fleet-sim-<N>-<ts>.json
//   node scripts/bench/cost-model.mjs --load-sim bench-results/load-sim-<ts>.json …
//
// docs/cost.md explains every assumption; keep the two in step.

/**
 * Workers Paid (Standard usage model) and Durable Objects (SQLite backend) prices, as published on
 * developers.cloudflare.com: /workers/platform/pricing/ and /durable-objects/platform/pricing/
 * (the tables read 2026-12-03; the docs repository's pricing partials carry the same numbers).
 */
export const PRICES = {
  source: "Cloudflare Workers Paid plan (Standard) and Durable Objects pricing tables, developers.cloudflare.com, read 2026-12-03",
  base_per_month: 5,
  worker_requests: { included: 10e6, per_million: 0.3 },
  worker_cpu_ms: { included: 30e6, per_million: 0.02 },
  do_requests: { included: 1e6, per_million: 0.15 },
  /** Incoming WebSocket messages are billed as requests at 20:1. */
  ws_messages_per_request: 20,
  do_gb_s: { included: 400e3, per_million: 12.5 },
  /** Duration is billed for the 128 MB an object is allocated, whatever it uses. */
  do_gb_per_object: 0.128,
  rows_read: { included: 25e9, per_million: 0.001 },
  rows_written: { included: 50e6, per_million: 1.0 },
};

const HOURS_PER_MONTH = 730;
/** Fleet B of docs/scale.md: many policies of this many agents each. */
const FLEET_B_POLICY_SIZE = 1000;
/** Durable Objects per policy hold this many agents each (architecture.md "Sharded fan-out"). */
const AGENTS_PER_SHARD = 5000;
const AGENT_STORES = 64;

/**
 * A real agent's events per hour. Long poll: the server's CHECKIN_LONG_POLL (5 m) minus half its
 * CHECKIN_JITTER (30 s) on average, plus the agent's 1-1.5 s pause. WebSocket: a check-in message
 * every 4 minutes (what fleet-sim sends; docs/websocket.md asks for at least every 5) and an
 * application ping every 30 s, answered by the runtime's auto-response (no duration; counted here
 * as billable messages, the conservative reading of the pricing page).
 */
export const AGENT_HOUR = {
  poll_checkins: 3600 / (300 - 15 + 1.25),
  socket_checkins: 3600 / 240,
  socket_pings: 3600 / 30,
  /** One policy change reaching every agent per day. */
  policy_changes: 1 / 24,
};

/**
 * What a heartbeat writes for itself: the agent's row in its store and its row in the policy's
 * roster (the hub's part or a roster shard). Every other row written while heartbeats are counted
 * is a store's flush window's: the effect rows carrying the window's times and counts, what the
 * hub keeps of each batch it applied (`checkin_batches`, `checkin_minutes`), and `setAlarm`.
 */
const HEARTBEAT_TABLES = { AgentStore: ["agents"], PolicyHub: ["roster"], RosterShard: ["roster"] };

/**
 * A heartbeat's time waits in its roster part's journal (durable/agent-roster.ts) and reaches the
 * agent's row when a read needs it or every TOUCH_FOLD_AFTER_MS (30 min): unread, each agent's row
 * is written twice an hour however often it checks in, and each journal row of TOUCHES_PER_ROW
 * (1,000) times is deleted once. The benchmark's heartbeat phases end before any fold, so its
 * counts hold the journal's appends (per window) and not these; the bill adds them.
 */
const ROSTER_FOLDS_PER_HOUR = 2;
const TOUCHES_PER_JOURNAL_ROW = 1000;
const JOURNAL_TABLE = "roster_touches";

/** Rows a journaled heartbeat's time costs at the folds, per heartbeat of an agent checking in `perHour` times an hour. */
export function foldRowsPerHeartbeat(perHour) {
  return ROSTER_FOLDS_PER_HOUR / perHour + 1 / TOUCHES_PER_JOURNAL_ROW;
}

/** Objects whose calls in a heartbeat's counts each carry a store's window: the hub and the roster's parts. */
const WINDOW_CALLEES = ["PolicyHub", "RosterShard"];

/** What a store writes once per flush window whatever policies it holds: the journal row (and `setAlarm`, counted apart). */
const STORE_WINDOW_TABLES = ["checkin_journal"];

/**
 * The store's outbox: in steady state, the flush's one effect row for all its policies (since
 * `d763ddc`), so once per store window too. Runs recorded before it wrote one per policy; they are
 * told apart by the roster's journal (later still), and keep these rows per policy window.
 */
const FLUSH_OUTBOX_TABLE = "effects";

/**
 * Counts per event (per heartbeat, per agent per revision) from one benchmark's recorded counts.
 * For heartbeats (`windowed`), what a store does once per flush window rather than once per heartbeat (its alarms and their
 * setAlarm rows, its effect rows, the calls to the hub and the roster's parts carrying a window's
 * roster updates and counts, and what those write besides roster rows) is kept apart, per store
 * that took part (`per_window`), so the bill can batch it as production traffic would: the
 * benchmark sends every agent's heartbeat within seconds, production spreads them over 5 minutes.
 * Runs recorded before rows were counted per table keep only setAlarm rows per window. A policy
 * change is counted whole per agent (its acks' roster rows are effect rows of their own): an upper
 * bound, as a rollout's windows are as full in production as in the benchmark.
 */
export function perEvent(counts, label, { windowed = true } = {}) {
  const c = counts?.[label];
  if (!c || !c.events) return null;
  // Runs recorded before the roster's journal wrote each heartbeat's roster row at once.
  const journaled = Object.values(c.classes ?? {}).some((k) => (k.rows_written_by_table?.[JOURNAL_TABLE] ?? 0) > 0);
  const out = { events: c.events, worker_requests: c.worker_requests / c.events, do_requests: 0, ws_messages: 0, rows_read: 0, rows_written: 0, starts: 0, by_class: {}, per_window: null, journaled };
  for (const [name, k] of Object.entries(c.classes ?? {})) {
    const row = { requests: k.requests / c.events, ws_messages: k.ws_messages / c.events, rows_read: k.rows_read / c.events, rows_written: k.rows_written / c.events, starts: k.starts / c.events };
    if (Object.values(row).every((v) => v === 0)) continue;
    out.by_class[name] = row;
    out.do_requests += row.requests;
    out.ws_messages += row.ws_messages;
    out.rows_read += row.rows_read;
    out.rows_written += row.rows_written;
    out.starts += row.starts;
  }
  const stores = Object.entries(c.per_object ?? {}).filter(([key, n]) => key.startsWith("AgentStore/") && n > 0).length;
  const store = c.classes?.AgentStore;
  if (windowed && stores > 0 && store) {
    const calls = WINDOW_CALLEES.reduce((sum, name) => sum + (c.classes?.[name]?.requests ?? 0), 0);
    const rows = store.rows_written_by_table ? windowRows(c.classes) : store.set_alarms;
    // A store sends each policy's hub its check-in counts once per window (`countCheckins`, or
    // with the roster's times in one `applyRoster` call): the windows are (store, policy) pairs,
    // and heartbeats spread over more than one window (a long-poll phase of 10,000 agents takes
    // ~20 s) count as so many windows.
    const windows = c.classes?.PolicyHub?.methods?.countCheckins || c.classes?.PolicyHub?.methods?.applyRoster || stores;
    // Once per store and window, however many policies it holds: the alarm run, its setAlarm and
    // the journal row. Runs recorded before rows were counted per table keep it all per pair.
    const storeTables = out.journaled ? [...STORE_WINDOW_TABLES, FLUSH_OUTBOX_TABLE] : STORE_WINDOW_TABLES;
    const byStore = store.rows_written_by_table
      ? { windows: store.alarm || stores, requests: store.alarm, rows: store.set_alarms + storeTables.reduce((sum, table) => sum + (store.rows_written_by_table[table] ?? 0), 0) }
      : { windows: 0, requests: 0, rows: 0 };
    out.per_window = {
      stores,
      windows,
      requests: (calls + store.alarm - byStore.requests) / windows,
      rows_written: (rows - byStore.rows) / windows,
      store: byStore.windows ? { windows: byStore.windows, requests: byStore.requests / byStore.windows, rows_written: byStore.rows / byStore.windows } : null,
    };
    out.do_requests -= (calls + store.alarm) / c.events;
    out.rows_written -= rows / c.events;
  }
  return out;
}

/** Rows written by the store, the hub and the roster's parts other than a heartbeat's own (HEARTBEAT_TABLES), setAlarm's included. */
function windowRows(classes) {
  let rows = 0;
  for (const [name, tables] of Object.entries(HEARTBEAT_TABLES)) {
    const k = classes[name];
    if (!k) continue;
    rows += k.rows_written - tables.reduce((sum, table) => sum + (k.rows_written_by_table?.[table] ?? 0), 0);
  }
  return rows;
}

/** Held heartbeats are written per store at most every 10 s (CHECKIN_FLUSH_MS). */
const FLUSH_WINDOW_S = 10;

/** Heartbeats a store takes in `spanS` in production (its flush window by default): `agents ÷ 64 × rate` of them, or one when sparser. */
function heartbeatsPerWindow(agents, perHour, spanS = FLUSH_WINDOW_S) {
  return Math.max(1, (agents / AGENT_STORES) * (perHour / 3600) * spanS);
}

/**
 * A store sends each policy's hub its flushed times and counts together once per CHECKIN_VIEW_LAG
 * (a minute by default; durable/agent-effects.ts): the span a (store, policy) window's call covers.
 * The benchmark's server sends every flush at once (CHECKIN_VIEW_LAG=0s, so the count phases see
 * the calls); what one call costs the hub does not depend on how many flushes it carries.
 */
const SEND_SPAN_S = 60;

/**
 * (store, policy) windows per heartbeat in production: a store's send span (`spanS`) of h
 * heartbeats, spread evenly over `policies` equal policies, holds `policies × (1 − (1 − 1/policies)^h)`
 * of them, and each costs a call to that policy's hub and the hub's batch records. One policy: 1/h.
 * 1,000 policies of 1,000 agents at 1M: 963 of a minute's 3,281 heartbeats bring their own (with a
 * 10 s span, 423 of 550).
 */
export function policyWindowsPerHeartbeat(agents, perHour, policies = 1, spanS = SEND_SPAN_S) {
  const h = heartbeatsPerWindow(agents, perHour, spanS);
  return (policies * (1 - (1 - 1 / policies) ** h)) / h;
}

/**
 * Wall-clock an object is billed for each event it handles (a call, an alarm, a socket message)
 * when nothing else keeps it active: its CPU, the storage commit its answer waits for (the output
 * gate) and any call it awaits. Assumed, not measured: local workerd's clock does not move inside
 * synchronous code. Each millisecond of it is ~$19 a month of fleet B's 1M long-poll bill (~12 B events).
 */
export const ACTIVE_S_PER_EVENT = 0.01;

/**
 * The monthly bill of a fleet of `agents` agents in one policy, all on one channel, from measured
 * per-event counts. Duration (GB-s) is billed while an object runs or is idle but cannot hibernate,
 * not while it is idle and could hibernate, even before it does (Cloudflare's pricing page, "Compute
 * billing"): a fan-out shard holding parked polls (a call in flight) all month; every other object
 * (stores, hubs, roster parts, socket shards: hibernatable sockets, no timers) ACTIVE_S_PER_EVENT per
 * event, at most all month. Socket pings are answered by the runtime without waking the shard.
 */
export function monthlyBill({ agents, channel, heartbeat, change, cpuMsPerHeartbeat, policies = 1 }) {
  const p = PRICES;
  const perHour = channel === "websocket" ? AGENT_HOUR.socket_checkins : AGENT_HOUR.poll_checkins;
  const month = (x) => x * agents * HOURS_PER_MONTH;
  const beats = month(perHour);
  const changes = month(AGENT_HOUR.policy_changes);
  const worker_requests = beats * heartbeat.worker_requests + changes * (change?.worker_requests ?? 0);
  const ws_messages = beats * heartbeat.ws_messages + changes * (change?.ws_messages ?? 0) + (channel === "websocket" ? month(AGENT_HOUR.socket_pings) : 0);
  const pairShare = policyWindowsPerHeartbeat(agents, perHour, policies);
  const storeShare = 1 / heartbeatsPerWindow(agents, perHour);
  const window = heartbeat.per_window ?? { requests: 0, rows_written: 0, store: null };
  const storeWindow = window.store ?? { requests: 0, rows_written: 0 };
  const windowWork = (key) => pairShare * window[key] + storeShare * storeWindow[key];
  const do_requests = beats * (heartbeat.do_requests + windowWork("requests")) + changes * (change?.do_requests ?? 0);
  const rows_read = beats * heartbeat.rows_read + changes * (change?.rows_read ?? 0);
  const folds = heartbeat.journaled ? foldRowsPerHeartbeat(perHour) : 0;
  const rows_written = beats * (heartbeat.rows_written + windowWork("rows_written") + folds) + changes * (change?.rows_written ?? 0);
  // Parks go to shards that are active all month anyway (their waiters); every other event is billed.
  const parks = (x) => (channel === "websocket" ? 0 : (x?.by_class?.HubShard?.requests ?? 0));
  const checkinMessages = beats * heartbeat.ws_messages + changes * (change?.ws_messages ?? 0);
  const events = do_requests + checkinMessages - beats * parks(heartbeat) - changes * parks(change);
  const monthS = HOURS_PER_MONTH * 3600;
  const shards = parkedObjectsOf(agents, policies);
  const parked = channel === "websocket" ? 0 : shards;
  const eventObjects = Math.min(AGENT_STORES, agents) + policies * (1 + rosterPartsOf(agents / policies)) + (shards - parked);
  const activeObjects = parked + Math.min(eventObjects, (events * ACTIVE_S_PER_EVENT) / monthS);
  const gb_s = activeObjects * p.do_gb_per_object * monthS;
  // Only a long poll invokes the Worker; a socket's message goes to its shard (objects bill duration, not CPU).
  const cpu_ms = channel === "websocket" ? 0 : beats * (cpuMsPerHeartbeat ?? 0);
  const over = (x, { included, per_million }) => (Math.max(0, x - included) / 1e6) * per_million;
  const lines = {
    base: p.base_per_month,
    worker_requests: over(worker_requests, p.worker_requests),
    worker_cpu: over(cpu_ms, p.worker_cpu_ms),
    do_requests: over(do_requests + ws_messages / p.ws_messages_per_request, p.do_requests),
    do_duration: over(gb_s, p.do_gb_s),
    rows_read: over(rows_read, p.rows_read),
    rows_written: over(rows_written, p.rows_written),
  };
  const total = Object.values(lines).reduce((a, b) => a + b, 0);
  return {
    agents,
    channel,
    policies,
    usage: { worker_requests, cpu_ms, do_requests, ws_messages, rows_read, rows_written, active_objects: activeObjects, gb_s },
    dollars: Object.fromEntries(Object.entries(lines).map(([k, v]) => [k, Math.round(v * 100) / 100])),
    total: Math.round(total * 100) / 100,
    per_agent_month: Math.round((total / agents) * 10000) / 10000,
  };
}

/** Fan-out shards of a fleet (one per 5,000 of a policy's agents): all month active in a long-poll fleet, holding parked polls. */
export function parkedObjectsOf(agents, policies = 1) {
  return policies * Math.ceil(agents / policies / AGENTS_PER_SHARD);
}

/** Roster parts besides the hub of a policy this large: fleet A is laid out for 1M (20 parts); a policy of 1,000 has none. */
const rosterPartsOf = (policyAgents) => (policyAgents > 1000 ? 19 : 0);

/**
 * Objects active all month in a fleet of `agents` in `policies` equal policies by the rule the
 * load simulation measures (`fromLoadSim`): an object counts while it has a call in flight (a
 * parked poll) or had an event within the last 10 s. Every store, each policy's hub, and each
 * policy's shards (one per 5,000 of its agents). An upper bound of what is billed (`monthlyBill`).
 */
export function activeObjectsOf(agents, policies = 1) {
  return Math.min(AGENT_STORES, agents) + policies + parkedObjectsOf(agents, policies);
}

/**
 * What one run of the load simulation (scripts/bench/load-sim.mjs) measured in steady state: the
 * objects that were active (object-seconds ÷ seconds, simulated time), their GB-s per agent-hour,
 * and Elasticsearch `_bulk` requests per agent-hour when its mirror pointed at the counting stub
 * (--es-stub). The outboxes' flushes are not compressed with the rest (see sim-entry.mjs), so that
 * count is per simulated hour of a run whose flush windows were C× longer than production's.
 */
export function fromLoadSim(run) {
  const p = run.phases.find((x) => x.phase === "steady");
  if (!p) return null;
  const agentHours = run.agents * (p.sim_s / 3600);
  const activeObjectS = Object.values(p.classes).reduce((a, c) => a + c.active_object_s, 0);
  return {
    active_objects: activeObjectS / p.sim_s,
    modelled_active_objects: activeObjectsOf(run.agents, run.policies),
    gb_s_per_agent_hour: (activeObjectS * PRICES.do_gb_per_object) / agentHours,
    es_bulk_per_agent_hour: p.elasticsearch ? (p.elasticsearch.bulk_requests ?? 0) / agentHours : null,
  };
}

/** The cost table for a benchmark's counts: 10k, 100k and 1M agents, long poll and WebSocket. */
export function costTable(counts, { cpuMsPerHeartbeat = null } = {}) {
  const poll = perEvent(counts, "poll_heartbeat");
  const socket = perEvent(counts, "socket_heartbeat");
  const rounds = Object.keys(counts ?? {}).filter((k) => k.startsWith("fanout"));
  const change = rounds.length ? perEvent(counts, rounds.at(-1), { windowed: false }) : null;
  const rows = [];
  for (const [channel, heartbeat] of [["long_poll", poll], ["websocket", socket]]) {
    if (!heartbeat) continue;
    // Fleet A (one policy) and fleet B (policies of 1,000 agents) of docs/scale.md.
    for (const policySize of [null, FLEET_B_POLICY_SIZE]) {
      for (const agents of [10_000, 100_000, 1_000_000]) {
        rows.push(monthlyBill({ agents, channel, heartbeat, change, cpuMsPerHeartbeat, policies: policySize ? agents / policySize : 1 }));
      }
    }
  }
  return { prices: PRICES.source, agent_hour: AGENT_HOUR, cpu_ms_per_heartbeat: cpuMsPerHeartbeat, per_heartbeat: { long_poll: poll, websocket: socket }, per_agent_per_change: change, rows };
}

export function printCostTable(table, write = console.log) {
  const fmt = (x) => (x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toFixed(2));
  const per = (h) =>
    h
      ? `${h.worker_requests.toFixed(2)} Worker req, ${h.do_requests.toFixed(2)} DO req, ${h.ws_messages.toFixed(2)} WS msg, ${h.rows_read.toFixed(1)} rows read, ${h.rows_written.toFixed(2)} rows written` +
        (h.per_window
          ? `; per policy in a store's flush window: ${h.per_window.requests.toFixed(2)} DO req, ${h.per_window.rows_written.toFixed(2)} rows written (${h.per_window.windows} windows of ${h.per_window.stores} stores)` +
            (h.per_window.store ? `; per store window: ${h.per_window.store.requests.toFixed(2)} DO req, ${h.per_window.store.rows_written.toFixed(2)} rows written (${h.per_window.store.windows} windows)` : "")
          : "") +
        ` [by class, window work included: ${Object.entries(h.by_class).map(([k, v]) => `${k} ${v.requests.toFixed(2)} req/${v.rows_written.toFixed(2)} rw`).join(", ")}]`
      : "not measured";
  write(`\nMeasured per long-poll heartbeat: ${per(table.per_heartbeat.long_poll)}`);
  write(`Measured per socket heartbeat: ${per(table.per_heartbeat.websocket)}`);
  write(`Measured per agent per policy change: ${per(table.per_agent_per_change)}`);
  if (table.per_heartbeat.long_poll?.journaled || table.per_heartbeat.websocket?.journaled) {
    write(`Added per heartbeat: the roster journal's folds, ${foldRowsPerHeartbeat(AGENT_HOUR.poll_checkins).toFixed(3)} rows (long poll), ${foldRowsPerHeartbeat(AGENT_HOUR.socket_checkins).toFixed(3)} (socket)`);
  }
  write(`\nMonthly bill (${table.prices}; one policy, or policies of ${FLEET_B_POLICY_SIZE.toLocaleString("en-US")}; a policy change a day; Worker CPU ${table.cpu_ms_per_heartbeat ?? 0} ms per long-poll check-in):\n`);
  write("| agents | policies | channel | Worker req/month | DO req/month (WS msgs ÷ 20) | rows written/month | object-months of duration | Workers $ | DO requests $ | duration $ | rows $ | total $/month | $/agent-month |");
  write("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of table.rows) {
    const u = r.usage;
    const d = r.dollars;
    write(`| ${r.agents.toLocaleString("en-US")} | ${(r.policies ?? 1).toLocaleString("en-US")} | ${r.channel} | ${(u.worker_requests / 1e6).toFixed(1)}M | ${((u.do_requests + u.ws_messages / 20) / 1e6).toFixed(1)}M | ${(u.rows_written / 1e6).toFixed(1)}M | ${u.active_objects.toFixed(1)} | ${fmt(d.base + d.worker_requests + d.worker_cpu)} | ${fmt(d.do_requests)} | ${fmt(d.do_duration)} | ${fmt(d.rows_read + d.rows_written)} | ${fmt(r.total)} | ${r.per_agent_month.toFixed(4)} |`);
  }
}

/**
 * Worker CPU per long-poll heartbeat: the parked check-in's server CPU per request in the same run,
 * an upper bound (it includes the objects' CPU and the local entry worker's).
 */
export const cpuOfRun = (fleetSimResult) => fleetSimResult?.phases?.checkin_parked?.server_cpu_ms_per_request ?? null;

/**
 * The load simulation's measured duration beside the model's, and the duration part of the bill of
 * each fleet shape it ran. Its per-check-in counts are not priced: its phases are a round or two
 * long and the stores' 10 s flushes straddle their ends, so rows per check-in come out ±50% (the
 * fleet-sim counts, which wait for the flush, are what `costTable` prices).
 */
export function printLoadSimCosts(report, write = console.log) {
  write("| agents | policies | active objects: measured (modelled) | GB-s per agent-hour | ES _bulk requests per agent-hour (per store-minute) |");
  write("|---|---|---|---|---|");
  const shapes = new Map();
  for (const run of report.runs) {
    const m = fromLoadSim(run);
    if (!m) continue;
    const shape = run.shape === "many" ? `${run.policies} of ${Math.round(run.agents / run.policies)}` : "1";
    const steady = run.phases.find((x) => x.phase === "steady");
    const bulk = steady.elasticsearch ? `${m.es_bulk_per_agent_hour.toFixed(3)} (${((steady.elasticsearch.bulk_requests ?? 0) / AGENT_STORES / (steady.wall_s / 60)).toFixed(1)})` : "–";
    write(`| ${run.agents.toLocaleString("en-US")} | ${shape} | ${m.active_objects.toFixed(1)} (${m.modelled_active_objects}) | ${m.gb_s_per_agent_hour.toFixed(4)} | ${bulk} |`);
    shapes.set(run.shape, run.agents / run.policies);
  }
  write("\nDuration per month, long poll, if every object active by this rule were billed all month (an upper bound: the bill counts idle objects that could hibernate as not billed, `monthlyBill`):\n");
  write("| agents | policies | always-active objects | GB-s/month | duration $/month |");
  write("|---|---|---|---|---|");
  for (const [shape, policySize] of shapes) {
    for (const agents of [10_000, 100_000, 1_000_000]) {
      const policies = shape === "many" ? Math.ceil(agents / policySize) : 1;
      const objects = activeObjectsOf(agents, policies);
      const gbS = objects * PRICES.do_gb_per_object * HOURS_PER_MONTH * 3600;
      const dollars = (Math.max(0, gbS - PRICES.do_gb_s.included) / 1e6) * PRICES.do_gb_s.per_million;
      write(`| ${agents.toLocaleString("en-US")} | ${policies} | ${objects} | ${(gbS / 1e6).toFixed(1)} M | ${Math.round(dollars).toLocaleString("en-US")} |`);
    }
  }
}

// Run directly on a saved fleet-sim result, or (--load-sim) on a load simulation's report.
if (import.meta.url === `file://${process.argv[1]}`) {
  const { readFileSync } = await import("node:fs");
  const loadSim = process.argv[2] === "--load-sim";
  if (loadSim) printLoadSimCosts({ runs: process.argv.slice(3).flatMap((f) => JSON.parse(readFileSync(f, "utf8")).runs) });
  else {
    const result = JSON.parse(readFileSync(process.argv[2], "utf8"));
    printCostTable(costTable(result.counts, { cpuMsPerHeartbeat: cpuOfRun(result) }));
  }
}
