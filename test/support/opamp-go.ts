import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";

/** The Go module holding the opamp-go driver (test/opamp-go/client). */
const MODULE = resolve("test/opamp-go");

/** Why the opamp-go tests cannot run here, or null when `go` is on the PATH. */
export function goUnavailable(): string | null {
  try {
    execFileSync("go", ["version"], { stdio: "ignore" });
    return null;
  } catch {
    return "`go` is not on the PATH (the opamp-go client is built from test/opamp-go with the Go toolchain)";
  }
}

/**
 * Builds the driver (modules from the Go module proxy, checked against the committed go.sum).
 * Returns the binary, or why it could not be built; under CI=true a failure throws instead.
 */
export function buildDriver(): { binary: string } | { reason: string } {
  const missing = goUnavailable();
  const fail = (reason: string) => {
    if (process.env.CI === "true") throw new Error(`opamp-go tests cannot run under CI: ${reason}`);
    return { reason };
  };
  if (missing) return fail(missing);
  const binary = join(mkdtempSync(join(tmpdir(), "opamp-go-")), "opamp-client");
  try {
    execFileSync("go", ["build", "-mod=readonly", "-o", binary, "./client"], { cwd: MODULE, stdio: ["ignore", "ignore", "pipe"], timeout: 300_000 });
  } catch (err) {
    return fail(`go build of test/opamp-go failed (no Go module proxy?): ${String((err as { stderr?: Buffer }).stderr ?? err)}`);
  }
  return { binary };
}

export interface DriverEvent {
  event: string;
  [key: string]: unknown;
}

/** One running opamp-go client: its events in order, and ways to wait for them. */
export class GoCollector {
  readonly events: DriverEvent[] = [];
  readonly #child: ChildProcess;
  #waiters: Array<() => void> = [];
  #stderr = "";

  constructor(binary: string, args: string[]) {
    this.#child = spawn(binary, args, { stdio: ["pipe", "pipe", "pipe"] });
    createInterface({ input: this.#child.stdout! }).on("line", (line) => {
      try {
        this.events.push(JSON.parse(line) as DriverEvent);
      } catch {
        this.events.push({ event: "unparsed", line });
      }
      for (const wake of this.#waiters.splice(0)) wake();
    });
    this.#child.stderr!.on("data", (d: Buffer) => (this.#stderr += d.toString()));
  }

  /** The first event named `name` after index `from` that satisfies `match`, waiting up to `ms`. */
  async next(name: string, from = 0, match: (e: DriverEvent) => boolean = () => true, ms = 20_000): Promise<DriverEvent & { index: number }> {
    const deadline = Date.now() + ms;
    for (;;) {
      const index = this.events.findIndex((e, i) => i >= from && e.event === name && match(e));
      if (index >= 0) return { ...this.events[index]!, index };
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no "${name}" event within ${ms} ms; events: ${JSON.stringify(this.events)}\nstderr: ${this.#stderr.slice(-2000)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 500));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  count(name: string): number {
    return this.events.filter((e) => e.event === name).length;
  }

  /** Sends agent_disconnect and exits (opamp-go's Stop). */
  async stop(): Promise<void> {
    if (this.#child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.#child.once("exit", resolve));
    this.#child.stdin!.write("stop\n");
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
    this.#child.kill("SIGKILL");
  }
}
