// Benchmark-only Worker entry (scripts/bench/load-sim.mjs): the project's Worker and Durable Objects,
// plus one route, POST /__sim/run, that plays a whole fleet inside workerd without a socket per
// agent. Nothing of it is deployed. Built by wrangler like the real bundle (serve.mjs --entry) and
// served through counting-entry.mjs, whose counts it reads in-process (globalThis.__benchCounts).
//
// Each simulated agent is a loop of real requests handed to the Worker's own fetch handler as
// function calls: check-in (the real route: auth, parsing, the session core, its store, a park in
// its policy's shard, answered by the shard's own timers and deliveries), ack of each
// POLICY_CHANGE, the agent's pause, check-in again. Production's timings are compressed by one
// factor (the long poll, its jitter and the pause are set so; see load-sim.mjs), so one wall second
// stands for `compression` seconds of a real fleet. Only the stores' 10 s check-in flush is not
// compressed (it is a constant): a store flushes compression× less often per simulated second than
// in production, each flush carrying as many more rows.
//
// Agents are created through their store's real `enroll` RPC in batches, not the enrollment route:
// the route passes the Directory's admission (500/s), which would spend minutes per run enrolling.
import worker from "../../src/index.ts";
import { agentObject } from "../../src/durable-stubs.ts";

export * from "../../src/index.ts";

const VERSION = "9.6.0";
const ORIGIN = "http://sim.internal";

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === "/__sim/run" && request.method === "POST") {
      const options = await request.json();
      // Progress and the result stream back as JSON lines: a run lasts minutes.
      const { readable, writable } = new TransformStream();
      const writer = writable.getWriter();
      const encoder = new TextEncoder();
      const emit = (line) => writer.write(encoder.encode(JSON.stringify(line) + "\n"));
      const done = runSimulation(env, ctx, options, emit).then(
        (result) => emit({ result }),
        (err) => emit({ error: String(err?.stack ?? err) }),
      );
      ctx.waitUntil(done.finally(() => writer.close()));
      return new Response(readable, { headers: { "Content-Type": "application/x-ndjson" } });
    }
    return worker.fetch(request, env, ctx);
  },
};

/**
 * Sleeps on one timer: a request may hold at most 10,000 active timeouts (workerd), and every
 * simulated agent waits between its requests. Wake-ups are kept in a binary heap by due time and
 * released by a single timeout set for the earliest.
 */
class Sleeper {
  #heap = [];
  #timer = null;
  #timerAt = Infinity;

  sleep(ms) {
    return new Promise((resolve) => {
      this.#push({ at: Date.now() + Math.max(0, ms), resolve });
      this.#arm();
    });
  }

  #arm() {
    const next = this.#heap[0]?.at ?? Infinity;
    if (next >= this.#timerAt) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timerAt = next;
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, next - Date.now()));
  }

  #fire() {
    this.#timer = null;
    this.#timerAt = Infinity;
    const now = Date.now();
    while (this.#heap.length > 0 && this.#heap[0].at <= now) this.#pop().resolve();
    this.#arm();
  }

  #push(item) {
    const h = this.#heap;
    h.push(item);
    for (let i = h.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (h[parent].at <= h[i].at) break;
      [h[parent], h[i]] = [h[i], h[parent]];
      i = parent;
    }
  }

  #pop() {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l].at < h[m].at) m = l;
        if (r < h.length && h[r].at < h[m].at) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i], h[m]];
        i = m;
      }
    }
    return top;
  }
}
const sleeper = new Sleeper();
const sleep = (ms) => sleeper.sleep(ms);

/** Requests into the Worker, counted per route as Worker requests (they bypass counting-entry's fetch). */
function workerCaller(env, ctx, stats) {
  return async (route, method, path, headers, body) => {
    stats.worker_requests[route] = (stats.worker_requests[route] ?? 0) + 1;
    const res = await worker.fetch(new Request(ORIGIN + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) }), env, ctx);
    const text = await res.text();
    if (res.status !== 200) {
      const key = `${route} ${res.status}`;
      stats.errors[key] = (stats.errors[key] ?? 0) + 1;
    }
    return { status: res.status, text };
  };
}

