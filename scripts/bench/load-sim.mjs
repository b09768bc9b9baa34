#!/usr/bin/env node
// The socket-free load simulation (issue #20, the check of docs/scale.md): for each fleet size and
// shape, serves the real Worker and Durable Objects in workerd (serve.mjs --count --entry
// sim-entry.mjs) and has the Worker play the whole fleet in-process: every agent checks in through
// the real check-in route at production's interval compressed, parks in its policy's shard, acks
// each POLICY_CHANGE; then one revision per policy (rollout) and a reconnect storm. Counts every
// object's events and rows per simulated second, and prints the busiest object of each kind.
//
//   node scripts/bench/load-sim.mjs [--agents 10000,25000,50000] [--shapes one,many]
//        [--rate 500] [--agents-per-shard 5000] [--policy-size 1000] [--steady-rounds 1]
//        [--out bench-results/load-sim-<ts>.json] [--table-only FILE…]
//        [--exact]   (a tiny run whose counts are checked by hand: test/e2e/load-sim.test.ts)
//        [--es-stub] [--no-build]
//
// The report is written after every phase: a run the local server does not survive keeps the
// phases it finished (the run marked `incomplete`, with the error) and the command exits non-zero.
//
// --es-stub configures the Elasticsearch mirror (ES_URL) to a local stub that only counts what it is
// sent (requests by kind, `_bulk` requests and their operations) and answers each with the least
// Elasticsearch would (every bulk item created, an API key, an empty search): good for counting
// the requests a fleet makes, not for asserting anything of Elasticsearch's behaviour.
//
// Shapes: `one`, one policy with ceil(agents ÷ agents-per-shard) shards (fleet A of docs/scale.md);
// `many`, policies of policy-size agents with one shard each (fleet B). --rate is the check-ins per
// wall second the run aims at: it sets the compression (one wall second = production seconds), so
// every size runs at about the same load on this machine and its counts are rescaled to production
// seconds. Production timings (docs/scale.md "Rates"): long poll 5 m, jitter 30 s, pause 1–1.5 s.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "./args.mjs";
import { startServer } from "./server-process.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const args = parseArgs(process.argv.slice(2));

/** Production's long poll, jitter and pause (src/config.ts defaults; elastic-agent's 1–1.5 s). */
const LONG_POLL_S = 300;
const JITTER_S = 30;
const PAUSE_S = 1.25;
/** Seconds between one agent's check-ins in production: the hold minus half the jitter, plus the pause. */
export const HEARTBEAT_S = LONG_POLL_S - JITTER_S / 2 + PAUSE_S;
const AGENT_STORES = 64;
/**
 * --exact: a 10-minute long poll nothing outlasts, agents started within half a second, a storm of
 * one production second, no steady round, and every phase's end confirmed by asking each shard how
 * many check-ins it holds. Every count then follows from the agents' own steps.
 */
const EXACT = { longPollS: 600, startSpreadS: 0.5, stormSimS: 1, steadyRounds: 0, exact: true };

if (import.meta.url === `file://${process.argv[1]}`) {
  if (args["table-only"]) printTables(readReports(process.argv.slice(process.argv.indexOf("--table-only") + 1)));
  else await main();
}

