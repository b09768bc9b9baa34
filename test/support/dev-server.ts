import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface DevServer {
  url: string;
  port: number;
  adminToken: string;
  /** The started process: npm's with `viaNpm`, else scripts/dev.mjs's; the leader of its process group. */
  pid: number;
  stop(): Promise<void>;
  /** Ends the server with SIGKILL, as a crash would, and leaves its state for the next start. */
  kill(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts `npm start` (scripts/dev.mjs → Miniflare → workerd) on a free port with throwaway state, or
 * on `options.state` (kept: the caller removes it), to start again on after a `kill()` (on the same
 * `options.port` if given). With
 * `viaNpm` through npm itself, as an operator types it, else as `node scripts/dev.mjs`.
 */
export async function startDevServer(vars: Record<string, string> = {}, options: { state?: string; viaNpm?: boolean; port?: number } = {}): Promise<DevServer> {
  // A given port: a restart on the same address, for clients that keep talking across it.
  if (options.port !== undefined) return launch(vars, options, options.port);
  // A free port is free when asked, not necessarily when the server binds it: another process of
  // the run (a workerd of another test project) can take it in between. Then a new one.
  for (let attempt = 1; ; attempt++) {
    try {
      return await launch(vars, options, await freePort());
    } catch (err) {
      if (!(err instanceof AddressInUse) || attempt === 3) throw err;
    }
  }
}

/** The server could not bind the port it was given. */
class AddressInUse extends Error {}

async function launch(vars: Record<string, string>, options: { state?: string; viaNpm?: boolean }, port: number): Promise<DevServer> {
  const state = options.state ?? mkdtempSync(join(tmpdir(), "fleet-e2e-"));
  const adminToken = "e2e-admin-token";
  const varArgs = Object.entries({ FLEET_ADMIN_TOKEN: adminToken, ...vars }).flatMap(([k, v]) => ["--var", `${k}:${v}`]);
  const devArgs = ["--port", String(port), "--ip", "127.0.0.1", "--persist-to", state, ...varArgs];
  const [command, commandArgs] = options.viaNpm ? ["npm", ["start", "--", ...devArgs]] : ["node", ["scripts/dev.mjs", ...devArgs]];
  const child: ChildProcess = spawn(command, commandArgs, {
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  // The server's own log is kept next to the run (test-output/, git-ignored) for failures to be read.
  mkdirSync("test-output", { recursive: true });
  const log = createWriteStream(join("test-output", `dev-server-${port}.log`));
  let output = "";
  child.stdout!.on("data", (d) => {
    output += d;
    log.write(d);
  });
  child.stderr!.on("data", (d) => {
    output += d;
    log.write(d);
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) {
      if (!options.state) rmSync(state, { recursive: true, force: true });
      throw new (/ERR_ADDRESS_IN_USE|Address already in use/.test(output) ? AddressInUse : Error)(`dev server exited early:\n${output}`);
    }
    try {
      if ((await fetch(`${url}/api/status`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`dev server did not start within 60 s:\n${output}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    url,
    port,
    adminToken,
    pid: child.pid!,
    async stop() {
      // The started process group; dev.mjs stops workerd on SIGTERM.
      try {
        process.kill(-child.pid!, "SIGTERM");
      } catch {
        // already gone
      }
      await untilClosed(port, 10_000);
      if (!options.state) rmSync(state, { recursive: true, force: true });
    },
    async kill() {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // already gone
      }
      await exited;
      // workerd, dev.mjs's child, dies with the group; wait until the port is free again.
      for (let i = 0; i < 40; i++) {
        try {
          await fetch(`${url}/api/status`);
        } catch {
          return;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
      throw new Error(`the killed server still answers on ${url}`);
    },
  };
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Waits until nothing listens on `port` any more; false if something still does after `ms`. */
export async function untilClosed(port: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (await listening(port)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

/** An admin API call as the admin token, with its status and parsed JSON answer. */
export async function adminRequest<T>(server: DevServer, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${server.adminToken}`, "Content-Type": "application/json" },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON (a runtime's error page): kept as text, so a failing test shows it.
  }
  return { status: res.status, body: parsed as T };
}

/** An admin API call that must succeed (anything but 200 fails the test with the answer). */
export async function adminCall<T = { item: Record<string, string> }>(server: DevServer, method: string, path: string, body?: unknown): Promise<T> {
  const { status, body: answer } = await adminRequest<T>(server, method, path, body);
  if (status !== 200) throw new Error(`${method} ${path}: ${status} ${JSON.stringify(answer)}`);
  return answer;
}
