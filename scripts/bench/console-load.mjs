#!/usr/bin/env node
// Console page-load benchmark: a fleet of N agents behind `npm start`, then the console loaded in
// headless Chromium (Debian's `chromium`, driven by playwright-core), timed from navigation to
//   (1) the overview rendered with the fleet's counts, and
//   (2) the agents table's first page (50 rows) rendered.
// Each is measured once cold (a new browser context: nothing cached) and then --loads times warm.
// Then, with the overview open, --live agents are enrolled one at a time and each is timed from the
// enroll's answer to the overview showing it (pushed by the policy hub through the console's feed).
// Also prints the console's size (public/, raw and gzip: what a first visit downloads).
//
//   node scripts/bench/console-load.mjs [--agents 10000] [--policies 4] [--loads 5] [--live 5] [--concurrency 32] [--state DIR]
//   node scripts/bench/console-load.mjs --url http://127.0.0.1:8220 --admin-token T   (a running server, fleet as it is)
//
// Agents are enrolled straight through the API (enroll, one check-in, the POLICY_CHANGE's ack: each
// ends "online"), not kept checking in: the page reads aggregates and a page of the roster, which a
// parked fleet does not change. Results: bench-results/console-load-<timestamp>.json.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import zlib from "node:zlib";
import { chromium } from "playwright-core";
import { parseArgs } from "./args.mjs";

/* global document, location -- functions passed to page.waitForFunction / addInitScript run in the page */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const args = parseArgs(process.argv.slice(2));
const agentsWanted = Math.min(Number(args.agents ?? 10_000), 100_000);
const policies = Math.max(1, Number(args.policies ?? 4));
const loads = Math.max(1, Number(args.loads ?? 5));
const concurrency = Math.max(1, Number(args.concurrency ?? 32));
const liveAgents = Math.max(0, Number(args.live ?? 5));
const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const AGENT_HEADERS = { "User-Agent": "Elastic Agent v9.6.0", "Content-Type": "application/json", "Elastic-Api-Version": "2023-06-01" };

const size = consoleSize(path.join(root, "public"));
console.error(`[console-load] console files: ${size.files} files, ${size.raw} bytes raw, ${size.gzip} bytes gzip`);