async function main() {
  const sizes = String(args.agents ?? "10000,25000,50000").split(",").map(Number);
  const shapes = String(args.shapes ?? "one,many").split(",");
  const rate = Number(args.rate ?? 500);
  const perShard = Number(args["agents-per-shard"] ?? 5000);
  const policySize = Number(args["policy-size"] ?? 1000);
  const out = args.out ?? path.join(root, "bench-results", `load-sim-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  const report = { tool: "load-sim", started_at: new Date().toISOString(), options: { sizes, shapes, rate, perShard, policySize }, runs: [] };
  // --no-build: serve the bundle a previous run built (.wrangler/bench-bundle-entry).
  let built = Boolean(args["no-build"]);
  mkdirSync(path.dirname(out), { recursive: true });
  const save = () => writeFileSync(out, JSON.stringify(report, null, 2));
  let failed = null;
  for (const agents of sizes) {
    for (const shape of shapes) {
      // Each phase is saved as it ends, so a run the server does not survive (a 100,000-agent fleet
      // outgrows one local isolate) still leaves the phases it finished, marked `incomplete`.
      const slot = report.runs.push({ agents, shape, incomplete: true, phases: [] }) - 1;
      try {
        report.runs[slot] = await simulate({
          esStub: Boolean(args["es-stub"]),
          agents,
          shape,
          rate,
          perShard,
          policySize,
          build: !built,
          steadyRounds: Number(args["steady-rounds"] ?? 1),
          ...(args.exact ? EXACT : {}),
          onPhase: (partial) => {
            report.runs[slot] = { ...partial, incomplete: true };
            save();
          },
        });
      } catch (err) {
        failed = err;
        report.runs[slot].error = err.message;
      }
      built = true;
      save();
      if (failed) break;
    }
    if (failed) break;
  }
  process.stderr.write(`[load-sim] wrote ${out}\n`);
  printTables(report);
  if (failed) {
    process.stderr.write(`[load-sim] stopped: ${failed.message}\n`);
    process.exitCode = 1;
  }
}

/**
 * One run: a fresh server, a fleet of `agents` in `shape`. Options beyond those (`longPollS`,
 * `startSpreadS`, `stormSimS`, `steadyRounds`) let a test run a tiny fleet whose counts are exact.
 */
export async function simulate({ agents, shape, rate = 500, perShard = 5000, policySize = 1000, build = true, steadyRounds = 1, longPollS, startSpreadS, stormSimS = 60, exact = false, esStub = false, onProgress, onPhase }) {
  const policies = shape === "many" ? Math.max(1, Math.ceil(agents / policySize)) : 1;
  const shards = shape === "many" ? 1 : Math.min(256, Math.max(1, Math.ceil(agents / perShard)));
  // One round (every agent's heartbeat once) takes agents ÷ rate wall seconds, at least 10.
  const longPollMs = Math.round((longPollS ?? Math.max(10, agents / rate) * (LONG_POLL_S / HEARTBEAT_S)) * 1000);
  const compression = (LONG_POLL_S * 1000) / longPollMs;
  const roundMs = (HEARTBEAT_S * 1000) / compression;
  const adminToken = "load-sim-admin-token";
  const vars = {
    FLEET_MAX_AGENTS: "1000000",
    POLICY_HUB_SHARDS: String(shards),
    CHECKIN_LONG_POLL: `${longPollMs}ms`,
    CHECKIN_JITTER: `${Math.round((JITTER_S * 1000) / compression)}ms`,
    LOG_LEVEL: "warn",
    // The flush window is not compressed, so neither is the send span: each flush goes at once.
    CHECKIN_VIEW_LAG: "0s",
    // Many small policies: one roster part each, as docs/scale.md §2 tells an operator whose largest
    // policy is far smaller than the fleet (the default lays every policy out for the whole fleet).
    ...(shape === "many" ? { AGENTS_PER_ROSTER_SHARD: "1000000" } : {}),
  };
  const es = esStub ? await startEsStub() : null;
  if (es) Object.assign(vars, { ES_URL: es.url, ES_API_KEY: "bGF6eTpzdHVi", ES_INGEST_INTERVAL: "1h" });
  /** The stub's counts at each phase's end, so each phase gets its own. */
  let esBefore = es ? structuredClone(es.counts) : null;
  const port = await freePort();
  const progress = onProgress ?? ((line) => process.stderr.write(`[load-sim ${agents} ${shape}] ${line}\n`));
  progress(`${policies} policies × ${shards} shards, compression ${compression.toFixed(2)}× (one wall second = ${compression.toFixed(2)} production seconds), round ${(roundMs / 1000).toFixed(1)} s`);
  const { server, ready } = await startServer(
    ["--count", "--entry", "scripts/bench/sim-entry.mjs", "--storage", "memory", "--port", String(port), "--admin-token", adminToken, "--max-seconds", "7200", ...(build ? [] : ["--no-build"]), ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}=${v}`])],
    { label: `serve ${agents}`, onLog: (line) => (/NOSENTRY/.test(line) ? undefined : progress(line)) },
  );
  try {
    const started = Date.now();
    let peakRssMb = 0;
    const rssTimer = setInterval(() => (peakRssMb = Math.max(peakRssMb, rssMb(ready.workerdPids))), 1000);
    const streamed = new Map();
    const header = () => ({ agents, shape, policies, shards_per_policy: shards, compression, long_poll_ms: longPollMs, wall_s: (Date.now() - started) / 1000 });
    const result = await postLines(
      new URL("/__sim/run", ready.url),
      {
        agents,
        policies,
        compression,
        roundMs,
        pauseMs: (PAUSE_S * 1000) / compression,
        adminToken,
        steadyRounds,
        stormSimS,
        exact,
        ...(startSpreadS !== undefined ? { startSpreadMs: startSpreadS * 1000 } : {}),
      },
      (line) => {
        if (line.progress) progress(line.progress);
        if (line.phase) streamed.set(line.phase.phase, line.phase);
        if (line.phase && es) {
          line.phase.elasticsearch = diffCounts(es.counts, esBefore);
          esBefore = structuredClone(es.counts);
        }
        if (line.phase) progress(`phase ${line.phase.phase}: ${line.phase.wall_s.toFixed(1)} s wall, ${line.phase.sim_s.toFixed(0)} s simulated, errors ${JSON.stringify(line.phase.errors ?? {})}`);
        if (line.phase) onPhase?.({ ...header(), workerd_peak_rss_mb: peakRssMb, phases: [...streamed.values()] });
      },
    );
    clearInterval(rssTimer);
    // The phases as streamed (with the stub's counts) replace the result's copies.
    if (es) for (const p of result.phases) p.elasticsearch ??= streamed.get(p.phase)?.elasticsearch;
    return { ...header(), workerd_peak_rss_mb: peakRssMb, ...result };
  } finally {
    server.stdin.end();
    await new Promise((resolve) => server.once("exit", resolve));
    es?.close();
  }
}

