#!/usr/bin/env node
// Fleet simulator (the role Elastic's Horde plays): many emulated Elastic Agents 9.6 against one server.
//
//   node scripts/fleet-sim.mjs --url http://127.0.0.1:18330 --admin-token T --agents 1000
//   node scripts/fleet-sim.mjs --target bare --url http://127.0.0.1:18331 --agents 1000   (baseline Worker)
//
// Phases (target "fleet"):
//   1. policy + enrollment key through the admin API;
//   2. enrollment of N agents with bounded concurrency (enrollments/s);
//   3. long-poll fleet: every agent runs elastic-agent's loop (check in; on return wait 1 s + U[0,500 ms);
//      ack each POLICY_CHANGE; report agent_policy_id/policy_revision_idx) until all N are parked;
//   4. fan-out: a new revision is published; for each agent, publish → POLICY_CHANGE received, and
//      publish → its ack answered; repeated --rounds times;
//   5. check-in throughput (last, so it does not disturb the memory figures): the loops stop, a
//      revision nobody will ack is published, and C workers check in back to back for T seconds.
//      Every check-in reports the older revision, so each is answered at once with a POLICY_CHANGE:
//      the full path (key check, agent record write, hub, policy serialisation), never parked.
//      With --throughput-slices K it runs K such slices, each when a line arrives on stdin.
// --ws-fraction F: that share of the agents use the WebSocket channel; --opamp-fraction F: that share
// are OpenTelemetry collectors on OpAMP (enrolled over POST /v1/opamp, then pushed to on an OpAMP
// WebSocket); fan-out is reported per channel.
// Target "bare" runs the same client against scripts/bench/bare-worker.mjs: throughput on /ok, and
// N requests parked in one Durable Object then released at once with a payload of the same size.
//
// Server memory: VmRSS of the server's workerd process(es) (--server-pids, else found by the port).
// Results: bench-results/<name>-<timestamp>.json; progress on stderr. Everything is bounded: agents
// ≤ 20,000, each phase by time, the whole run by --max-seconds. Traffic goes to loopback only.
//
// File descriptors: one socket per agent. `ulimit -n` is per process; when the soft limit is below
// the hard one this script re-executes itself under `bash -c 'ulimit -n <hard>; exec node …'`.
import http from "node:http";
import { spawnSync } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import zlib from "node:zlib";
import { parseArgs } from "./bench/args.mjs";
import { decodeServerToAgent, encodeAgentToServer, revisionOfHash } from "./lib/opamp-wire.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const args = parseArgs(process.argv.slice(2));

raiseFdLimit();

const opt = {
  target: args.target ?? "fleet",
  url: new URL(args.url ?? process.env.FLEET_URL ?? "http://127.0.0.1:18330"),
  adminToken: args["admin-token"] ?? process.env.FLEET_ADMIN_TOKEN ?? "bench-admin-token",
  agents: Math.min(Number(args.agents ?? 100), 20_000),
  enrollConcurrency: Number(args["enroll-concurrency"] ?? 64),
  throughputSeconds: Number(args["throughput-seconds"] ?? 10),
  // With K > 1 the throughput phase is K slices of --throughput-seconds, each started by a line on
  // stdin: scripts/bench/run.mjs --interleave alternates them with the baseline's (same minutes).
  throughputSlices: Math.max(1, Number(args["throughput-slices"] ?? 1)),
  throughputConcurrency: Number(args["throughput-concurrency"] ?? 256),
  rampRate: Number(args["ramp-rate"] ?? 2000),
  rounds: Math.max(1, Math.min(Number(args.rounds ?? 1), 10)),
  fanoutTimeout: Number(args["fanout-timeout"] ?? 120),
  settleSeconds: Number(args["settle-seconds"] ?? 3),
  maxSeconds: Number(args["max-seconds"] ?? 1800),
  name: args.name ?? (args.target === "bare" ? "bare" : "fleet-sim"),
  policyId: args["policy-id"] ?? `bench-${Date.now().toString(36)}`,
  // Agent i enrolls into policy i mod N (`<policy-id>-<k>` when N > 1), and every revision is
  // published to all N: fleet B's shape (many small policies) for the counts of what it costs.
  policies: Math.max(1, Math.min(Number(args.policies ?? 1), 1000)),
  wsFraction: Number(args["ws-fraction"] ?? 0),
  // This share of the fleet are OpenTelemetry collectors on OpAMP (docs/opamp.md): enrolled with the
  // token over POST /v1/opamp, then on an OpAMP WebSocket with their own credential (pushed to).
  opampFraction: Math.min(Math.max(Number(args["opamp-fraction"] ?? 0), 0), 1),
  serverPids: args["server-pids"] ? String(args["server-pids"]).split(",").map(Number) : null,
  out: args.out ?? null,
  // Off by default: the server's Retry-After carries up to 30 s of jitter, which would measure the
  // jitter, not the server. A refused request is retried after U[100, 600) ms and counted.
  honorRetryAfter: Boolean(args["honor-retry-after"]),
  // What agents send is `gzip` (Go's transport). Under Miniflare that makes its entry worker gzip
  // every JSON answer on workerd's one thread, which Cloudflare's edge does outside the Worker;
  // `identity` measures the Worker without that local-only cost (BENCHMARKS.md, "Where the time goes").
  acceptEncoding: String(args["accept-encoding"] ?? "gzip"),
  // The server counts billable events (serve.mjs --count): record them per phase, and measure one
  // steady-state heartbeat per agent on each channel (what a fleet costs per agent-hour).
  counts: Boolean(args.count),
};
// Loopback only: this machine may send load to nothing else.
if (!/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(opt.url.hostname)) {
  console.error(`refusing ${opt.url.hostname}: load goes to loopback addresses only`);
  process.exit(2);
}

const VERSION = "9.6.0";
const startedAt = performance.now();
const hardDeadline = setTimeout(() => {
  log(`--max-seconds ${opt.maxSeconds} reached: stopping`);
  finish("max-seconds").catch(() => process.exit(1));
}, opt.maxSeconds * 1000);
hardDeadline.unref();
// Interrupted (Ctrl-C, a driver's kill): still write what was measured so far.
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => finish(sig).catch(() => process.exit(1)));

/** Bound on retries of requests that failed on stale keep-alive connections (see send). */
const MAX_REUSED_RETRIES = 10;
// One keep-alive pool; a long poll holds its socket, so sockets ≈ requests in flight. Idle sockets are
// capped (Go keeps up to 100 per agent for 90 s; here that would double the fds on both sides).
const pool = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 512, scheduling: "lifo" });
const inflight = new Set();
const errors = {}; // phase → route → status|error code → count
let phase = "setup";
let stopped = false;
const results = {
  tool: "fleet-sim",
  target: opt.target,
  started_at: new Date().toISOString(),
  options: { ...opt, url: opt.url.href, adminToken: undefined },
  machine: machineInfo(),
  phases: {},
  memory: {},
  errors,
};

main().catch(async (err) => {
  log(`failed: ${err.stack ?? err}`);
  results.failure = String(err.stack ?? err);
  await finish("error");
});

async function main() {
  opt.serverPids ??= pidsListeningOn(Number(opt.url.port || 80));
  results.server_pids = opt.serverPids;
  results.workerd_version = workerdVersion();
  log(`target ${opt.target} at ${opt.url.href}, ${opt.agents} agents, server pids ${opt.serverPids.join(",") || "unknown"}`);
  if (opt.target === "bare") await runBare();
  else await runFleet();
  await finish("done");
}

// ---------------------------------------------------------------------------------------------
// Target "fleet": the project's server.