/** A realistic policy (~2 KB): one output, monitoring, two inputs; `n` changes the content. */
function policyContent(n) {
  return {
    outputs: { default: { type: "elasticsearch", hosts: ["https://es.example.com:9200"], preset: "balanced" } },
    agent: { monitoring: { enabled: true, logs: true, metrics: true, use_output: "default", namespace: "default" } },
    inputs: [
      { id: "logfile-system", name: "system-1", revision: n, type: "logfile", use_output: "default", data_stream: { namespace: "default" }, streams: [{ id: "logfile-system.syslog", data_stream: { dataset: "system.syslog", type: "logs" }, paths: ["/var/log/messages*", "/var/log/syslog*"] }] },
      { id: "system/metrics-system", name: "system-1", revision: n, type: "system/metrics", use_output: "default", data_stream: { namespace: "default" }, streams: ["cpu", "load", "memory", "network", "process", "filesystem"].map((m) => ({ id: `system/metrics-system.${m}`, data_stream: { dataset: `system.${m}`, type: "metrics" }, metricsets: [m], period: "10s" })) },
    ],
  };
}

/**
 * Per-object counts between two snapshots of counting-entry.mjs, gathered per phase: every object's
 * events (calls, alarms, socket messages), rows read and written, its busiest tick, and the ticks
 * in which it was active (billed duration: an event, a call in flight such as a parked poll, or
 * the 10 s an idle object stays in memory before it may be evicted).
 */
class PhaseCounter {
  constructor(name, counts, { compression, idleTicks }) {
    this.name = name;
    this.compression = compression;
    this.idleTicks = idleTicks;
    this.start = Date.now();
    this.base = counts();
    this.prev = this.base;
    this.objects = new Map();
    this.ticks = 0;
    this.tickMs = [];
  }

  /** One tick: `snap` is a fresh snapshot; `lastTick` is each object's last active tick, across phases. */
  tick(snap, lastActive, tickIndex, wallMs) {
    this.ticks++;
    this.tickMs.push(wallMs);
    const keys = new Set([...Object.keys(snap.per_object), ...Object.keys(snap.in_flight ?? {})]);
    for (const key of keys) {
      const d = (snap.per_object[key] ?? 0) - (this.prev.per_object[key] ?? 0);
      const r = snap.per_object_rows?.[key] ?? { read: 0, written: 0 };
      const rp = this.prev.per_object_rows?.[key] ?? { read: 0, written: 0 };
      let o = this.objects.get(key);
      if (!o) this.objects.set(key, (o = { events: 0, rows_read: 0, rows_written: 0, max_tick: 0, active_ms: 0 }));
      o.events += d;
      o.rows_read += r.read - rp.read;
      o.rows_written += r.written - rp.written;
      if (d > o.max_tick) o.max_tick = d;
      if (d > 0 || (snap.in_flight?.[key] ?? 0) > 0) lastActive.set(key, tickIndex);
      const last = lastActive.get(key);
      if (last !== undefined && tickIndex - last <= this.idleTicks) o.active_ms += wallMs;
    }
    this.prev = snap;
  }

  /** Totals per object kind: all objects, and the busiest one (events per simulated second, mean and peak tick). */
  summary(extra = {}) {
    const wallS = (Date.now() - this.start) / 1000;
    const simS = wallS * this.compression;
    const tickSimS = (this.tickMs.reduce((a, b) => a + b, 0) / Math.max(1, this.tickMs.length) / 1000) * this.compression;
    const classes = {};
    for (const [key, o] of this.objects) {
      const cls = key.slice(0, key.indexOf("/"));
      const c = (classes[cls] ??= { objects: 0, events: 0, rows_read: 0, rows_written: 0, active_object_s: 0, busiest: null, peak_tick: null });
      if (o.events === 0 && o.active_ms === 0) continue;
      c.objects++;
      c.events += o.events;
      c.rows_read += o.rows_read;
      c.rows_written += o.rows_written;
      c.active_object_s += (o.active_ms / 1000) * this.compression;
      if (!c.busiest || o.events > c.busiest.events) c.busiest = { object: key.slice(cls.length + 1), events: o.events, rows_read: o.rows_read, rows_written: o.rows_written, per_sim_s: o.events / simS };
      if (!c.peak_tick || o.max_tick > c.peak_tick.events) c.peak_tick = { object: key.slice(cls.length + 1), events: o.max_tick, per_sim_s: o.max_tick / tickSimS };
    }
    // What each kind handled, by kind of event (RPC calls, fetches, alarms), over the whole phase.
    const calls = {};
    for (const [cls, k] of Object.entries(this.prev.classes ?? {})) {
      const b = this.base.classes?.[cls] ?? {};
      const d = Object.fromEntries(["requests", "rpc", "fetch", "alarm", "starts", "rows_read", "rows_written"].map((f) => [f, (k[f] ?? 0) - (b[f] ?? 0)]));
      d.methods = Object.fromEntries(Object.entries(k.methods ?? {}).map(([m, x]) => [m, x - (b.methods?.[m] ?? 0)]).filter(([, x]) => x !== 0));
      if (Object.keys(d.methods).length > 0 || d.rows_read !== 0 || d.rows_written !== 0) calls[cls] = d;
    }
    return { phase: this.name, wall_s: wallS, sim_s: simS, ticks: this.ticks, classes, calls, ...extra };
  }
}

