#!/usr/bin/env node
// Serves the project's Worker (or the bare baseline Worker) for load tests through Miniflare's API,
// not `wrangler dev`: wrangler's proxy spends ~8 fds per connection, one workerd process here uses ~1.
//
//   node scripts/bench/serve.mjs [--worker project|bare] [--port 18330] [--admin-token T]
//        [--var CHECKIN_LONG_POLL=30m] [--var CHECKIN_JITTER=1s] [--max-seconds 3600] [--no-build]
//        [--storage disk|memory] [--watch-stdin]   (memory: SQLite files on tmpfs, /dev/shm)
//        [--inspector-port N] [--direct-port N] [--count] [--entry scripts/bench/sim-entry.mjs]
//
// --count (project only) serves the bundle through scripts/bench/counting-entry.mjs, which counts
// Worker and Durable Object requests, WebSocket messages, object starts and SQLite rows, and answers
// them on GET /__bench/counts (what scripts/bench/cost-model.mjs prices).
// --entry FILE (project only) bundles FILE instead of wrangler.toml's `main`, as wrangler would
// (a benchmark-only entry that re-exports the project's Worker and objects: sim-entry.mjs).
//
// On start it prints one JSON line on stdout: {"ready":true,"url","directUrl","pid","workerdPids":[…]}.
// Worker console lines go to stderr with a timestamp (ms since epoch) so a driver can line them up
// with client-side timings (e.g. the hub's `policy.revision … woken` log). Stops on SIGINT/SIGTERM,
// after --max-seconds, or (with --watch-stdin) when stdin closes because its driver died.
import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "./args.mjs";
import { parseWranglerToml } from "../lib/wrangler-toml.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
// Miniflare must be resolved from the project's node_modules (a dependency of wrangler).
const { Miniflare, Log, LogLevel } = await import(path.join(root, "node_modules/miniflare/dist/src/index.js"));

const args = parseArgs(process.argv.slice(2), ["var"]);
const worker = args.worker ?? "project";
const port = Number(args.port ?? 18330);
const adminToken = args["admin-token"] ?? process.env.FLEET_ADMIN_TOKEN ?? "bench-admin-token";
const maxSeconds = Number(args["max-seconds"] ?? 3600);

const toml = readFileSync(path.join(root, "wrangler.toml"), "utf8");
const config = parseWranglerToml(toml);

let options;
/** Where the project run keeps its Durable Object and R2 state (removed on stop when on tmpfs). */
let persist = null;
if (worker === "bare") {
  // The floor's objects keep SQLite where the project's do (--storage), so the two pay the same commits.
  persist = bareOrProjectPersist("bare");
  options = {
    scriptPath: path.join(here, "bare-worker.mjs"),
    modules: true,
    compatibilityDate: config.compatibility_date,
    durableObjects: { PARKER: { className: "Parker", useSQLite: true }, FLOOR: { className: "FloorStore", useSQLite: true } },
    durableObjectsPersist: path.join(persist, "do"),
  };
} else {
  const outdir = path.join(root, args.entry ? ".wrangler/bench-bundle-entry" : ".wrangler/bench-bundle");
  if (!args["no-build"]) {
    // The bundle wrangler would deploy, byte for byte (same esbuild settings and conditions).
    const built = spawnSync("npx", ["wrangler", "deploy", "--dry-run", "--outdir", outdir, ...(args.entry ? [path.resolve(root, args.entry)] : [])], { cwd: root, encoding: "utf8" });
    if (built.status !== 0) {
      process.stderr.write(built.stdout + built.stderr);
      process.exit(1);
    }
  }
  const durableObjects = {};
  for (const b of config.durableObjects) durableObjects[b.name] = { className: b.class_name, useSQLite: true };
  const bindings = { ...config.vars, FLEET_ADMIN_TOKEN: adminToken };
  for (const kv of [].concat(args.var ?? [])) {
    const i = kv.indexOf("=");
    bindings[kv.slice(0, i)] = kv.slice(i + 1);
  }
  persist = bareOrProjectPersist("project");
  // wrangler names the bundle after its entry module.
  const bundleName = args.entry ? path.basename(args.entry).replace(/\.[cm]?[jt]s$/, ".js") : "index.js";
  let scriptPath = path.join(outdir, bundleName);
  if (args.count) {
    const classes = [...new Set(config.durableObjects.map((b) => b.class_name))];
    const entry = readFileSync(path.join(here, "counting-entry.mjs"), "utf8")
      .replace(`from "./index.js"`, `from "./${bundleName}"`)
      .replace("// EXPORT_CLASSES", `export const { ${classes.join(", ")} } = wrapped;`);
    scriptPath = path.join(outdir, "counted-entry.js");
    writeFileSync(scriptPath, entry);
  }
  options = {
    scriptPath,
    modules: true,
    modulesRules: [{ type: "ESModule", include: ["**/*.js"] }],
    compatibilityDate: config.compatibility_date,
    compatibilityFlags: config.compatibility_flags,
    durableObjects,
    r2Buckets: Object.fromEntries(config.r2.map((r) => [r.binding, r.bucket_name])),
    bindings,
    // --storage memory puts the SQLite files on tmpfs: Miniflare's default "in-memory" Durable Object
    // storage is a temporary directory on disk, whose per-commit fsync blocks workerd's one thread
    // (~0.1 ms per check-in), and its ephemeral mode does not support SQLite.
    durableObjectsPersist: path.join(persist, "do"),
    r2Persist: path.join(persist, "r2"),
  };
}