function diffCounts(now, before) {
  return Object.fromEntries(Object.entries(now).map(([k, v]) => [k, v - (before?.[k] ?? 0)]).filter(([, v]) => v !== 0));
}

/** A listening socket that counts Elasticsearch requests and answers each with the least a cluster would. */
function startEsStub() {
  const counts = { requests: 0, bulk_requests: 0, bulk_operations: 0, api_keys_created: 0, api_key_invalidations: 0, searches: 0, other: 0 };
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      counts.requests++;
      const answer = (status, json) => {
        res.writeHead(status, { "Content-Type": "application/json" });
        res.end(JSON.stringify(json));
      };
      const { pathname } = new URL(req.url, "http://stub");
      if (pathname === "/_bulk") {
        counts.bulk_requests++;
        const items = [];
        const lines = body.split("\n").filter(Boolean);
        for (let i = 0; i < lines.length; i++) {
          const [op] = Object.keys(JSON.parse(lines[i]));
          items.push({ [op]: { status: op === "delete" ? 200 : 201 } });
          if (op !== "delete") i++;
        }
        counts.bulk_operations += items.length;
        return answer(200, { errors: false, items });
      }
      if (pathname === "/_security/api_key" && req.method === "POST") {
        counts.api_keys_created++;
        return answer(200, { id: `key-${counts.api_keys_created}`, api_key: "stub-secret" });
      }
      if (pathname === "/_security/api_key" && req.method === "DELETE") {
        counts.api_key_invalidations++;
        return answer(200, { invalidated_api_keys: JSON.parse(body || "{}").ids ?? [] });
      }
      if (pathname.endsWith("/_search")) {
        counts.searches++;
        return answer(404, { error: { type: "index_not_found_exception", reason: "stub" } });
      }
      counts.other++;
      if (req.method === "PUT") return answer(200, { acknowledged: true });
      return answer(404, { error: { type: "index_not_found_exception", reason: "stub" } });
    });
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve({ url: `http://127.0.0.1:${server.address().port}`, counts, close: () => server.close() }));
  });
}

