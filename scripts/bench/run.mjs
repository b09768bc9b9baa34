#!/usr/bin/env node
// One benchmark run: the project's server and the bare baseline Worker, one after the other on the
// same runtime (never loaded at the same time, so neither steals the other's cores), each driven
// by scripts/fleet-sim.mjs with the same client settings. Writes bench-results/run-<timestamp>.json
// with both results, the ratios and the targets, and prints a summary table.
//
//   node scripts/bench/run.mjs --agents 10000 [--rounds 2] [--throughput-seconds 15]
//        [--throughput-concurrency 256] [--enroll-concurrency 64] [--ramp-rate 2000]
//        [--storage disk|memory] [--only project|bare] [--ws-fraction 0] [--opamp-fraction 0] [--max-agents N|max] [--shards N] [--rollout-rate N]
//        [--policies N] [--agents-per-roster-shard N]
//        [--accept-encoding gzip|identity] [--direct]   (--direct: past Miniflare's entry worker)
//        [--interleave K] [--no-count] [--port P]   (P and P+1: the two servers; 18330 by default)
//
// The baseline Worker serves two comparison routes in the same throughput slices: the trivial route
// (/ok, no object) and the check-in floor (/floor/<id>: one RPC, one row read and one written, a
// POLICY_CHANGE-sized answer). The project's slices run the answered check-in and the parked one.
//
// --interleave K: both servers stay up after their other phases, and the throughput phase runs as
// K slices of --throughput-seconds each, alternating project and baseline (ABBA order), so that the
// machine's drift over minutes lands on both sides of the ratio instead of on one.
//
// Every child runs under `bash -c 'ulimit -n <hard limit>; exec node …'`: the fd limit is per process,
// and a long poll costs one descriptor in the simulator and one in workerd.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "./args.mjs";
import { costTable, cpuOfRun, printCostTable } from "./cost-model.mjs";
import { startServer, startSimulator } from "./server-process.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const args = parseArgs(process.argv.slice(2));
const agents = Number(args.agents ?? 1000);
const stamp = new Date().toISOString().replace(/[:.]/g, "-");
const outDir = path.join(root, "bench-results");
mkdirSync(outDir, { recursive: true });
const adminToken = "bench-admin-token";
// Long enough that no parked poll expires while it is measured (the issue allows this for benchmarks).
const longPoll = args["long-poll"] ?? "30m";
const simArgs = ["agents", "honor-retry-after", "rounds", "throughput-seconds", "throughput-concurrency", "enroll-concurrency", "ramp-rate", "fanout-timeout", "settle-seconds", "ws-fraction", "opamp-fraction", "accept-encoding", "policies"]
  .filter((k) => args[k] !== undefined)
  .flatMap((k) => [`--${k}`, String(args[k])]);
const maxSeconds = Number(args["max-seconds"] ?? 1800);
// The project's server counts billable events (serve.mjs --count) unless --no-count: the run prints
// what the fleet would cost (scripts/bench/cost-model.mjs, docs/cost.md).
const counting = !args["no-count"];
const basePort = Number(args.port ?? 18330);
const interleave = args.interleave !== undefined && args.only === undefined ? Math.max(2, Number(args.interleave)) : 0;
if (interleave) simArgs.push("--throughput-slices", String(interleave));

const report = {
  started_at: new Date().toISOString(),
  agents,
  storage: args.storage ?? "disk",
  long_poll: longPoll,
  fleet_max_agents: String(args["max-agents"] ?? "max"),
  accept_encoding: String(args["accept-encoding"] ?? "gzip"),
  entry_worker: args.direct ? "bypassed (unsafeDirectSockets)" : "miniflare",
  policy_hub_shards: args.shards ? Number(args.shards) : "wrangler.toml",
  rollout_rate: args["rollout-rate"] ? Number(args["rollout-rate"]) : "wrangler.toml",
  throughput_slices: interleave || 1,
  runs: {},
};