/** Fresh state each run (results must not depend on a previous run's): tmpfs with --storage memory. */
function bareOrProjectPersist(kind) {
  const dir = args.storage === "memory" ? path.join("/dev/shm", `edge-fleet-bench-${kind}-${process.pid}`) : path.join(root, `.wrangler/bench-state${kind === "bare" ? "-bare" : ""}`);
  rmSync(dir, { recursive: true, force: true });
  return dir;
}

/**
 * Errors that come from running every object of the fleet in one local process, not from the
 * project: said once per run, beside the first line that shows them (BENCHMARKS.md, "Open items").
 */
const LOCAL_LIMITS = [
  {
    marker: "SQLITE_NOMEM",
    meaning:
      "SQLITE_NOMEM: this workerd caps SQLite's heap at 512 MiB for the whole process (every object's databases together; production meters each object's own), so a local fleet of many objects runs out (BENCHMARKS.md, Open items)",
    said: false,
  },
  {
    marker: "SQLITE_CANTOPEN",
    meaning: "SQLITE_CANTOPEN: the process is out of file descriptors (sockets and every object's database files share them; raise ulimit -n)",
    said: false,
  },
];

const mf = new Miniflare({
  ...options,
  host: "127.0.0.1",
  port,
  // A fixed `request.cf`: Miniflare would otherwise download one, and this machine talks to loopback only.
  cf: { colo: "LOCAL", country: "XX" },
  // --inspector-port N exposes workerd's V8 inspector (Chrome DevTools protocol) for CPU profiling.
  ...(args["inspector-port"] ? { inspectorPort: Number(args["inspector-port"]) } : {}),
  // --direct-port N also serves the Worker on its own socket, past Miniflare's entry worker: a local
  // proxy hop (header rewriting, answer re-encoding) that costs ~0.1 ms per request on workerd's one
  // thread and that production does not have.
  ...(args["direct-port"] ? { unsafeDirectSockets: [{ host: "127.0.0.1", port: Number(args["direct-port"]) }] } : {}),
  log: new Log(LogLevel.WARN),
  handleRuntimeStdio(stdout, stderr) {
    // Timestamp each Worker log line; count the frequent ones instead of echoing them all.
    const counts = new Map();
    for (const stream of [stdout, stderr]) {
      createInterface({ input: stream }).on("line", (line) => {
        const m = /"event":"([^"]+)"/.exec(line);
        if (m && m[1] === "agent.enrolled") {
          counts.set(m[1], (counts.get(m[1]) ?? 0) + 1);
          return;
        }
        process.stderr.write(`[worker ${Date.now()}] ${line}\n`);
        const limit = LOCAL_LIMITS.find((l) => !l.said && line.includes(l.marker));
        if (limit) {
          limit.said = true;
          process.stderr.write(`[serve] ${limit.meaning}\n`);
        }
      });
    }
  },
});
const url = await mf.ready;
const workerdPids = childPids(process.pid, "workerd");
const directUrl = args["direct-port"] ? `http://127.0.0.1:${args["direct-port"]}/` : undefined;
process.stdout.write(JSON.stringify({ ready: true, worker, url: url.href, directUrl, pid: process.pid, workerdPids }) + "\n");

let stopping = false;
async function stop(reason) {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`[serve] stopping (${reason})\n`);
  await mf.dispose().catch(() => {});
  if (persist?.startsWith("/dev/shm/")) rmSync(persist, { recursive: true, force: true });
  process.exit(0);
}
process.on("SIGINT", () => stop("SIGINT"));
process.on("SIGTERM", () => stop("SIGTERM"));
if (args["watch-stdin"]) {
  // Started by a driver through a pipe: its exit closes the pipe, and the server goes with it.
  process.stdin.on("end", () => stop("stdin closed"));
  process.stdin.resume();
}
setTimeout(() => stop(`--max-seconds ${maxSeconds}`), maxSeconds * 1000).unref();

/** Direct children of `pid` whose command name is `name` (Miniflare spawns workerd itself). */
function childPids(pid, name) {
  const found = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      const comm = stat.slice(stat.indexOf("(") + 1, close);
      const ppid = Number(stat.slice(close + 2).split(" ")[1]);
      if (ppid === pid && comm.startsWith(name)) found.push(Number(entry));
    } catch {
      // A process that exited while we looked.
    }
  }
  return found;
}