async function runFleet() {
  snapshot("start");
  phase = "setup";
  const policyIds = opt.policies === 1 ? [opt.policyId] : Array.from({ length: opt.policies }, (_, k) => `${opt.policyId}-${k}`);
  await publishAll(policyIds, 1);
  const enrollmentTokens = [];
  for (const policyId of policyIds) {
    const key = await admin("POST", "/api/fleet/enrollment_api_keys", { policy_id: policyId, name: "bench" });
    if (key.status !== 200) throw new Error(`enrollment key: ${key.status} ${key.body}`);
    enrollmentTokens.push(JSON.parse(key.body).item.api_key);
  }
  snapshot("policy_created");

  // 2. Enrollment.
  phase = "enroll";
  const countsBeforeEnroll = await serverCounts();
  const agents = Array.from({ length: opt.agents }, (_, i) => newAgent(i));
  const opampCount = Math.round(opt.opampFraction * agents.length);
  for (const a of agents.slice(0, opampCount)) a.opamp = true;
  const enrollLatency = [];
  const enrollStart = performance.now();
  const cpu0 = cpuNow();
  await pooled(agents, opt.enrollConcurrency, async (a) => {
    const t = performance.now();
    const enrollmentToken = enrollmentTokens[a.i % enrollmentTokens.length];
    let res;
    // Admission limits answer 429 with Retry-After; the simulator waits that long and tries again
    // (a real agent ignores Retry-After and backs off ≥ 60 s, which would only stretch the phase).
    if (a.opamp) {
      if (await enrollCollector(a, enrollmentToken)) enrollLatency.push(performance.now() - t);
      return;
    }
    for (let attempt = 1; attempt <= 30 && !stopped; attempt++) {
      res = await send("enroll", "POST", "/api/fleet/agents/enroll?", agentHeaders(enrollmentToken), Buffer.from(JSON.stringify(enrollBody(a))));
      if (res.status !== 429 && res.status !== 0) break;
      await sleep(retryDelay(res, 1000));
    }
    if (res?.status !== 200) return;
    const item = JSON.parse(res.body).item;
    a.id = item.id;
    a.key = item.access_api_key;
    enrollLatency.push(performance.now() - t);
  }, (done) => `enrolled ${done}/${agents.length}`);
  const enrollSeconds = (performance.now() - enrollStart) / 1000;
  const enrolled = agents.filter((a) => a.key);
  results.phases.enroll = {
    agents: agents.length,
    enrolled: enrolled.length,
    concurrency: opt.enrollConcurrency,
    seconds: r2(enrollSeconds),
    per_second: r2(enrolled.length / enrollSeconds),
    latency_ms: summary(enrollLatency),
    cpu: cpuSince(cpu0),
  };
  log(`enrollment: ${enrolled.length} in ${enrollSeconds.toFixed(1)} s = ${(enrolled.length / enrollSeconds).toFixed(0)}/s`);
  snapshot("enrolled");
  await recordCounts("enroll", countsBeforeEnroll, enrolled.length);
  const wsCount = await probeWebSocket(enrolled.find((a) => !a.opamp), enrolled.filter((a) => !a.opamp).length);
  results.opamp = { requested_fraction: opt.opampFraction, agents: enrolled.filter((a) => a.opamp).length };
  if (opampCount) log(`--opamp-fraction ${opt.opampFraction}: ${results.opamp.agents} OpAMP collectors on WebSocket`);

  // 3. The fleet: the first `wsCount` agents hold a WebSocket, the rest long-poll.
  phase = "connect";
  const fleet = { latestRevision: 1, round: null };
  const loops = [];
  const rampStart = performance.now();
  for (let i = 0; i < enrolled.length && !stopped; i++) {
    const due = rampStart + (i * 1000) / opt.rampRate;
    if (due > performance.now()) await sleep(due - performance.now());
    const a = enrolled[i];
    // Sockets are the first `wsCount` Elastic Agents (collectors come first in the list).
    loops.push(a.opamp ? opampLoop(a, fleet) : i - results.opamp.agents < wsCount ? socketLoop(a, fleet) : agentLoop(a, fleet));
  }
  const parkStart = performance.now();
  await waitUntil(() => parkedCount(enrolled, fleet) === enrolled.length, 300_000, () => `parked ${parkedCount(enrolled, fleet)}/${enrolled.length}`);
  results.phases.connect = { agents: enrolled.length, ramp_rate: opt.rampRate, seconds_to_all_parked: r2((performance.now() - rampStart) / 1000) };
  log(`all ${enrolled.length} parked ${((performance.now() - parkStart) / 1000).toFixed(1)} s after the ramp; settling ${opt.settleSeconds} s`);
  await sleep(opt.settleSeconds * 1000);
  snapshot("parked");

  // 5. Fan-out rounds.
  results.phases.fanout = [];
  for (let r = 0; r < opt.rounds && !stopped; r++) {
    phase = `fanout${r + 1}`;
    const revisionExpected = fleet.latestRevision + 1;
    const round = { revision: revisionExpected, t0: 0, received: new Map(), byChannel: { websocket: [], long_poll: [], opamp: [] }, acked: new Map(), reparked: new Map() };
    const countsBefore = await serverCounts();
    const cpu1 = cpuNow();
    round.t0 = performance.now();
    fleet.round = round;
    const published = await publishAll(policyIds, revisionExpected);
    const publishMs = performance.now() - round.t0;
    fleet.latestRevision = published;
    round.revision = published;
    await waitUntil(() => round.acked.size >= enrolled.length, opt.fanoutTimeout * 1000, () => `rev ${published}: received ${round.received.size}, acked ${round.acked.size}/${enrolled.length}`);
    const cpu = cpuSince(cpu1);
    await waitUntil(() => parkedCount(enrolled, fleet) === enrolled.length, 60_000, () => `re-parked ${parkedCount(enrolled, fleet)}/${enrolled.length}`);
    const received = [...round.received.values()];
    const acked = [...round.acked.values()];
    const out = {
      revision: published,
      agents: enrolled.length,
      publish_call_ms: round1(publishMs),
      receive_ms: summary(received),
      // Which channel a late tail came through: pushed on a socket, or a parked poll answered.
      receive_ms_by_channel: { websocket: summary(round.byChannel.websocket), long_poll: summary(round.byChannel.long_poll), opamp: summary(round.byChannel.opamp) },
      received: received.length,
      missing: enrolled.length - received.length,
      ack_ms: summary(acked),
      ack_convergence_ms: acked.length === enrolled.length ? round1(Math.max(...acked)) : null,
      reparked_all_ms: round1(performance.now() - round.t0),
      cpu,
    };
    results.phases.fanout.push(out);
    log(`rev ${published}: p50 ${out.receive_ms.p50} p95 ${out.receive_ms.p95} p99 ${out.receive_ms.p99} max ${out.receive_ms.max} ms (sockets p99 ${out.receive_ms_by_channel.websocket.p99 ?? "–"}, polls p99 ${out.receive_ms_by_channel.long_poll.p99 ?? "–"}, OpAMP p99 ${out.receive_ms_by_channel.opamp.p99 ?? "–"}); acks converged ${out.ack_convergence_ms} ms`);
    fleet.round = null;
    await sleep(opt.settleSeconds * 1000);
    snapshot(`after_${phase}`);
    await recordCounts(phase, countsBefore, enrolled.length);
  }
  results.memory.per_agent = perAgentMemory(enrolled.length);
  if (opt.counts) await socketHeartbeats(enrolled, fleet);

  // 5. Check-in throughput, last so that it does not disturb the memory figures. The loops stop, a
  // revision nobody acks is published, and every check-in (reporting the older revision) is answered
  // at once with a POLICY_CHANGE: the whole check-in path, including the policy's serialisation.
  phase = "throughput";
  stopped = true;
  for (const req of inflight) req.destroy();
  for (const a of enrolled) a.socket?.close();
  await Promise.allSettled(loops);
  stopped = false;
  if (opt.counts) await pollHeartbeats(enrolled.filter((a) => !a.usedSocket));
  const latest = await publishAll(policyIds, fleet.latestRevision + 1);
  // The parked path beside it: a quarter of the agents, up to one per worker (their own, so every
  // other check-in stays a heartbeat), report the latest revision and ask for the shortest poll
  // (poll_timeout; the benchmark's server sets CHECKIN_MIN_POLL=500ms: each agent checks in ~1.5
  // times a second, under its 30 per 10 s), so each check-in parks in its shard and ends with nothing.
  // OpAMP collectors do not speak fleet-server's check-in.
  const fleetAgents = enrolled.filter((a) => !a.opamp);
  const parkedN = Math.min(opt.throughputConcurrency, Math.max(1, Math.floor(fleetAgents.length / 4)));
  Object.assign(results.phases, await throughputPhase([
    { key: "checkin_throughput", agents: fleetAgents.slice(0, fleetAgents.length - parkedN), build: (a) => ({
      path: `/api/fleet/agents/${a.id}/checkin?`,
      headers: { ...agentHeaders(a.key), "Content-Encoding": "gzip" },
      body: checkinBody(a, "online"),
      ok: (res) => res.status === 200 && res.body.includes('"POLICY_CHANGE"'),
    }) },
    { key: "checkin_parked", agents: fleetAgents.slice(fleetAgents.length - parkedN), build: (a) => ({
      path: `/api/fleet/agents/${a.id}/checkin?`,
      headers: { ...agentHeaders(a.key), "Content-Encoding": "gzip" },
      body: parkedCheckinBody(a, latest),
      ok: (res) => res.status === 200 && !res.body.includes('"POLICY_CHANGE"'),
    }) },
  ]));
  snapshot("after_throughput");
}

