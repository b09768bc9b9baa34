#!/usr/bin/env node
// `npm start`: runs the Worker locally in workerd through Miniflare, the runtime `wrangler dev` uses,
// but without wrangler's dev proxy in front of it. That proxy (a second workerd) forwards every
// request to the Worker over pooled keep-alive connections, and when one of those fails it answers a
// POST `503 "Your worker restarted mid-request"` in plain text, though nothing restarted; under a
// fleet's bursts that was ~1 in 2 check-ins and acks (docs/operations.md, "Why not wrangler dev").
//
//   npm start -- [--port 8220] [--ip 127.0.0.1] [--persist-to .wrangler/state] [--var NAME:VALUE]…
//
// The bundle is the one `wrangler deploy` uploads (`wrangler deploy --dry-run`), rebuilt and reloaded
// when src/, durable/, public/ (the console's files) or wrangler.toml change. Settings: wrangler.toml [vars], then .dev.vars, then
// --var. State persists under --persist-to in wrangler dev's layout (v3/do, v3/r2), so either runner
// reads the other's fleet. When no admin token is configured anywhere, a fixed development token is
// supplied and printed, so the README's curl walkthrough works on a fresh clone.
//
// Stopping: Ctrl-C, SIGTERM or SIGHUP, or npm or the parent shell going away, disposes of Miniflare
// (workerd exits); anything still running after a grace period is killed.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, watch } from "node:fs";
import { tmpdir } from "node:os";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Log, LogLevel, Miniflare } from "miniflare";
import { parseWranglerToml } from "./lib/wrangler-toml.mjs";

const DEV_TOKEN = "dev-admin-token";
/** How long Miniflare gets to stop workerd before this process exits anyway (killing workerd). */
const GRACE_MS = 3_000;
/** How often the parent-death watchdog looks. */
const WATCH_MS = 250;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
// Its own build directory: several servers (the e2e tests) may start at once.
const outdir = mkdtempSync(path.join(tmpdir(), "edge-fleet-dev-"));
process.on("exit", () => rmSync(outdir, { recursive: true, force: true }));
const wrangler = createRequire(import.meta.url).resolve("wrangler/bin/wrangler.js");

const cli = parseCli(process.argv.slice(2));
const config = () => parseWranglerToml(readFileSync(path.join(root, "wrangler.toml"), "utf8"));
const host = cli.ip ?? config().dev?.ip ?? "127.0.0.1";
const port = Number(cli.port ?? config().dev?.port ?? 8220);
const persistTo = path.resolve(cli.persistTo ?? path.join(root, ".wrangler/state"));
let announcedToken = false;

if (!build()) process.exit(1);
const mf = new Miniflare({
  ...workerOptions(),
  host,
  port,
  // A fixed `request.cf`: the Worker never reads it, and Miniflare would otherwise download one.
  cf: { colo: "LOCAL", country: "XX" },
  log: new Log(LogLevel.WARN),
});
const url = await mf.ready;
console.error(`[dev] ready on ${url.origin} (state in ${persistTo})`);

let stopping = false;
async function stop(reason) {
  if (stopping) return;
  stopping = true;
  console.error(`[dev] ${reason}: stopping`);
  setTimeout(() => {
    console.error(`[dev] workerd still running after ${GRACE_MS} ms: killed`);
    killWorkerd();
    process.exit(1);
  }, GRACE_MS).unref();
  await mf.dispose().catch(() => {});
  process.exit(0);
}
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => void stop(signal));

// Parent-death watchdog. `npm start` runs this under `sh -c`: on SIGTERM npm ends that shell (not
// this process), and on SIGHUP npm exits and leaves the shell. So watch the parent, and under npm
// also npm itself (the parent's parent): when either goes, stop.
const parent = process.ppid;
const npm = process.env.npm_lifecycle_event ? parentOf(parent) : undefined;
setInterval(() => {
  if (process.ppid !== parent) void stop("parent process exited");
  else if (npm !== undefined && !alive(npm)) void stop("npm exited");
}, WATCH_MS).unref();

// Reload on change: rebuild, then swap the Worker (state on disk is kept).
let reload;
for (const watched of ["src", "durable", "public", "wrangler.toml"]) {
  watch(path.join(root, watched), { recursive: watched !== "wrangler.toml" }, () => {
    clearTimeout(reload);
    reload = setTimeout(() => {
      if (stopping || !build()) return;
      mf.setOptions({ ...workerOptions(), host, port, cf: { colo: "LOCAL", country: "XX" }, log: new Log(LogLevel.WARN) })
        .then(() => console.error("[dev] reloaded"))
        .catch((err) => console.error(`[dev] reload failed: ${err.message}`));
    }, 200);
  });
}