let server = null;
let warmContext = null;
let url = args.url;
let token = args["admin-token"] ?? process.env.FLEET_ADMIN_TOKEN;
if (!url) {
  const port = await freePort();
  // --state DIR keeps the fleet for the next run (enrolling 10,000 agents takes minutes); else a throwaway one.
  const state = args.state ? path.resolve(String(args.state)) : mkdtempSync(path.join(tmpdir(), "console-bench-"));
  token = "console-bench-token";
  server = spawn(process.execPath, ["scripts/dev.mjs", "--port", String(port), "--persist-to", state, "--var", `FLEET_ADMIN_TOKEN:${token}`], {
    cwd: root,
    stdio: ["ignore", "ignore", "inherit"],
    detached: true,
  });
  process.on("exit", () => {
    try {
      process.kill(-server.pid, "SIGTERM");
    } catch {
      // gone
    }
    if (!args.state) rmSync(state, { recursive: true, force: true });
  });
  url = `http://127.0.0.1:${port}`;
  await untilUp(url);
  const existing = (await admin("GET", "/api/fleet/console/overview")).results.active;
  if (existing < agentsWanted) {
    const started = Date.now();
    await enrollFleet(url, token, agentsWanted - existing, existing);
    console.error(`[console-load] enrolled ${agentsWanted - existing} agents in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
}

const overview = await admin("GET", "/api/fleet/console/overview");
const expectedActive = overview.results.active;
console.error(`[console-load] fleet: ${expectedActive} active agents, ${overview.by_policy.length} policies`);

const browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ["--no-sandbox"] });
const runs = [];
let live;
try {
  for (let i = 0; i <= loads; i++) runs.push(await measure(i === 0 ? "cold" : "warm"));
  live = await measureLive();
} finally {
  await browser.close();
}
const warm = runs.filter((r) => r.kind === "warm");
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const result = {
  date: new Date().toISOString(),
  agents: expectedActive,
  policies: overview.by_policy.length,
  console_bytes: size,
  cold: runs[0],
  warm_median: { overview_ms: median(warm.map((r) => r.overview_ms)), agents_table_ms: median(warm.map((r) => r.agents_table_ms)) },
  runs,
  live_update_ms: live,
};
mkdirSync(path.join(root, "bench-results"), { recursive: true });
const out = path.join(root, "bench-results", `console-load-${Date.now()}.json`);
writeFileSync(out, JSON.stringify(result, null, 2));
console.log(
  `console load, ${expectedActive} agents in ${result.policies} policies: overview with counts ${result.cold.overview_ms} ms cold / ${result.warm_median.overview_ms} ms warm (median of ${warm.length}); ` +
    `agents table first page ${result.cold.agents_table_ms} ms cold / ${result.warm_median.agents_table_ms} ms warm. ` +
    (live.length ? `Live update after an enroll: median ${median(live)} ms, max ${Math.max(...live)} ms (${live.length}). ` : "") +
    `Console ${size.raw} B raw, ${size.gzip} B gzip. (${path.relative(root, out)})`,
);
process.exit(0);

/** One load: signed in through session storage (as after the sign-in form), timed from navigation. */
async function measure(kind) {
  const context = kind === "cold" ? await signedInContext() : (warmContext ??= await signedInContext());
  const page = await context.newPage();
  let started = Date.now();
  await page.goto(`${url}/#/overview`);
  await page.waitForFunction((n) => document.querySelector("[data-tile=active]")?.textContent === String(n), expectedActive, { timeout: 60_000 });
  const overviewMs = Date.now() - started;
  await page.goto("about:blank");
  started = Date.now();
  await page.goto(`${url}/#/agents`);
  await page.waitForFunction(() => document.querySelectorAll("#agents-table tr[data-agent-row]").length === 50, undefined, { timeout: 60_000 });
  const agentsMs = Date.now() - started;
  await page.close();
  if (kind === "cold") await context.close();
  console.error(`[console-load] ${kind}: overview ${overviewMs} ms, agents table ${agentsMs} ms`);
  return { kind, overview_ms: overviewMs, agents_table_ms: agentsMs };
}

/**
 * With the overview open, enrolls one agent at a time into the first policy and times how long the
 * overview takes to show it after the enroll answered (the enroll writes the hub's roster row before
 * it answers; the hub pushes to the console's feed, which sends the overview).
 */
async function measureLive() {
  if (liveAgents === 0) return [];
  const policyId = overview.by_policy[0]?.policy_id;
  if (!policyId) return [];
  const key = (await admin("POST", "/api/fleet/enrollment_api_keys", { policy_id: policyId, name: `console-live-${Date.now()}` })).item.api_key;
  const context = warmContext ?? (await signedInContext());
  const page = await context.newPage();
  await page.goto(`${url}/#/overview`);
  let active = (await admin("GET", "/api/fleet/console/overview")).results.active;
  await page.waitForFunction((n) => document.querySelector("[data-tile=active]")?.textContent === String(n), active, { timeout: 60_000 });
  const times = [];
  for (let i = 0; i < liveAgents; i++) {
    await post(url, "/api/fleet/agents/enroll", `ApiKey ${key}`, {
      type: "PERMANENT",
      metadata: { local: { elastic: { agent: { version: "9.6.0" } }, host: { hostname: `live-${Date.now()}-${i}` } }, user_provided: {}, tags: null },
    });
    const enrolled = Date.now();
    active++;
    await page.waitForFunction((n) => document.querySelector("[data-tile=active]")?.textContent === String(n), active, { timeout: 60_000, polling: 10 });
    times.push(Date.now() - enrolled);
    console.error(`[console-load] live update ${i + 1}: ${times.at(-1)} ms`);
  }
  await page.close();
  return times;
}

async function signedInContext() {
  const context = await browser.newContext();
  await context.addInitScript((secret) => {
    if (location.protocol.startsWith("http")) sessionStorage.setItem("fleet-console-credential", secret);
  }, token);
  return context;
}

/** Enrolls `count` agents (hostnames numbered from `first`) over the policies, `concurrency` at a time. */
async function enrollFleet(base, adminToken, count, first) {
  const keys = [];
  for (let p = 0; p < policies; p++) {
    const id = `bench-${p}`;
    await admin("PUT", `/api/fleet/agent_policies/${id}`, { name: `Bench ${p}`, namespace: "default", policy: { outputs: { default: { type: "elasticsearch", hosts: ["https://es.example:9200"] } } } }, base, adminToken);
    keys.push({ id, key: (await admin("POST", "/api/fleet/enrollment_api_keys", { policy_id: id }, base, adminToken)).item.api_key });
  }
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < count) {
      const i = first + next++;
      const { id: policyId, key } = keys[i % keys.length];
      const hostname = `host-${String(i).padStart(6, "0")}`;
      const enrolled = await post(base, "/api/fleet/agents/enroll", `ApiKey ${key}`, {
        type: "PERMANENT",
        metadata: { local: { elastic: { agent: { version: "9.6.0" } }, host: { hostname } }, user_provided: {}, tags: null },
      });
      const agent = enrolled.item;
      const auth = `ApiKey ${agent.access_api_key}`;
      const checkin = await post(base, `/api/fleet/agents/${agent.id}/checkin`, auth, { status: "online", message: "Running", agent_policy_id: policyId, policy_revision_idx: 0 });
      const events = (checkin.actions ?? []).map((a) => ({ action_id: a.id, agent_id: agent.id, subtype: "ACKNOWLEDGED", type: "ACTION_RESULT", timestamp: new Date().toISOString(), message: "ok" }));
      if (events.length) await post(base, `/api/fleet/agents/${agent.id}/acks`, auth, { events });
      if (++done % 1000 === 0) console.error(`[console-load] ${done} agents enrolled`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

async function post(base, route, authorization, body) {
  for (let attempt = 0; ; attempt++) {
    let res;
    try {
      res = await fetch(`${base}${route}?`, { method: "POST", headers: { ...AGENT_HEADERS, Authorization: authorization }, body: JSON.stringify(body) });
    } catch (error) {
      // A connection dropped under load: try again, a few times.
      if (attempt < 5) continue;
      throw error;
    }
    if (res.ok) return res.json();
    // 429/503 under the admission limits: wait and retry, as an agent would.
    if ((res.status === 429 || res.status === 503) && attempt < 20) {
      await res.arrayBuffer();
      await new Promise((r) => setTimeout(r, 200 + Math.random() * 300));
      continue;
    }
    throw new Error(`${route}: ${res.status} ${await res.text()}`);
  }
}

async function admin(method, route, body, base = url, adminToken = token) {
  const res = await fetch(`${base}${route}`, {
    method,
    headers: { Authorization: `Bearer ${adminToken}`, "Content-Type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${await res.text()}`);
  return res.json();
}

async function untilUp(base) {
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${base}/api/status`)).ok) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${base} did not come up`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Every file under public/: how many, their bytes, and their bytes gzipped one by one (as served compressed). */
function consoleSize(dir) {
  let files = 0;
  let raw = 0;
  let gzip = 0;
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      const file = path.join(d, name);
      if (statSync(file).isDirectory()) walk(file);
      else {
        const bytes = readFileSync(file);
        files++;
        raw += bytes.length;
        gzip += zlib.gzipSync(bytes, { level: 9 }).length;
      }
    }
  };
  walk(dir);
  return { files, raw, gzip };
}