/**
 * Publishes the content of `revision` to every policy (created by the first call), which keeps
 * their revision numbers in step; returns the revision they now have.
 */
async function publishAll(policyIds, revision) {
  let published = null;
  for (const policyId of policyIds) {
    const res = await admin("PUT", `/api/fleet/agent_policies/${policyId}`, { name: `Bench ${policyId}`, namespace: "default", policy: policyContent(revision) });
    if (res.status !== 200) throw new Error(`publish ${policyId}: ${res.status} ${res.body}`);
    const item = JSON.parse(res.body).item.revision;
    if (published !== null && item !== published) throw new Error(`publish ${policyId}: revision ${item}, the others ${published}`);
    published = item;
  }
  return published;
}

/**
 * The server's billable counts so far (serve.mjs --count; scripts/bench/counting-entry.mjs), or
 * null when the run does not count.
 */
async function serverCounts() {
  if (!opt.counts) return null;
  const res = await send("admin", "GET", "/__bench/counts", {}, null);
  return res.status === 200 ? JSON.parse(res.body) : null;
}

/** What the server counted since `before`, over `n` events (agents enrolled, agents given a revision, heartbeats). */
async function recordCounts(label, before, n) {
  if (!before) return;
  const after = await serverCounts();
  const diff = (a, b) => {
    if (typeof b === "number") return b - (typeof a === "number" ? a : 0);
    if (b && typeof b === "object") return Object.fromEntries(Object.entries(b).map(([k, v]) => [k, diff(a?.[k], v)]));
    return b;
  };
  const delta = diff(before, after);
  delete delta.busiest;
  // Each class's busiest object-second in this phase (its peak rate), instead of every object's seconds.
  const peak = {};
  for (const [key, seconds] of Object.entries(delta.per_object_seconds ?? {})) {
    const cls = key.slice(0, key.indexOf("/"));
    for (const [second, n] of Object.entries(seconds)) {
      if (n > (peak[cls]?.events ?? 0)) peak[cls] = { object: key.slice(cls.length + 1), second: Number(second), events: n };
    }
  }
  delete delta.per_object_seconds;
  delta.peak_per_second = peak;
  (results.counts ??= {})[label] = { events: n, ...delta };
}

/**
 * One steady-state heartbeat per socket agent: a check-in message on its socket, answered with
 * nothing new; then the time for held check-in times to be written (10 s) and their roster touches
 * delivered. The counts over it, per socket, are what a socket check-in costs.
 */
async function socketHeartbeats(agents, fleet) {
  const sockets = agents.filter((a) => a.socket);
  if (sockets.length === 0) return;
  phase = "socket_heartbeat";
  const round = async () => {
    const target = (fleet.checkinReplies ?? 0) + sockets.length;
    const start = performance.now();
    for (const [i, a] of sockets.entries()) {
      const due = start + (i * 1000) / opt.rampRate;
      if (due > performance.now()) await sleep(due - performance.now());
      a.socketCheckin?.();
    }
    await waitUntil(() => (fleet.checkinReplies ?? 0) >= target, 60_000, () => `socket check-ins answered ${sockets.length - (target - (fleet.checkinReplies ?? 0))}/${sockets.length}`);
    await sleep(12_000);
  };
  // The first check-in message after a pushed revision and its ack reports what changed (it is
  // written at once, with its roster row): not a heartbeat. The second one is.
  await round();
  const before = await serverCounts();
  await round();
  await recordCounts("socket_heartbeat", before, sockets.length);
  log(`socket heartbeats: ${sockets.length} measured`);
}

/**
 * One steady-state heartbeat per long-poll agent: a check-in reporting the revision it runs, parked
 * for CHECKIN_MIN_POLL (500 ms on the benchmark's server) and answered with nothing; then the
 * time for held times to be written and roster touches delivered. Per agent, what a poll costs.
 */
async function pollHeartbeats(agents) {
  if (agents.length === 0) return;
  phase = "poll_heartbeat";
  await sleep(2000);
  const before = await serverCounts();
  let ok = 0;
  await pooled(agents, opt.throughputConcurrency, async (a) => {
    const res = await send("checkin", "POST", `/api/fleet/agents/${a.id}/checkin?`, { ...agentHeaders(a.key), "Content-Encoding": "gzip" }, parkedCheckinBody(a, a.revision));
    if (res.status === 200 && !res.body.includes('"POLICY_CHANGE"')) ok++;
  }, (done) => `poll heartbeats ${done}/${agents.length}`);
  await sleep(12_000);
  await recordCounts("poll_heartbeat", before, ok);
  log(`poll heartbeats: ${ok} of ${agents.length} parked and answered with nothing`);
  phase = "throughput";
}

/** elastic-agent's check-in loop (fleet_gateway.go): check in, handle actions, 1 s + U[0,500 ms), again. */
async function agentLoop(a, fleet) {
  let backoffMs = 0;
  while (!stopped) {
    a.pollRevision = a.revision;
    a.pollSentAt = performance.now();
    const res = await send("checkin", "POST", `/api/fleet/agents/${a.id}/checkin?`, { ...agentHeaders(a.key), "Content-Encoding": "gzip" }, checkinBody(a, a.revision ? "online" : "starting"), 600_000);
    a.pollSentAt = 0;
    if (stopped) return;
    if (res.status !== 200) {
      // Real agents back off 60 s+ (EqualJitterBackoff) and ignore Retry-After; a shorter backoff
      // (Retry-After when given) keeps a benchmark finite. Every such answer is counted in `errors`.
      backoffMs = Math.min(Math.max(backoffMs * 2, 1000), 10_000);
      await sleep(res.status === 429 ? retryDelay(res, backoffMs) : backoffMs);
      continue;
    }
    backoffMs = 0;
    const received = performance.now();
    const body = JSON.parse(res.body);
    if (body.ack_token) a.ackToken = body.ack_token;
    for (const action of body.actions ?? []) {
      if (action.type !== "POLICY_CHANGE") continue;
      const acked = receivePolicyChange(a, fleet, action, received, "long_poll");
      // The ack goes out while the gateway waits for its next tick (the acker runs on its own).
      ackWithRetry(a, action.id).then(acked);
    }
    await sleep(1000 + Math.random() * 500);
  }
}

