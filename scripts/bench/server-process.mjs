// Starts a benchmark's child processes, the server (scripts/bench/serve.mjs, waiting for its ready
// line) and the fleet simulator: shared by the benchmark driver (run.mjs) and the profiler (profile.mjs).
import { spawn } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");

/** Shell-quotes one argument. */
export const q = (s) => `'${String(s).replaceAll("'", "'\\''")}'`;

/**
 * Runs serve.mjs with `args` under the hard file-descriptor limit (one socket per agent), with
 * `--watch-stdin` so it stops when this process ends its stdin or dies. Resolves with the child and
 * its ready message ({url, directUrl, pid, workerdPids}); each Worker log line goes to `onLog`.
 */
export async function startServer(args, { label = "server", onLog = (line) => process.stderr.write(`[${label}] ${line}\n`), startSeconds = 120 } = {}) {
  const server = spawn("bash", ["-c", `ulimit -n $(ulimit -Hn); exec node ${q(path.join(here, "serve.mjs"))} --watch-stdin ${args.map(q).join(" ")}`], {
    cwd: root,
    stdio: ["pipe", "pipe", "pipe"],
  });
  createInterface({ input: server.stderr }).on("line", onLog);
  const ready = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label} did not start in ${startSeconds} s`)), startSeconds * 1000);
    createInterface({ input: server.stdout }).on("line", (line) => {
      try {
        const msg = JSON.parse(line);
        if (msg.ready) {
          clearTimeout(timer);
          resolve(msg);
        }
      } catch {
        // not the ready line
      }
    });
    server.on("exit", (code) => reject(new Error(`${label} exited (${code})`)));
  });
  return { server, ready };
}

/**
 * Runs scripts/fleet-sim.mjs with `args` under the hard file-descriptor limit, with Node's WebSocket
 * client; its stderr (progress lines) is piped for the caller to read, its stdout inherited.
 */
export function startSimulator(args, { stdin = "pipe" } = {}) {
  const command = `ulimit -n $(ulimit -Hn); exec node --experimental-websocket ${q(path.join(root, "scripts/fleet-sim.mjs"))} ${args.map(q).join(" ")}`;
  return spawn("bash", ["-c", command], { cwd: root, stdio: [stdin, "inherit", "pipe"] });
}