/** POSTs `body` and reads JSON lines until the one carrying `result` (or `error`). No timeout: a run lasts minutes. */
function postLines(url, body, onLine) {
  return new Promise((resolve, reject) => {
    const payload = Buffer.from(JSON.stringify(body));
    let settled = false;
    const req = http.request(url, { method: "POST", headers: { "Content-Type": "application/json", "Content-Length": payload.length } }, (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`/__sim/run answered ${res.statusCode}`));
        res.resume();
        return;
      }
      const lines = createInterface({ input: res });
      lines.on("line", (text) => {
        if (settled) return;
        const line = JSON.parse(text);
        onLine(line);
        if (line.result || line.error) {
          settled = true;
          if (line.result) resolve(line.result);
          else reject(new Error(line.error));
          // The run's agents are still parked in the server: this answer ends with the server.
          req.destroy();
        }
      });
      lines.on("error", (err) => settled || reject(err));
      res.on("error", (err) => settled || reject(err));
      res.on("end", () => settled || reject(new Error("/__sim/run ended without a result")));
    });
    req.on("error", (err) => (settled ? undefined : reject(err)));
    req.end(payload);
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

function rssMb(pids) {
  let kb = 0;
  for (const pid of pids ?? []) {
    try {
      kb += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
    } catch {
      // gone
    }
  }
  return Math.round(kb / 1024);
}

/** One report of the runs of several saved reports, in order. */
export function readReports(files) {
  return { runs: files.flatMap((f) => JSON.parse(readFileSync(f, "utf8")).runs) };
}

/**
 * How many heartbeats each agent's shard actually took per simulated heartbeat interval: 1 when the
 * server kept up with the compressed clock; below 1 on a loaded machine, where the server runs
 * behind it. Steady-state rates are divided by it, so they are per heartbeat round as processed,
 * over production's interval (what scale-table.mjs reports for the socket runs).
 */
export function paceOf(run, p) {
  const parks = p.calls?.HubShard?.methods?.park ?? 0;
  return parks / run.agents / (p.sim_s / HEARTBEAT_S);
}