const storageArgs = args.storage ? ["--storage", args.storage] : [];
const projectArgs = [
    "--var", `CHECKIN_LONG_POLL=${longPoll}`, "--var", "CHECKIN_JITTER=1s", ...storageArgs,
    // The parked path's check-ins ask for the shortest poll (fleet-sim's checkin_parked): 500 ms here.
    "--var", "CHECKIN_MIN_POLL=500ms",
    // The fleet size an operator would declare: it picks the admission tier (src/limits/tiers.ts).
    // "max" is the loosest tier; pass --max-agents N to bench the tier an operator of N agents gets.
    "--var", `FLEET_MAX_AGENTS=${args["max-agents"] ?? "max"}`,
    // Fan-out shards per policy, to compare shard counts (wrangler.toml's value otherwise).
    ...(args.shards ? ["--var", `POLICY_HUB_SHARDS=${args.shards}`] : []),
    // Roster parts per policy: ceil(FLEET_MAX_AGENTS ÷ this). Many small policies (--policies) want
    // 1000000 here, one part each, as docs/scale.md §2 tells an operator whose policies are small.
    ...(args["agents-per-roster-shard"] ? ["--var", `AGENTS_PER_ROSTER_SHARD=${args["agents-per-roster-shard"]}`] : []),
    // Agents per second a revision is delivered to (docs/scale.md §3; wrangler.toml's 16,000 otherwise).
    ...(args["rollout-rate"] ? ["--var", `ROLLOUT_RATE=${args["rollout-rate"]}`] : []),
    // Every flush goes to the hubs at once, so the count phases (12 s after their heartbeats) see its
    // calls; the cost model joins a minute of flushes into one call per policy, as production does.
    "--var", "CHECKIN_VIEW_LAG=0s",
    // The server's log level (wrangler.toml's otherwise): info logs each enrollment and socket.
    ...(args["log-level"] ? ["--var", `LOG_LEVEL=${args["log-level"]}`] : []),
];
if (interleave) {
  // Each side runs up to its throughput phase alone; then the slices alternate.
  const project = await start("project", basePort, projectArgs);
  await project.waitFor(/throughput: slice 1 of \d+ waiting/);
  const bare = await start("bare", basePort + 1, storageArgs);
  await bare.waitFor(/throughput: slice 1 of \d+ waiting/);
  for (let i = 1; i <= interleave; i++) {
    for (const side of i % 2 === 1 ? [project, bare] : [bare, project]) {
      side.go();
      await side.waitFor(new RegExp(`throughput: slice ${i} done`));
    }
  }
  report.runs.project = await project.finish();
  report.runs.bare = await bare.finish();
  report.throughput_pairs = pairs(report.runs.project, report.runs.bare);
} else {
  if (args.only !== "bare") report.runs.project = await (await start("project", basePort, projectArgs)).finish();
  if (args.only !== "project") report.runs.bare = await (await start("bare", basePort + 1, storageArgs)).finish();
}
report.comparison = compare(report.runs.project, report.runs.bare);
if (report.runs.project?.counts) report.cost = costTable(report.runs.project.counts, { cpuMsPerHeartbeat: cpuOfRun(report.runs.project) });
report.finished_at = new Date().toISOString();
const file = path.join(outDir, `run-${agents}-${stamp}.json`);
writeFileSync(file, JSON.stringify(report, null, 2) + "\n");
printTable(report.comparison);
if (report.cost) printCostTable(report.cost);
console.error(`[run] report: ${file}`);

/**
 * Starts one server and the simulator against it. `finish()` waits for the simulator, stops the
 * server and returns the simulator's JSON; `waitFor` and `go` drive an interleaved throughput phase.
 */