/**
 * Applies a POLICY_CHANGE the agent received (over HTTP or its socket), stamping its arrival for the
 * current fan-out round; returns what to do once its ack is answered.
 */
function receivePolicyChange(a, fleet, action, receivedAt, channel) {
  const revision = action.data.policy.revision;
  const round = fleet.round;
  if (round && revision === round.revision && !round.received.has(a.id)) {
    round.received.set(a.id, receivedAt - round.t0);
    round.byChannel[channel].push(receivedAt - round.t0);
  }
  a.revision = revision;
  a.policyId = action.data.policy.id;
  return (ok) => {
    if (ok && round && revision === round.revision && !round.acked.has(a.id)) round.acked.set(a.id, performance.now() - round.t0);
    if (ok) a.ackedRevision = Math.max(a.ackedRevision, revision);
  };
}

/** The current-layout ack event of a POLICY_CHANGE (elastic-agent-client.md §6.2). */
function policyChangeAckEvent(a, actionId) {
  return {
    action_id: actionId,
    agent_id: a.id,
    message: `Action "${actionId}" of type "POLICY_CHANGE" acknowledged.`,
    subtype: "ACKNOWLEDGED",
    timestamp: nanoTimestamp(),
    type: "ACTION_RESULT",
  };
}

/**
 * An agent on the WebSocket channel (protocol v1, README "The WebSocket channel"): connect, send a
 * check-in message, apply what arrives (replies and pushes), ack each POLICY_CHANGE on the socket,
 * and send a check-in every 4 minutes to keep the delivery lease. Reconnects after 1-10 s.
 */
async function socketLoop(a, fleet) {
  let backoffMs = 0;
  while (!stopped) {
    const closed = await new Promise((resolve) => {
      const ws = new WebSocket(`ws://${opt.url.host}/api/fleet/agents/${a.id}/ws`, { headers: agentHeaders(a.key) });
      let nextId = 0;
      const acks = new Map();
      let heartbeat = null;
      let keepalive = null;
      // A check-in without a reply in 30 s, or answered with an error, is sent again after 1-10 s
      // (an HTTP agent would time out and retry); both are counted, so lost replies show.
      let unanswered = null;
      const checkin = () => {
        clearTimeout(unanswered?.timer);
        const id = ++nextId;
        unanswered = { id, timer: setTimeout(() => (count("socket", "checkin_unanswered"), checkin()), 30_000) };
        ws.send(JSON.stringify({ v: 1, type: "checkin", id, body: JSON.parse(zlib.gunzipSync(checkinBody(a, a.revision ? "online" : "starting"))) }));
      };
      const retryCheckin = () => {
        clearTimeout(unanswered?.timer);
        unanswered = { id: null, timer: setTimeout(checkin, 1000 + Math.random() * 9000) };
      };
      ws.addEventListener("open", () => {
        a.socket = ws;
        a.usedSocket = true;
        a.socketCheckin = checkin;
        backoffMs = 0;
        checkin();
        heartbeat = setInterval(checkin, 240_000);
        // As the README asks of clients: proxies close idle sockets; the server's runtime answers these.
        keepalive = setInterval(() => ws.send('{"v":1,"type":"ping"}'), 30_000);
      });
      ws.addEventListener("message", (event) => {
        const received = performance.now();
        const message = JSON.parse(event.data);
        if (message.type === "pong") return;
        if (message.type === "ack") {
          acks.get(message.id)?.(message.status === 200 && message.body.action === "acks");
          acks.delete(message.id);
          return;
        }
        if (message.type === "error") {
          count("socket", `error_${message.status}`);
          if (acks.has(message.id)) {
            acks.get(message.id)(false);
            acks.delete(message.id);
          } else if (message.id !== null && message.id === unanswered?.id) retryCheckin();
          return;
        }
        if (message.type === "checkin" && message.id === unanswered?.id) {
          clearTimeout(unanswered.timer);
          unanswered = null;
          fleet.checkinReplies = (fleet.checkinReplies ?? 0) + 1;
        }
        if (message.body?.ack_token) a.ackToken = message.body.ack_token;
        for (const action of message.body?.actions ?? []) {
          if (action.type !== "POLICY_CHANGE") continue;
          const acked = receivePolicyChange(a, fleet, action, received, "websocket");
          const id = ++nextId;
          new Promise((ok) => acks.set(id, ok)).then((ok) => {
            acked(ok);
            // A refused ack leaves the revision unacked: the next check-in (sent soon) reports it and is answered again.
            if (!ok) retryCheckin();
            if (ok) {
              // Connected and acked: "parked" in the sense the long-poll agents use.
              a.pollRevision = a.ackedRevision;
              a.pollSentAt = a.pollSentAt || performance.now();
            }
          });
          ws.send(JSON.stringify({ v: 1, type: "ack", id, body: { events: [policyChangeAckEvent(a, action.id)] } }));
        }
        if (a.pollRevision !== a.revision && a.ackedRevision === a.revision) a.pollRevision = a.revision;
        if (!a.pollSentAt && a.ackedRevision === a.revision) a.pollSentAt = performance.now();
      });
      ws.addEventListener("close", (event) => {
        clearInterval(heartbeat);
        clearInterval(keepalive);
        clearTimeout(unanswered?.timer);
        a.socket = null;
        a.pollSentAt = 0;
        resolve(event.code);
      });
      ws.addEventListener("error", () => {
        count("socket", "connect_error");
        // A connection that failed before it opened does not always get a close event (Node's
        // client, a reset under load): reconnect anyway rather than wait for one forever.
        if (a.socket !== ws) {
          setTimeout(() => {
            try {
              ws.close();
            } catch {
              // never opened
            }
            resolve("error");
          }, 1000);
        }
      });
    });
    if (stopped) return;
    count("socket", `close_${closed}`);
    // 4004: the policy's fan-out shards changed and the server asks for a reconnect now (docs/websocket.md).
    if (closed === 4004) {
      await sleep(Math.random() * 1000);
      continue;
    }
    backoffMs = Math.min(Math.max(backoffMs * 2, 1000), 10_000);
    await sleep(backoffMs);
  }
}

/** Enrolls a collector over POST /v1/opamp with the enrollment token; keeps the credential it is offered. */
async function enrollCollector(a, token) {
  a.uid = randomBytes(16);
  a.id = [...a.uid].map((b) => b.toString(16).padStart(2, "0")).join("").replace(/^(.{8})(.{4})(.{4})(.{4})/, "$1-$2-$3-$4-");
  for (let attempt = 1; attempt <= 30 && !stopped; attempt++) {
    const res = await send("opamp", "POST", "/v1/opamp", { Authorization: `ApiKey ${token}`, "Content-Type": "application/x-protobuf", "Accept-Encoding": "identity" }, Buffer.from(encodeAgentToServer({ uid: a.uid, seq: 0 })));
    if (res.status === 200) {
      const answer = decodeServerToAgent(res.bytes);
      a.key = answer.authorization;
      a.seq = 1;
      return Boolean(a.key);
    }
    if (res.status !== 429 && res.status !== 0) return false;
    await sleep(retryDelay(res, 1000));
  }
  return false;
}

/**
 * A collector on an OpAMP WebSocket with its own credential: reports the config it runs, applies
 * each config pushed or answered (APPLIED), and counts as "parked" once it runs the latest revision.
 * OpAMP needs no heartbeat here (the collector states no ReportsHeartbeat). Reconnects after 1-10 s.
 */
