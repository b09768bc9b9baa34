#!/usr/bin/env node
// `npm start`: runs the Worker locally with `wrangler dev` (state persisted under .wrangler/state,
// port 8220 from wrangler.toml). Arguments are passed through to wrangler. When no admin token is
// configured anywhere, a fixed development token is supplied and printed, so the README's curl
// walkthrough works on a fresh clone; pass `--var FLEET_ADMIN_TOKEN:<token>` to choose your own.
//
// Stopping: wrangler runs as node → node → workerd (plus esbuild), and does not pass SIGTERM on to
// workerd. So wrangler runs in a process group of its own, and every way this script ends (Ctrl-C,
// SIGTERM, SIGHUP, its parent or npm going away) ends that whole group: first SIGTERM, then SIGKILL
// after a grace period. See docs/operations.md "Stopping".
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";

const DEV_TOKEN = "dev-admin-token";
/** How long wrangler and workerd get to exit after SIGTERM before the group is killed. */
const GRACE_MS = 3_000;
/** How often the parent-death watchdog looks. */
const WATCH_MS = 250;

const args = process.argv.slice(2);

const configured =
  args.some((arg) => arg.includes("FLEET_ADMIN_TOKEN:") || arg.includes("FLEET_ADMIN_TOKEN=")) ||
  [".dev.vars", ".env"].some((file) => existsSync(file) && /^\s*FLEET_ADMIN_TOKEN\s*=/m.test(readFileSync(file, "utf8")));
if (!configured) {
  args.push("--var", `FLEET_ADMIN_TOKEN:${DEV_TOKEN}`);
  console.error(`[dev] admin API token for this local server: ${DEV_TOKEN} (Authorization: Bearer ${DEV_TOKEN})`);
}

const wrangler = createRequire(import.meta.url).resolve("wrangler/bin/wrangler.js");
// The Worker never reads `request.cf`, so wrangler need not fetch its real values from Cloudflare
// (offline, that fetch fails with a stack trace on every start); set the variable to `true` to fetch.
// `detached`: its own process group, so the whole tree can be signalled at once. A process group
// that is not the terminal's foreground group must not read the terminal (it would be stopped by
// SIGTTIN), so stdin is not passed on: wrangler's hotkeys are off, Ctrl-C reaches it through here.
const child = spawn(process.execPath, [wrangler, "dev", ...args], {
  stdio: ["ignore", "inherit", "inherit"],
  detached: true,
  env: { WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", ...process.env },
});

/** Signals wrangler's whole process group; false when the group is gone. */
function signalGroup(signal) {
  try {
    process.kill(-child.pid, signal);
    return true;
  } catch {
    return false;
  }
}

let stopping = false;
function stop(reason) {
  if (stopping) return;
  stopping = true;
  console.error(`[dev] ${reason}: stopping wrangler and workerd`);
  if (!signalGroup("SIGTERM")) process.exit(1);
  setTimeout(() => {
    if (signalGroup("SIGKILL")) console.error(`[dev] still running after ${GRACE_MS} ms: killed`);
    process.exit(1);
  }, GRACE_MS).unref();
}

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => stop(signal));

// When wrangler exits on its own (a config error, or `x`), leftovers of its group go with it.
child.on("exit", (code, signal) => {
  signalGroup("SIGKILL");
  process.exit(stopping ? 0 : (code ?? (signal ? 1 : 0)));
});

// Parent-death watchdog. `npm start` runs this under `sh -c`: on SIGTERM npm ends that shell (not
// this process), and on SIGHUP npm exits and leaves the shell. So watch the parent, and under npm
// also npm itself (the parent's parent): when either goes, stop.
const parent = process.ppid;
const npm = process.env.npm_lifecycle_event ? parentOf(parent) : undefined;
setInterval(() => {
  if (process.ppid !== parent) stop("parent process exited");
  else if (npm !== undefined && !alive(npm)) stop("npm exited");
}, WATCH_MS).unref();

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