async function start(worker, port, serveArgs) {
  const direct = args.direct ? ["--direct-port", String(port + 100)] : [];
  const workerLog = [];
  const count = counting && worker === "project" ? ["--count"] : [];
  const { server, ready } = await startServer(["--worker", worker, "--port", String(port), "--admin-token", adminToken, "--max-seconds", String(maxSeconds), ...serveArgs, ...direct, ...count], {
    label: `${worker} server`,
    onLog: (line) => {
      workerLog.push(line);
      process.stderr.write(`[${worker} server] ${line}\n`);
    },
  });
  console.error(`[run] ${worker} server ready at ${ready.directUrl ?? ready.url} (workerd ${ready.workerdPids.join(",")})`);
  const out = path.join(outDir, `${worker === "bare" ? "bare" : "fleet-sim"}-${agents}-${stamp}.json`);
  const sim = startSimulator([
    "--target", worker === "bare" ? "bare" : "fleet",
    "--url", ready.directUrl ?? ready.url,
    "--admin-token", adminToken,
    "--server-pids", ready.workerdPids.join(","),
    "--out", out,
    "--max-seconds", String(maxSeconds),
    ...simArgs,
    ...count,
  ]);
  const exited = new Promise((resolve) => sim.on("exit", resolve));
  const waiters = [];
  createInterface({ input: sim.stderr }).on("line", (line) => {
    process.stderr.write(interleave ? `[${worker}] ${line}\n` : `${line}\n`);
    for (const w of waiters.splice(0)) {
      if (w.pattern.test(line)) w.resolve();
      else waiters.push(w);
    }
  });
  const waitFor = (pattern) =>
    Promise.race([
      new Promise((resolve) => waiters.push({ pattern, resolve })),
      exited.then((code) => Promise.reject(new Error(`${worker} simulator exited (${code}) before ${pattern}`))),
    ]);
  return { waitFor, go: () => sim.stdin.write("go\n"), finish: () => finish(worker, server, sim, exited, out, workerLog) };
}

async function finish(worker, server, sim, exited, out, workerLog) {
  sim.stdin.end();
  const code = await exited;
  server.stdin.end(); // serve.mjs stops when its stdin closes
  await new Promise((resolve) => {
    const t = setTimeout(() => {
      server.kill("SIGKILL");
      resolve();
    }, 15_000);
    server.on("exit", () => {
      clearTimeout(t);
      resolve();
    });
  });
  const result = JSON.parse(readFileSync(out, "utf8"));
  result.sim_exit_code = code;
  // The hub logs when it has woken its waiters; line it up with the publish (both are wall-clock ms).
  result.worker_log_events = workerLog.filter((l) => l.includes('"event"')).slice(-20);
  result.result_file = path.relative(root, out);
  return result;
}

/**
 * Per pair of interleaved slices: the answered check-in against the trivial route and against the
 * floor, and the parked check-in's server CPU per request against the floor's (floor ÷ parked).
 */
function pairs(project, bare) {
  const p = project?.phases?.checkin_throughput?.slices ?? [];
  const b = bare?.phases?.checkin_throughput?.slices ?? [];
  const fl = bare?.phases?.checkin_floor?.slices ?? [];
  const pk = project?.phases?.checkin_parked?.slices ?? [];
  const ratio = (x, y) => (x != null && y ? Math.round((x / y) * 100) / 100 : null);
  const cpuPer = (x) => (x?.completed_ok ? x.cpu.server_cpu_s / x.completed_ok : null);
  return p.map((x, i) => ({
    project: x.per_second,
    bare: b[i]?.per_second ?? null,
    ratio: ratio(x.per_second, b[i]?.per_second),
    floor: fl[i]?.per_second ?? null,
    ratio_to_floor: ratio(x.per_second, fl[i]?.per_second),
    parked_cpu_ratio_to_floor: ratio(cpuPer(fl[i]), cpuPer(pk[i])),
  }));
}