async function opampLoop(a, fleet) {
  let backoffMs = 0;
  while (!stopped) {
    const closed = await new Promise((resolve) => {
      const ws = new WebSocket(`ws://${opt.url.host}/v1/opamp`, { headers: { Authorization: a.key } });
      ws.binaryType = "arraybuffer";
      let applying = null;
      const report = (hash) => ws.send(Uint8Array.from([0, ...encodeAgentToServer({ uid: a.uid, seq: a.seq++, applied: hash ? new TextEncoder().encode(hash) : undefined })]));
      ws.addEventListener("open", () => {
        a.socket = ws;
        backoffMs = 0;
        report(a.appliedHash);
      });
      ws.addEventListener("message", (event) => {
        const received = performance.now();
        const answer = decodeServerToAgent(new Uint8Array(event.data).subarray(1));
        if (answer.error) return count("opamp", "error_response");
        if (answer.configHash) {
          const revision = revisionOfHash(answer.configHash);
          const round = fleet.round;
          if (round && revision === round.revision && !round.received.has(a.id)) {
            round.received.set(a.id, received - round.t0);
            round.byChannel.opamp.push(received - round.t0);
          }
          a.revision = revision;
          applying = { hash: answer.configHash, revision, round };
          return report(answer.configHash);
        }
        // The answer to our APPLIED report: the revision is acknowledged.
        if (applying) {
          const { hash, revision, round } = applying;
          applying = null;
          a.appliedHash = hash;
          a.ackedRevision = Math.max(a.ackedRevision, revision);
          if (round && revision === round.revision && !round.acked.has(a.id)) round.acked.set(a.id, performance.now() - round.t0);
        }
        if (a.ackedRevision === a.revision) {
          a.pollRevision = a.revision;
          a.pollSentAt = a.pollSentAt || performance.now();
        }
      });
      ws.addEventListener("close", (event) => {
        a.socket = null;
        a.pollSentAt = 0;
        resolve(event.code);
      });
      ws.addEventListener("error", () => count("opamp", "connect_error"));
    });
    if (stopped) return;
    count("opamp", `close_${closed}`);
    backoffMs = Math.min(Math.max(backoffMs * 2, 1000), 10_000);
    await sleep(backoffMs);
  }
}

/** Agents whose check-in is in flight, reports the latest revision, and has waited ≥ 1 s. */
function parkedCount(agents, fleet) {
  const now = performance.now();
  let n = 0;
  for (const a of agents) if (a.pollSentAt && now - a.pollSentAt > 1000 && a.pollRevision === fleet.latestRevision && a.ackedRevision === fleet.latestRevision) n++;
  return n;
}

/** The agent's acker retries failed acks (real agents: 60 s+ backoff, 5 attempts; shortened here, Retry-After honoured). */
async function ackWithRetry(a, actionId) {
  for (let attempt = 1; attempt <= 10 && !stopped; attempt++) {
    const res = await ack(a, actionId);
    if (res.ok) return true;
    await sleep(res.status === 429 ? retryDelay(res, 1000) : 1000 + Math.random() * 1000);
  }
  return false;
}

async function ack(a, actionId) {
  const event = policyChangeAckEvent(a, actionId);
  const res = await send("ack", "POST", `/api/fleet/agents/${a.id}/acks?`, agentHeaders(a.key), Buffer.from(JSON.stringify({ events: [event] })));
  let ok = false;
  try {
    ok = res.status === 200 && JSON.parse(res.body).action === "acks";
  } catch {
    // not the ack answer the agent requires (§6.7)
  }
  return { ok, status: res.status, retryAfterMs: res.retryAfterMs };
}

// ---------------------------------------------------------------------------------------------
// Target "bare": the baseline Worker (scripts/bench/bare-worker.mjs).

async function runBare() {
  snapshot("start");
  const clients = Array.from({ length: opt.agents }, (_, i) => newAgent(i));

  // Park N requests in one object, then release them all with a payload the size of a POLICY_CHANGE.
  phase = "connect";
  const payload = { ack_token: "", action: "checkin", actions: [{ agent_id: "x", created_at: new Date().toISOString(), data: { policy: { id: "bare", revision: 2, ...policyContent(2) } }, id: "policy:bare:2", input_type: "", type: "POLICY_CHANGE" }] };
  const parked = [];
  const round = { t0: 0, received: [] };
  // The same share of the fleet as the project's run holds a hibernating socket to the bare object.
  if (opt.wsFraction && typeof WebSocket === "undefined") throw new Error("--ws-fraction needs Node's WebSocket client: run with node --experimental-websocket (run.mjs does)");
  const socketCount = Math.round(opt.wsFraction * clients.length);
  const sockets = [];
  results.websocket = { requested_fraction: opt.wsFraction, available: true, agents: socketCount };
  const rampStart = performance.now();
  for (let i = 0; i < clients.length; i++) {
    const due = rampStart + (i * 1000) / opt.rampRate;
    if (due > performance.now()) await sleep(due - performance.now());
    const a = clients[i];
    if (i < socketCount) {
      const ws = new WebSocket(`ws://${opt.url.host}/ws`, { headers: agentHeaders("bare") });
      ws.addEventListener("message", () => round.t0 && round.received.push(performance.now() - round.t0));
      ws.addEventListener("error", () => count("socket", "connect_error"));
      sockets.push(ws);
      continue;
    }
    parked.push(
      send("park", "POST", "/park", agentHeaders("bare"), checkinBody(a, "online"), 600_000).then((res) => {
        if (res.status === 200 && round.t0) round.received.push(performance.now() - round.t0);
      }),
    );
  }
  // Not named `count`: that would hide count() from the socket error handler above, which then throws.
  let parkedNow = 0;
  await waitUntil(async () => (parkedNow = JSON.parse((await send("admin", "GET", "/count", {}, null)).body || "{}").parked ?? 0) >= clients.length, 300_000, () => `parked ${parkedNow}/${clients.length}`, 500);
  results.phases.connect = { agents: clients.length, ramp_rate: opt.rampRate, seconds_to_all_parked: round1((performance.now() - rampStart) / 1000) };
  await sleep(opt.settleSeconds * 1000);
  snapshot("parked");

  phase = "fanout1";
  const cpu1 = cpuNow();
  round.t0 = performance.now();
  const res = await send("admin", "POST", "/release", { "Content-Type": "application/json" }, Buffer.from(JSON.stringify({ payload })));
  const publishMs = performance.now() - round.t0;
  await waitUntil(() => round.received.length >= clients.length, opt.fanoutTimeout * 1000, () => `received ${round.received.length}/${clients.length}`);
  results.phases.fanout = [
    {
      agents: clients.length,
      payload_bytes: JSON.stringify(payload).length,
      released: JSON.parse(res.body).released,
      publish_call_ms: round1(publishMs),
      receive_ms: summary(round.received),
      received: round.received.length,
      missing: clients.length - round.received.length,
      cpu: cpuSince(cpu1),
    },
  ];
  const f = results.phases.fanout[0];
  log(`bare release: p50 ${f.receive_ms.p50} p95 ${f.receive_ms.p95} p99 ${f.receive_ms.p99} max ${f.receive_ms.max} ms`);
  await Promise.allSettled(parked);
  for (const ws of sockets) ws.close(1000);
  await sleep(1000);
  snapshot("after_fanout1");
  results.memory.per_agent = perAgentMemory(clients.length);

  phase = "throughput";
  Object.assign(results.phases, await throughputPhase([
    { key: "checkin_throughput", agents: clients, build: (a) => ({
      path: "/ok",
      headers: { ...agentHeaders("bare"), "Content-Encoding": "gzip" },
      body: checkinBody(a, "online"),
      ok: (res) => res.status === 200,
    }) },
    // The floor of a durable check-in: one RPC to the agent's object, one row read, one written, a POLICY_CHANGE-sized answer.
    { key: "checkin_floor", agents: clients, build: (a) => ({
      path: `/floor/${a.localId}`,
      headers: { ...agentHeaders("bare"), "Content-Encoding": "gzip" },
      body: checkinBody(a, "online"),
      ok: (res) => res.status === 200 && res.body.includes('"POLICY_CHANGE"'),
    }) },
  ]));
  snapshot("after_throughput");
}