/** `--port N --ip H --persist-to DIR --var NAME:VALUE…` (wrangler dev's spelling); anything else is refused. */
function parseCli(argv) {
  const out = { vars: {} };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => inline ?? argv[++i] ?? usage(`${flag} needs a value`);
    if (flag === "--port") out.port = value();
    else if (flag === "--ip") out.ip = value();
    else if (flag === "--persist-to") out.persistTo = value();
    else if (flag === "--var") {
      const v = value();
      const sep = v.indexOf(":");
      if (sep < 1) usage(`--var ${v}: expected NAME:VALUE`);
      out.vars[v.slice(0, sep)] = v.slice(sep + 1);
    } else usage(`unknown option ${argv[i]}`);
  }
  return out;
}

function usage(problem) {
  console.error(`[dev] ${problem}\nusage: npm start -- [--port N] [--ip ADDRESS] [--persist-to DIR] [--var NAME:VALUE]…`);
  process.exit(2);
}

/** .dev.vars (wrangler's file for local secrets): NAME=VALUE lines, optional quotes, # comments. */
function devVars() {
  const file = path.join(root, ".dev.vars");
  if (!existsSync(file)) return {};
  const vars = {};
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (m) vars[m[1]] = m[2].replace(/^"(.*)"$|^'(.*)'$/s, (_, a, b) => a ?? b);
  }
  return vars;
}

function workerOptions() {
  const toml = config();
  const bindings = { ...toml.vars, ...devVars(), ...cli.vars };
  if (bindings.FLEET_ADMIN_TOKEN === undefined) {
    bindings.FLEET_ADMIN_TOKEN = DEV_TOKEN;
    if (!announcedToken) console.error(`[dev] admin API token for this local server: ${DEV_TOKEN} (Authorization: Bearer ${DEV_TOKEN})`);
    announcedToken = true;
  }
  return {
    scriptPath: path.join(outdir, "index.js"),
    // Module names are relative to this root; the bundle lives outside the project (see outdir).
    modulesRoot: outdir,
    modules: true,
    modulesRules: [{ type: "ESModule", include: ["**/*.js"] }],
    compatibilityDate: toml.compatibility_date,
    compatibilityFlags: toml.compatibility_flags,
    durableObjects: Object.fromEntries(toml.durableObjects.map((b) => [b.name, { className: b.class_name, useSQLite: true }])),
    r2Buckets: Object.fromEntries(toml.r2.map((r) => [r.binding, r.bucket_name])),
    // [assets] as `wrangler dev` passes it: the console's files behind the ASSETS binding, the Worker first.
    ...(toml.assets
      ? {
          assets: {
            directory: path.resolve(root, toml.assets.directory),
            binding: toml.assets.binding,
            routerConfig: { has_user_worker: true, invoke_user_worker_ahead_of_assets: toml.assets.run_worker_first === true },
            assetConfig: { html_handling: toml.assets.html_handling ?? "auto-trailing-slash" },
          },
        }
      : {}),
    bindings,
    durableObjectsPersist: path.join(persistTo, "v3/do"),
    r2Persist: path.join(persistTo, "v3/r2"),
  };
}

/** Bundles the Worker exactly as `wrangler deploy` would; prints wrangler's output only on failure. */
function build() {
  const started = Date.now();
  const built = spawnSync(process.execPath, [wrangler, "deploy", "--dry-run", "--outdir", outdir], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  });
  if (built.status !== 0) {
    console.error(`[dev] build failed:\n${built.stdout}${built.stderr}`);
    return false;
  }
  console.error(`[dev] built in ${Date.now() - started} ms`);
  return true;
}

/** The parent pid of `pid` from /proc (Linux); undefined elsewhere, where only the parent is watched. */
function parentOf(pid) {
  try {
    // Field 4 of /proc/<pid>/stat, after the parenthesised command name (which may hold spaces).
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    return ppid > 1 ? ppid : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === "EPERM";
  }
}

/** SIGKILL to this process's workerd children (Miniflare starts workerd as a direct child). */
function killWorkerd() {
  try {
    for (const pid of execFileSync("pgrep", ["-P", String(process.pid), "workerd"], { encoding: "utf8" }).split("\n").filter(Boolean)) {
      process.kill(Number(pid), "SIGKILL");
    }
  } catch {
    // none left, or no pgrep
  }
}