async function runSimulation(env, ctx, options, emit) {
  const counts = globalThis.__benchCounts;
  if (typeof counts !== "function") throw new Error("serve the simulation with --count (counting-entry.mjs)");
  const { agents: n, policies: policyCount, compression, pauseMs, adminToken, steadyRounds = 1, stormSimS = 60, settleMs = 2000 } = options;
  const roundMs = options.roundMs;
  const stats = { worker_requests: {}, errors: {} };
  const call = workerCaller(env, ctx, stats);
  const adminHeaders = { Authorization: `Bearer ${adminToken}`, "Content-Type": "application/json" };
  const log = (msg) => emit({ progress: msg, at: Date.now() });
  const tickMs = options.tickMs ?? 1000;
  // An idle object stays in memory (and billed) about 10 s after its last event before it may go.
  const idleTicks = Math.ceil(10_000 / compression / tickMs);

  // Policies, then agents: the "enroll" phase.
  const enrollPhase = new PhaseCounter("enroll", counts, { compression: 1, idleTicks: 0 });
  const policyIds = Array.from({ length: policyCount }, (_, i) => `sim-${i}`);
  for (const id of policyIds) {
    const res = await call("admin", "PUT", `/api/fleet/agent_policies/${id}`, adminHeaders, { name: `Sim ${id}`, namespace: "default", policy: policyContent(1) });
    if (res.status !== 200) throw new Error(`policy ${id}: ${res.status} ${res.text}`);
  }

  // Agents, through their stores' enroll RPC.
  const t0 = Date.now();
  const fleet = Array.from({ length: n }, (_, i) => ({ id: crypto.randomUUID(), policyId: policyIds[i % policyCount], key: "", revision: 0, ackToken: "", generation: 0, parkedSince: 0, idledAt: -1 }));
  for (let i = 0; i < n; i += options.enrollBatch ?? 256) {
    await Promise.all(
      fleet.slice(i, i + (options.enrollBatch ?? 256)).map(async (a) => {
        const result = await agentObject(env, a.id).enroll({
          agentId: a.id,
          clientChosenId: false,
          policyId: a.policyId,
          namespaces: ["default"],
          type: "PERMANENT",
          localMetadata: { elastic: { agent: { id: a.id, version: VERSION } }, host: { hostname: `sim-${a.id.slice(0, 8)}` } },
          tags: [],
          version: VERSION,
        });
        if (!result.item) throw new Error(`enroll ${a.id}: ${JSON.stringify(result)}`);
        a.key = `ApiKey ${result.item.access_api_key}`;
      }),
    );
    if (i % 10_000 === 0) log(`enrolled ${i}`);
  }
  log(`enrolled ${n} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const phases = [];
  enrollPhase.tick(counts(), new Map(), 0, Date.now() - enrollPhase.start);
  // The policies' creation counts with the enrollment.
  phases.push(enrollPhase.summary({ agents: n, worker_requests: stats.worker_requests }));
  stats.worker_requests = {};
  emit({ phase: phases[0] });

  // The agents' behaviour.
  const agentStats = { checkins: 0, answered: { policy: 0, actions: 0, none: 0, error: 0 }, acks: 0 };
  let running = true;
  /**
   * From the rollout on, check-ins ask for a long hold (`poll_timeout`): in production a rollout
   * (about a minute, paced) and a storm are short beside the 5-minute poll, so no agent's poll runs
   * out meanwhile; compressed, a poll would run out several times and its heartbeats blur the count.
   */
  let longHolds = false;
  const headersOf = (a) => ({ "User-Agent": `Elastic Agent v${VERSION}`, Accept: "application/json", Authorization: a.key, "Content-Type": "application/json", "Elastic-Api-Version": "2023-06-01", "Kbn-Xsrf": "1" });

  /** One check-in, and the ack of what it answered; a reconnect (a newer generation) makes the answer moot. */
  async function checkinOnce(a, generation) {
    agentStats.checkins++;
    a.parkedSince = Date.now();
    const body = {
      status: "online",
      message: "Running",
      ...(a.ackToken ? { ack_token: a.ackToken } : {}),
      ...(a.revision ? { agent_policy_id: a.policyId, policy_revision_idx: a.revision } : {}),
      ...(longHolds ? { poll_timeout: "1h" } : {}),
    };
    const res = await call("checkin", "POST", `/api/fleet/agents/${a.id}/checkin`, headersOf(a), body);
    if (a.generation !== generation) return {};
    a.parkedSince = 0;
    if (res.status !== 200) {
      agentStats.answered.error++;
      return { retryMs: 1000 };
    }
    const answer = JSON.parse(res.text);
    if (answer.ack_token) a.ackToken = answer.ack_token;
    const policy = answer.actions?.find((x) => x.type === "POLICY_CHANGE");
    agentStats.answered[policy ? "policy" : answer.actions?.length ? "actions" : "none"]++;
    // Its poll ran out with nothing new: the agent had parked at its revision.
    if (!answer.actions?.length) a.idledAt = a.revision;
    if (answer.actions?.length) {
      const events = answer.actions.map((x) => ({ action_id: x.id, agent_id: a.id, message: `Action "${x.id}" of type "${x.type}" acknowledged.`, subtype: "ACKNOWLEDGED", timestamp: new Date().toISOString(), type: "ACTION_RESULT" }));
      agentStats.acks++;
      const acked = await call("acks", "POST", `/api/fleet/agents/${a.id}/acks`, headersOf(a), { events });
      if (acked.status === 200 && policy) a.revision = policy.data.policy.revision;
    }
    return {};
  }

  /** One agent's life from `delayMs` on, until the run stops or a reconnect replaces it. */
  async function live(a, delayMs) {
    const generation = ++a.generation;
    await sleep(delayMs);
    while (running && a.generation === generation) {
      const { retryMs } = await checkinOnce(a, generation);
      if (a.generation !== generation) return;
      await sleep(retryMs ?? pauseMs);
    }
  }

  // Ticks: a counts snapshot every tickMs, credited to the current phase.
  const lastActive = new Map();
  let tickIndex = 0;
  let phase = null;
  let lastTickAt = Date.now();
  const ticker = (async () => {
    while (running) {
      await sleep(tickMs);
      const now = Date.now();
      phase?.tick(counts(), lastActive, ++tickIndex, now - lastTickAt);
      lastTickAt = now;
      // A line now and then keeps the streamed answer alive and shows the run moving.
      if (tickIndex % 10 === 0) log(`${phase?.name ?? "between phases"}: ${agentStats.checkins} check-ins, ${agentStats.acks} acks so far; ${fleet.filter((a) => a.parkedSince > 0).length} in flight`);
    }
  })();
  const startPhase = (name) => {
    if (phase) phase.tick(counts(), lastActive, ++tickIndex, Date.now() - lastTickAt);
    lastTickAt = Date.now();
    phase = new PhaseCounter(name, counts, { compression, idleTicks });
    log(`phase ${name}`);
    return phase;
  };
  const endPhase = (extra) => {
    phase.tick(counts(), lastActive, ++tickIndex, Date.now() - lastTickAt);
    lastTickAt = Date.now();
    const summary = phase.summary({ agents: n, agent_stats: structuredClone(agentStats), worker_requests: structuredClone(stats.worker_requests), ...extra });
    for (const k of Object.keys(agentStats.answered)) agentStats.answered[k] = 0;
    agentStats.checkins = agentStats.acks = 0;
    stats.worker_requests = {};
    phases.push(summary);
    emit({ phase: summary });
    phase = null;
  };
  /**
   * Every agent runs `revision` and has parked with it since `generation` began: its check-in has
   * been in flight for `settleMs` (parked), or one ran out with nothing new (with a short long poll,
   * some agent is always between two polls, so "all parked at once" never holds). With `exact`
   * (a long poll nothing outlasts) every shard is also asked, and must hold every agent.
   */
  const settledAt = async (revision) => {
    const now = Date.now();
    const settled = fleet.every((a) => a.revision === revision && (a.idledAt === revision || (a.parkedSince > 0 && now - a.parkedSince >= settleMs)));
    return settled && (!options.exact || (await parkedInShards()) === n);
  };
  /** Check-ins parked in the policies' shards, asked of every shard the counts have seen (a probe counting-entry does not count). */
  const parkedInShards = async () => {
    const shards = Object.keys(counts().per_object).filter((k) => k.startsWith("HubShard/")).map((k) => k.slice("HubShard/".length));
    const held = await Promise.all(shards.map((name) => env.HUB_SHARDS.get(/^[0-9a-f]{64}$/.test(name) ? env.HUB_SHARDS.idFromString(name) : env.HUB_SHARDS.idFromName(name)).parkedCount()));
    return held.reduce((a, b) => a + b, 0);
  };
  const waitUntil = async (what, test, limitMs) => {
    const until = Date.now() + limitMs;
    while (!(await test())) {
      if (Date.now() > until) throw new Error(`${what}: not reached in ${limitMs / 1000} s`);
      await sleep(200);
    }
  };

  // Start: agents come online spread over one round (the first check-in of each finds revision 1
  // newer than its 0 and is answered at once: ack, check in again, park).
  startPhase("start");
  // Over two rounds: coming online costs an agent two check-ins and an ack, three times a heartbeat.
  const spreadMs = options.startSpreadMs ?? 2 * roundMs;
  fleet.forEach((a, i) => void live(a, (i / n) * spreadMs));
  await sleep(spreadMs);
  // Generous limits: on a loaded machine the server runs behind the simulated clock (the steady
  // table's heartbeats-per-agent column shows by how much).
  const limitMs = 3 * roundMs + 300_000;
  await waitUntil("start", () => settledAt(1), limitMs);
  endPhase({});

  // Steady state: every agent's heartbeat at the compressed production interval.
  for (let r = 0; r < steadyRounds; r++) {
    startPhase(`steady`);
    await sleep(roundMs);
    endPhase({});
  }

  // A revision for every policy at once: each parked agent is woken with a POLICY_CHANGE, acks it
  // and checks in again. Done when every agent acked and parked again.
  startPhase("rollout");
  longHolds = true;
  for (const id of policyIds) {
    const res = await call("admin", "PUT", `/api/fleet/agent_policies/${id}`, adminHeaders, { name: `Sim ${id}`, namespace: "default", policy: policyContent(2) });
    if (res.status !== 200) throw new Error(`policy ${id}: ${res.status} ${res.text}`);
  }
  const rolloutStart = Date.now();
  await waitUntil("rollout", () => fleet.every((a) => a.revision === 2), limitMs);
  const converged = Date.now() - rolloutStart;
  await waitUntil("rollout re-park", () => settledAt(2), limitMs);
  endPhase({ converged_wall_s: converged / 1000 });

  // Reconnect storm: the edge restarts, every agent's poll is lost, and every agent checks in again
  // within `stormSimS` (production seconds). The shards' old waiters are superseded by the new parks.
  startPhase("storm");
  const stormWallMs = (stormSimS * 1000) / compression;
  for (const a of fleet) {
    a.parkedSince = 0;
    a.idledAt = -1;
    void live(a, Math.random() * stormWallMs);
  }
  await sleep(stormWallMs);
  await waitUntil("storm", () => settledAt(2), limitMs);
  endPhase({ window_sim_s: stormSimS });

  running = false;
  await ticker;
  return { agents: n, policies: policyCount, compression, round_ms: roundMs, tick_ms: tickMs, phases, errors: stats.errors };
}