// ---------------------------------------------------------------------------------------------
// Shared phases and helpers.

/**
 * The throughput phase: for each route ({key, agents, build}), back-to-back requests for
 * --throughput-seconds; with --throughput-slices K, K slices (each started by a line on stdin) that
 * run every route in turn, so a driver can interleave them with another server's. Returns one
 * result per route key.
 */
async function throughputPhase(routes) {
  const perRoute = routes.map(() => ({ slices: [], latency: [] }));
  const runSlice = async () => {
    for (const [i, route] of routes.entries()) perRoute[i].slices.push(await throughput(route.agents, route.build, perRoute[i].latency, route.key));
  };
  if (opt.throughputSlices === 1) await runSlice();
  else {
    const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
    for (let i = 1; i <= opt.throughputSlices && !stopped; i++) {
      log(`throughput: slice ${i} of ${opt.throughputSlices} waiting`);
      if ((await lines.next()).done) break;
      await runSlice();
      log(`throughput: slice ${i} done`);
    }
  }
  return Object.fromEntries(routes.map((route, i) => [route.key, combineSlices(perRoute[i].slices, perRoute[i].latency)]));
}

/** One route's slices as one result (totals, rates, CPU per request) with the slices kept. */
function combineSlices(slices, latency) {
  const sum = (f) => slices.reduce((n, x) => n + f(x), 0);
  const seconds = sum((x) => x.seconds);
  const ok = sum((x) => x.completed_ok);
  const serverCpu = sum((x) => x.cpu.server_cpu_s);
  return {
    method: slices[0]?.method ?? "",
    concurrency: slices[0]?.concurrency ?? 0,
    seconds: r2(seconds),
    completed_ok: ok,
    other: sum((x) => x.other),
    per_second: r2(ok / seconds),
    latency_ms: summary(latency),
    // Server CPU per answered request: what the parked path is compared on (its rate is set by the wait).
    server_cpu_ms_per_request: ok ? Math.round((serverCpu / ok) * 1e6) / 1e3 : null,
    cpu: { wall_s: r2(sum((x) => x.cpu.wall_s)), server_cpu_s: r2(serverCpu), sim_cpu_s: r2(sum((x) => x.cpu.sim_cpu_s)), server_cores: r2(serverCpu / seconds) },
    slices: slices.map(({ seconds, completed_ok, other, per_second, cpu }) => ({ seconds, completed_ok, other, per_second, cpu })),
  };
}

/** C workers, each owning agents w, w+C, …, send back to back for T seconds; completions per second. */
async function throughput(agents, build, latency = [], key = "checkin_throughput") {
  const concurrency = Math.min(opt.throughputConcurrency, agents.length);
  const first = latency.length;
  let ok = 0;
  let bad = 0;
  const cpu0 = cpuNow();
  const start = performance.now();
  const end = start + opt.throughputSeconds * 1000;
  log(`throughput: start ${key}`);
  const ticker = setInterval(() => log(`throughput: ${ok} ok, ${bad} other, ${(ok / ((performance.now() - start) / 1000)).toFixed(0)}/s`), 2000);
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      for (let i = w; performance.now() < end && !stopped; i += concurrency) {
        const a = agents[i % agents.length];
        const req = build(a);
        const t = performance.now();
        const res = await send(phase, "POST", req.path, req.headers, req.body);
        if (req.ok(res)) {
          ok++;
          latency.push(performance.now() - t);
        } else bad++;
      }
    }),
  );
  clearInterval(ticker);
  const seconds = (performance.now() - start) / 1000;
  const out = { method: "", concurrency, seconds: r2(seconds), completed_ok: ok, other: bad, per_second: r2(ok / seconds), latency_ms: summary(latency.slice(first)), cpu: cpuSince(cpu0) };
  out.method = `POST ${build(agents[0]).path.replace(/\/agents\/[^/]+\//, "/agents/{id}/").replace(/\/floor\/.*/, "/floor/{id}")} with the agent's headers and gzip check-in body`;
  log(`throughput: ${out.per_second}/s ${key} (${ok} in ${seconds.toFixed(1)} s, concurrency ${concurrency}, ${out.method})`);
  return out;
}