/** The tables of BENCHMARKS.md's #20 section, from a report. */
export function printTables(report, write = console.log) {
  const phase = (run, name) => run.phases.find((p) => p.phase === name);
  const fleetOf = (run) => `${run.shape === "many" ? `${run.policies} × ${Math.round(run.agents / run.policies)}` : `1 × ${run.agents}`}, ${run.shards_per_policy} shard${run.shards_per_policy > 1 ? "s" : ""}/policy`;
  const busiest = (p, cls) => p?.classes?.[cls]?.busiest;
  const fmt = (x, d = 1) => (x === undefined || x === null ? "–" : x.toFixed(d));

  write("\nSteady state (every agent's heartbeat; per production second, busiest object of each kind: mean over the round, peak tick):\n");
  write("| agents | policies × agents, shards | pace (heartbeats per agent per 286 s) | AgentStore (64) | HubShard (objects) | PolicyHub: calls per 10 s store flush window, rows written/s | RosterShard: the same | Directory | workerd peak RSS |");
  write("|---|---|---|---|---|---|---|---|---|");
  for (const run of report.runs) {
    const p = phase(run, "steady");
    if (!p) continue;
    const pace = paceOf(run, p);
    const rate = (x) => (x === undefined ? undefined : x / pace);
    const store = busiest(p, "AgentStore");
    const shard = busiest(p, "HubShard");
    const hub = busiest(p, "PolicyHub");
    const roster = busiest(p, "RosterShard");
    const dir = busiest(p, "Directory");
    write(
      `| ${run.agents.toLocaleString("en-US")} | ${fleetOf(run)} | ${fmt(pace, 2)} | ${fmt(rate(store?.per_sim_s))}/s (peak ${fmt(rate(p.classes.AgentStore?.peak_tick?.per_sim_s))}) | ${fmt(rate(shard?.per_sim_s))}/s (peak ${fmt(rate(p.classes.HubShard?.peak_tick?.per_sim_s))}; ${p.classes.HubShard?.objects ?? 0}) | ${fmt(hub ? hub.events / (p.wall_s / 10) : undefined)}, ${fmt(hub ? rate(hub.rows_written / p.sim_s) : undefined)} (${p.classes.PolicyHub?.objects ?? 0} hubs) | ${roster ? `${fmt(roster.events / (p.wall_s / 10))}, ${fmt(rate(roster.rows_written / p.sim_s))} (${p.classes.RosterShard.objects})` : "–"} | ${fmt(rate(dir?.per_sim_s), 2)}/s | ${run.workerd_peak_rss_mb} MB |`,
    );
  }

  write("\nRollout (one new revision per policy, every agent woken, acks, checks in again; events per object over the whole rollout, and per agent it holds):\n");
  write("| agents | policies × agents, shards | busiest AgentStore: events (per agent) | busiest HubShard: events (per agent) | busiest PolicyHub: calls, rows written (per agent) | busiest RosterShard: calls, rows written | converged (wall) |");
  write("|---|---|---|---|---|---|---|");
  for (const run of report.runs) {
    const p = phase(run, "rollout");
    if (!p) continue;
    const perStore = run.agents / AGENT_STORES;
    const perShard = run.agents / run.policies / run.shards_per_policy;
    const perHub = run.agents / run.policies;
    const store = busiest(p, "AgentStore");
    const shard = busiest(p, "HubShard");
    const hub = busiest(p, "PolicyHub");
    write(
      `| ${run.agents.toLocaleString("en-US")} | ${fleetOf(run)} | ${store?.events ?? "–"} (${fmt(store ? store.events / perStore : undefined, 2)}) | ${shard?.events ?? "–"} (${fmt(shard ? shard.events / perShard : undefined, 2)}) | ${hub?.events ?? "–"}, ${hub?.rows_written ?? "–"} (${fmt(hub ? hub.rows_written / perHub : undefined, 2)}) | ${busiest(p, "RosterShard") ? `${busiest(p, "RosterShard").events}, ${busiest(p, "RosterShard").rows_written}` : "–"} | ${fmt(p.converged_wall_s)} s |`,
    );
  }

  write(`\nReconnect storm (every agent checks in again within 60 production seconds; per second of that window, busiest object):\n`);
  write("| agents | policies × agents, shards | AgentStore | HubShard | PolicyHub | rows read, busiest store |");
  write("|---|---|---|---|---|---|");
  for (const run of report.runs) {
    const p = phase(run, "storm");
    if (!p) continue;
    const w = p.window_sim_s;
    const per = (cls) => (busiest(p, cls) ? `${fmt(busiest(p, cls).events / w)}/s` : "0");
    write(`| ${run.agents.toLocaleString("en-US")} | ${fleetOf(run)} | ${per("AgentStore")} | ${per("HubShard")} | ${per("PolicyHub")} | ${busiest(p, "AgentStore")?.rows_read ?? 0} |`);
  }

  for (const run of report.runs.filter((r) => r.incomplete)) {
    write(`\n${run.agents.toLocaleString("en-US")} agents (${run.shape}): incomplete, phases ${run.phases.map((p) => p.phase).join(", ") || "none"}${run.error ? ` (${run.error})` : ""}`);
  }

  write("\nObjects active while every agent long-polls (steady phase; active in a tick with an event or a call in flight, and for 10 s after, at tick resolution): an upper bound of billed duration, as Cloudflare bills an idle object that could hibernate nothing (docs/cost.md):\n");
  write("| agents | policies × agents, shards | active objects (of those that ran) | GB-s per agent-hour |");
  write("|---|---|---|---|");
  for (const run of report.runs) {
    const p = phase(run, "steady");
    if (!p) continue;
    const activeObjectS = Object.values(p.classes).reduce((a, c) => a + c.active_object_s, 0);
    const objects = Object.values(p.classes).reduce((a, c) => a + c.objects, 0);
    write(`| ${run.agents.toLocaleString("en-US")} | ${fleetOf(run)} | ${fmt(activeObjectS / p.sim_s)} (${objects}) | ${fmt((activeObjectS * 0.128) / (run.agents * (p.sim_s / 3600)), 4)} |`);
  }
}