function compare(project, bare) {
  const rows = [];
  const f = project?.phases?.fanout ?? [];
  const b = bare?.phases?.fanout?.[0];
  const worst = (k) => (f.length ? Math.max(...f.map((r) => r.receive_ms?.[k] ?? Infinity)) : null);
  const ratio = (x, y) => (x != null && y ? Math.round((x / y) * 100) / 100 : null);
  const add = (metric, value, base, target, pass) => rows.push({ metric, project: value, bare: base ?? null, ratio: ratio(value, base), target, pass });
  const agentsN = project?.phases?.connect?.agents ?? bare?.phases?.connect?.agents;
  const sockets = project?.websocket?.agents ?? bare?.websocket?.agents ?? 0;
  const collectors = project?.opamp?.agents ?? 0;
  add(`connected agents (${sockets} on WebSocket, ${collectors ? `${collectors} OpAMP collectors, ` : ""}the rest long-polling)`, agentsN, bare?.phases?.connect?.agents, "10,000", agentsN >= 10_000);
  for (const k of ["p50", "p95", "p99", "max"]) {
    const v = worst(k);
    const base = b?.receive_ms?.[k];
    const pass = k === "max" ? v <= 5000 && (!base || v <= 2 * base) : k === "p99" ? v <= 3000 : null;
    add(`fan-out ${k} (ms, worst round)`, v, base, k === "max" ? "≤ 5000 and ≤ 2× bare" : k === "p99" ? "≤ 3000" : "", pass);
  }
  // Per channel when the fleet mixes them (--ws-fraction, --opamp-fraction): each one's worst p99.
  for (const channel of ["long_poll", "websocket", "opamp"]) {
    const p99s = f.map((r) => r.receive_ms_by_channel?.[channel]?.p99).filter((v) => v != null);
    if (p99s.length && (sockets || collectors)) add(`fan-out p99 over ${channel} (ms, worst round)`, Math.max(...p99s), null, "", null);
  }
  const conv = f.length ? Math.max(...f.map((r) => r.ack_convergence_ms ?? Infinity)) : null;
  add("ack convergence (ms, worst round)", conv, null, "", null);
  const mp = project?.memory?.per_agent?.parked_vs_start_kb;
  const mb = bare?.memory?.per_agent?.parked_vs_start_kb;
  add("server memory per connected agent (KiB RSS)", mp, mb, "≤ 1.25× bare", mp != null && mb ? mp <= 1.25 * mb : null);
  const tp = project?.phases?.checkin_throughput?.per_second;
  const tb = bare?.phases?.checkin_throughput?.per_second;
  add("check-in throughput (/s) against the trivial route", tp, tb, "", null);
  const tf = bare?.phases?.checkin_floor?.per_second;
  add("answered check-in throughput (/s) against the floor", tp, tf, "≥ 0.8× floor", tp != null && tf ? tp >= 0.8 * tf : null);
  // CPU per request: the floor's over the parked path's, so ≥ 0.8 means the parked path costs ≤ 1.25× the floor.
  const cp = project?.phases?.checkin_parked?.server_cpu_ms_per_request;
  const cf = bare?.phases?.checkin_floor?.server_cpu_ms_per_request;
  rows.push({ metric: "parked check-in: server CPU ms per request (ratio = floor ÷ parked)", project: cp ?? null, bare: cf ?? null, ratio: ratio(cf, cp), target: "≥ 0.8", pass: cp && cf ? cf / cp >= 0.8 : null });
  const en = project?.phases?.enroll?.per_second;
  add("enrollments/s", en, null, "≥ 300", en != null ? en >= 300 : null);
  return rows;
}

function printTable(rows) {
  const fmt = (x) => (x == null ? "–" : typeof x === "number" ? String(x) : x);
  console.log("| metric | project | bare baseline | ratio | target | met |");
  console.log("|---|---|---|---|---|---|");
  for (const r of rows) console.log(`| ${r.metric} | ${fmt(r.project)} | ${fmt(r.bare)} | ${fmt(r.ratio)} | ${r.target} | ${r.pass == null ? "" : r.pass ? "yes" : "no"} |`);
}