/** How many agents use the WebSocket channel: `--ws-fraction` of them, if the server answers an upgrade. */
async function probeWebSocket(a, total) {
  if (!opt.wsFraction || !a) return 0;
  if (typeof WebSocket === "undefined") throw new Error("--ws-fraction needs Node's WebSocket client: run with node --experimental-websocket (run.mjs does)");
  const status = await new Promise((resolve) => {
    const req = http.request({
      host: opt.url.hostname,
      port: opt.url.port,
      path: `/api/fleet/agents/${a.id}/ws`,
      headers: { ...agentHeaders(a.key), Connection: "Upgrade", Upgrade: "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": randomBytes(16).toString("base64") },
    });
    req.on("upgrade", (_res, socket) => {
      socket.destroy();
      resolve(101);
    });
    req.on("response", (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on("error", (e) => resolve(e.code ?? "error"));
    req.setTimeout(5000, () => req.destroy());
    req.end();
  });
  const used = status === 101 ? Math.round(opt.wsFraction * total) : 0;
  results.websocket = { requested_fraction: opt.wsFraction, available: status === 101, agents: used, ...(status === 101 ? {} : { probe_status: status }) };
  log(`--ws-fraction ${opt.wsFraction}: ${used} agents on WebSocket, ${total - used} long-polling`);
  return used;
}

function newAgent(i) {
  const hostname = `sim-${String(i).padStart(5, "0")}`;
  return { i, hostname, hostId: randomBytes(16).toString("hex"), localId: randomUUID(), id: "", key: "", ackToken: "", revision: 0, ackedRevision: 0, policyId: "", pollSentAt: 0, pollRevision: 0, bodyCache: null };
}

function localMetadata(a) {
  return {
    elastic: { agent: { id: a.id || a.localId, version: VERSION, snapshot: false, "build.original": `${VERSION} (build: 07adab5bc3d249133b4615832270434546c189d0 at 2026-08-21 19:06:21 +0000 UTC)`, upgradeable: true, log_level: "info", complete: false, unprivileged: false, fips: false } },
    host: { architecture: "x86_64", hostname: a.hostname, name: a.hostname, id: a.hostId, ip: ["127.0.0.1/8", `10.0.${a.i >> 8 & 255}.${a.i & 255}/16`, "::1/128"], mac: ["06:a1:5b:3c:9d:21"], memory: 16430608384 },
    os: { family: "debian", kernel: "6.8.0-1029-aws", platform: "ubuntu", version: "24.04.2 LTS (Noble Numbat)", name: "Ubuntu", full: "Ubuntu noble(24.04.2 LTS (Noble Numbat))" },
  };
}

function enrollBody(a) {
  return { type: "PERMANENT", id: "", replace_token: "", metadata: { local: localMetadata(a), user_provided: {}, tags: null } };
}

/** The gzipped check-in body (9.4+), in the agent's field order; recompressed only when it changes. */
function checkinBody(a, status) {
  const cacheKey = `${status}|${a.ackToken}|${a.policyId}|${a.revision}|${a.id}`;
  if (a.bodyCache?.key === cacheKey) return a.bodyCache.gz;
  const running = status === "online";
  const body = {
    status,
    ...(a.ackToken ? { ack_token: a.ackToken } : {}),
    local_metadata: localMetadata(a),
    message: running ? "Running" : "Waiting for initial configuration and composable variables",
    components: running ? components() : null,
    ...(a.policyId ? { agent_policy_id: a.policyId } : {}),
    ...(a.revision ? { policy_revision_idx: a.revision } : {}),
    upgrade: {},
  };
  const gz = zlib.gzipSync(JSON.stringify(body));
  a.bodyCache = { key: cacheKey, gz };
  return gz;
}

/**
 * A check-in that parks: the agent's steady-state check-in reporting `revision`, asking for the
 * shortest poll (`poll_timeout`), so its shard holds it for CHECKIN_MIN_POLL (500 ms on the
 * benchmark's server, rounded up to its 250 ms grid) and answers with nothing.
 */
function parkedCheckinBody(a, revision) {
  const key = `${revision}|${a.ackToken}`;
  if (a.parkedBody?.key === key) return a.parkedBody.gz;
  const body = { ...JSON.parse(zlib.gunzipSync(checkinBody(a, "online"))), agent_policy_id: a.policyId, policy_revision_idx: revision, poll_timeout: "1s" };
  a.parkedBody = { key, gz: zlib.gzipSync(JSON.stringify(body)) };
  return a.parkedBody.gz;
}

function components() {
  return [
    { id: "system/metrics-default", type: "system/metrics", status: "HEALTHY", message: "Healthy: communicating with pid '2817'", units: [{ id: "system/metrics-default", type: "output", status: "HEALTHY", message: "Healthy" }, { id: "system/metrics-default-system/metrics-system-1", type: "input", status: "HEALTHY", message: "Healthy" }] },
    { id: "log-default", type: "log", status: "HEALTHY", message: "Healthy: communicating with pid '2790'", units: [{ id: "log-default-logfile-system-1", type: "input", status: "HEALTHY", message: "Healthy" }, { id: "log-default", type: "output", status: "HEALTHY", message: "Healthy" }] },
  ];
}

/** A policy of realistic size (~2.5 KB): one output, monitoring, three inputs; `n` changes the content. */
function policyContent(n) {
  return {
    // With collectors in the fleet, the policy carries their configuration too (docs/opamp.md).
    ...(opt.opampFraction > 0
      ? {
          receivers: { otlp: { protocols: { grpc: { endpoint: "0.0.0.0:4317" } } } },
          exporters: { otlphttp: { endpoint: "https://otlp.example.com", bench_revision: n } },
          service: { pipelines: { metrics: { receivers: ["otlp"], exporters: ["otlphttp"] } } },
        }
      : {}),
    outputs: { default: { type: "elasticsearch", hosts: ["https://es.example.com:9200"], preset: "balanced" } },
    output_permissions: { default: { _elastic_agent_checks: { cluster: ["monitor"] }, _elastic_agent_monitoring: { indices: [{ names: ["logs-elastic_agent-default", "metrics-elastic_agent-default"], privileges: ["auto_configure", "create_doc"] }] } } },
    agent: { monitoring: { enabled: true, logs: true, metrics: true, use_output: "default", namespace: "default" }, download: { sourceURI: "https://artifacts.elastic.co/downloads/" } },
    fleet: { hosts: [opt.url.origin] },
    inputs: [
      { id: "logfile-system", name: "system-1", revision: n, type: "logfile", use_output: "default", data_stream: { namespace: "default" }, streams: [{ id: "logfile-system.auth", data_stream: { dataset: "system.auth", type: "logs" }, paths: ["/var/log/auth.log*", "/var/log/secure*"], exclude_files: [".gz$"] }, { id: "logfile-system.syslog", data_stream: { dataset: "system.syslog", type: "logs" }, paths: ["/var/log/messages*", "/var/log/syslog*"], exclude_files: [".gz$"] }] },
      { id: "system/metrics-system", name: "system-1", revision: n, type: "system/metrics", use_output: "default", data_stream: { namespace: "default" }, streams: ["cpu", "load", "memory", "network", "process", "process.summary", "socket_summary", "filesystem", "fsstat", "uptime"].map((m) => ({ id: `system/metrics-system.${m}`, data_stream: { dataset: `system.${m}`, type: "metrics" }, metricsets: [m], period: "10s" })) },
      { id: "filestream-custom", name: "custom-logs", revision: n, type: "filestream", use_output: "default", data_stream: { namespace: "default" }, streams: [{ id: "filestream-custom.app", data_stream: { dataset: "custom.app", type: "logs" }, paths: [`/var/log/app/*.log`], bench_revision: n }] },
    ],
  };
}

function agentHeaders(key) {
  // elastic-agent-client.md §1.2 (Host, Content-Length and Accept-Encoding are added by the client).
  return {
    "User-Agent": `Elastic Agent v${VERSION}`,
    Accept: "application/json",
    Authorization: `ApiKey ${key}`,
    "Content-Type": "application/json",
    "Elastic-Api-Version": "2023-06-01",
    "Kbn-Xsrf": "1",
    "X-Request-Id": ulid(),
    "Accept-Encoding": opt.acceptEncoding,
  };
}

/**
 * An admin call, retried on a transport error (as an operator's script would): one 10,000-agent run
 * lost its publish to two connection resets in a row. Safe to repeat: a PUT of unchanged content
 * makes no new revision. Each retry is counted under `errors.<phase>.admin`.
 */
async function admin(method, route, body) {
  const payload = Buffer.from(JSON.stringify(body));
  for (let attempt = 1; ; attempt++) {
    const res = await send("admin", method, route, { Authorization: `Bearer ${opt.adminToken}`, "Content-Type": "application/json" }, payload);
    if (res.status !== 0 || attempt === 5 || stopped) return res;
    await sleep(200 * attempt);
  }
}

/**
 * One HTTP/1.1 request over the shared keep-alive pool. Resolves (never rejects) with status, body
 * text (gunzipped) and counts non-2xx statuses and transport errors per phase and route.
 */
function send(route, method, pathname, headers, body, timeoutMs = 120_000, retries = 0) {
  return new Promise((resolve) => {
    const req = http.request({ host: opt.url.hostname, port: opt.url.port, method, path: pathname, agent: pool, headers: body ? { ...headers, "Content-Length": body.length } : headers });
    inflight.add(req);
    let answered = false;
    const fail = (code) => {
      inflight.delete(req);
      // A keep-alive socket the server closed while it sat idle (Node documents this race under
      // `reusedSocket`): retried, as Go's transport does, for as long as the failed attempt was on a
      // reused connection. The pool may hand out another stale one, so one retry is not enough;
      // what is left under the bare code is a reset of a fresh connection.
      if (!answered && req.reusedSocket && retries < MAX_REUSED_RETRIES && !stopped && (code === "ECONNRESET" || code === "EPIPE")) {
        count(route, `${code}_reused_retried`);
        resolve(send(route, method, pathname, headers, body, timeoutMs, retries + 1));
        return;
      }
      if (!stopped) count(route, code);
      resolve({ status: 0, error: code, body: "" });
    };
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })));
    req.on("error", (e) => fail(e.code ?? e.message));
    req.on("response", (res) => {
      answered = true;
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("error", (e) => fail(e.code ?? e.message));
      res.on("end", () => {
        inflight.delete(req);
        let buf = Buffer.concat(chunks);
        if (res.headers["content-encoding"] === "gzip") buf = zlib.gunzipSync(buf);
        if (res.statusCode < 200 || res.statusCode >= 300) count(route, res.statusCode);
        const retryAfter = Number(res.headers["retry-after"]);
        resolve({ status: res.statusCode, body: buf.toString("utf8"), bytes: buf, retryAfterMs: Number.isFinite(retryAfter) ? retryAfter * 1000 : null });
      });
    });
    req.end(body ?? undefined);
  });
}

/** How long to wait after a 429 (see --honor-retry-after) or a transport error. */
function retryDelay(res, fallbackMs) {
  if (res.status === 429) return opt.honorRetryAfter && res.retryAfterMs != null ? res.retryAfterMs : 100 + Math.random() * 500;
  return fallbackMs;
}

function count(route, code) {
  const byRoute = (errors[phase] ??= {});
  const byCode = (byRoute[route] ??= {});
  byCode[code] = (byCode[code] ?? 0) + 1;
}

/** Runs `fn` over `items` with at most `limit` at once, logging progress every 2 s. */
async function pooled(items, limit, fn, progress) {
  let next = 0;
  let done = 0;
  const ticker = setInterval(() => log(progress(done)), 2000);
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length && !stopped) {
        await fn(items[next++]);
        done++;
      }
    }),
  );
  clearInterval(ticker);
}

async function waitUntil(cond, timeoutMs, progress, everyMs = 100) {
  const end = performance.now() + timeoutMs;
  let lastLog = 0;
  while (performance.now() < end && !stopped) {
    if (await cond()) return true;
    if (performance.now() - lastLog > 2000) {
      lastLog = performance.now();
      log(progress());
    }
    await sleep(everyMs);
  }
  log(`timed out after ${timeoutMs} ms: ${progress()}`);
  return false;
}

// --- server process observation ---------------------------------------------------------------

function snapshot(label) {
  const procs = opt.serverPids.map((pid) => ({ pid, rss_kb: vmRssKb(pid), fds: fdCount(pid) }));
  results.memory[label] = { at_s: r2((performance.now() - startedAt) / 1000), rss_kb: procs.reduce((s, p) => s + (p.rss_kb ?? 0), 0), fds: procs.reduce((s, p) => s + (p.fds ?? 0), 0), processes: procs, sim_rss_kb: Math.round(process.memoryUsage().rss / 1024) };
  log(`memory ${label}: server RSS ${(results.memory[label].rss_kb / 1024).toFixed(0)} MiB, ${results.memory[label].fds} fds`);
}

function perAgentMemory(n) {
  const m = results.memory;
  const kb = (a, b) => (m[a] && m[b] ? r2((m[b].rss_kb - m[a].rss_kb) / n) : null);
  return opt.target === "bare"
    ? { parked_vs_start_kb: kb("start", "parked") }
    : { parked_vs_start_kb: kb("start", "parked"), enrolled_vs_start_kb: kb("start", "enrolled"), parked_vs_enrolled_kb: kb("enrolled", "parked") };
}

function vmRssKb(pid) {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]);
  } catch {
    return null;
  }
}

function fdCount(pid) {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

/** CPU seconds of the server processes and of this simulator. */
function cpuNow() {
  let server = 0;
  for (const pid of opt.serverPids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      server += (Number(f[11]) + Number(f[12])) / 100; // utime + stime in clock ticks (USER_HZ = 100)
    } catch {
      // gone
    }
  }
  const u = process.cpuUsage();
  return { t: performance.now(), server, sim: (u.user + u.system) / 1e6 };
}

function cpuSince(a) {
  const b = cpuNow();
  const wall = (b.t - a.t) / 1000;
  return { wall_s: r2(wall), server_cpu_s: r2(b.server - a.server), sim_cpu_s: r2(b.sim - a.sim), server_cores: r2((b.server - a.server) / wall), sim_cores: r2((b.sim - a.sim) / wall) };
}

/** Pids holding a listening TCP socket on `port` (workerd's, when no --server-pids were given). */
function pidsListeningOn(port) {
  const inodes = new Set();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    try {
      for (const line of readFileSync(file, "utf8").split("\n").slice(1)) {
        const f = line.trim().split(/\s+/);
        if (f.length > 9 && f[3] === "0A" && parseInt(f[1].split(":")[1], 16) === port) inodes.add(f[9]);
      }
    } catch {
      // no IPv6
    }
  }
  const pids = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      for (const fd of readdirSync(`/proc/${entry}/fd`)) {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${entry}/fd/${fd}`));
        if (m && inodes.has(m[1])) {
          pids.push(Number(entry));
          break;
        }
      }
    } catch {
      // not ours to read, or gone
    }
  }
  return pids;
}

function workerdVersion() {
  const r = spawnSync(path.join(root, "node_modules/.bin/workerd"), ["--version"], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
}

function machineInfo() {
  const mem = /MemTotal:\s+(\d+)/.exec(readFileSync("/proc/meminfo", "utf8"));
  const cpu = /model name\s*:\s*(.+)/.exec(readFileSync("/proc/cpuinfo", "utf8"));
  return { nproc: (spawnSync("nproc", { encoding: "utf8" }).stdout ?? "").trim(), mem_total_kb: mem ? Number(mem[1]) : null, cpu: cpu?.[1] ?? null, node: process.version, fd_limit: fdLimits() };
}

function fdLimits() {
  const m = /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(readFileSync("/proc/self/limits", "utf8"));
  return m ? { soft: m[1] === "unlimited" ? Infinity : Number(m[1]), hard: m[2] === "unlimited" ? Infinity : Number(m[2]) } : null;
}

/** Node cannot setrlimit itself: re-execute under a shell that raises the soft limit to the hard one. */
function raiseFdLimit() {
  const lim = fdLimits();
  if (!lim || lim.soft >= lim.hard || process.env.FLEET_SIM_REEXEC) return;
  const quoted = [process.execPath, ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)].map((s) => `'${s.replace(/'/g, "'\\''")}'`).join(" ");
  const hard = lim.hard === Infinity ? "unlimited" : lim.hard;
  const r = spawnSync("bash", ["-c", `ulimit -n ${hard} && exec ${quoted}`], { stdio: "inherit", env: { ...process.env, FLEET_SIM_REEXEC: "1" } });
  process.exit(r.status ?? 1);
}

// --- output -----------------------------------------------------------------------------------

let finishing = false;
async function finish(reason) {
  if (finishing) return;
  finishing = true;
  stopped = true;
  for (const req of inflight) req.destroy();
  results.finished_at = new Date().toISOString();
  results.end_reason = reason;
  results.duration_s = r2((performance.now() - startedAt) / 1000);
  const dir = path.join(root, "bench-results");
  mkdirSync(dir, { recursive: true });
  const file = opt.out ?? path.join(dir, `${opt.name}-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, JSON.stringify(results, null, 2) + "\n");
  log(`results: ${file}`);
  pool.destroy();
  process.exit(reason === "done" ? 0 : 1);
}

function summary(values) {
  if (values.length === 0) return { n: 0 };
  const s = Float64Array.from(values).sort();
  const q = (p) => round1(s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]);
  return { n: s.length, p50: q(0.5), p95: q(0.95), p99: q(0.99), max: round1(s[s.length - 1]), mean: round1(s.reduce((x, y) => x + y, 0) / s.length) };
}

function nanoTimestamp() {
  // Go's RFC3339Nano (time.Time), as the current ack layout sends it.
  const iso = new Date().toISOString();
  return `${iso.slice(0, -1)}${String(Math.floor(Math.random() * 1e6)).padStart(6, "0")}Z`;
}

function ulid() {
  const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  let t = Date.now();
  let out = "";
  for (let i = 0; i < 10; i++) {
    out = alphabet[t % 32] + out;
    t = Math.floor(t / 32);
  }
  const r = randomBytes(16);
  for (let i = 0; i < 16; i++) out += alphabet[r[i] & 31];
  return out;
}

function log(msg) {
  process.stderr.write(`[sim ${((performance.now() - startedAt) / 1000).toFixed(1)}s ${phase}] ${msg}\n`);
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
function r2(x) {
  return Math.round(x * 100) / 100;
}
function round1(x) {
  return Math.round(x * 10) / 10;
}

