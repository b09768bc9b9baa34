import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { listening, startDevServer, untilClosed } from "../support/dev-server";

interface Proc {
  pid: number;
  ppid: number;
  state: string;
  command: string;
}

/** Every live (not zombie) process, from `ps` (Linux and macOS). */
function processes(): Proc[] {
  return execFileSync("ps", ["-e", "-o", "pid=,ppid=,stat=,args="], { encoding: "utf8" })
    .split("\n")
    .map((line) => line.trim().match(/^(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/))
    .filter((m): m is RegExpMatchArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), state: m[3]!, command: m[4]! }))
    .filter((p) => !p.state.startsWith("Z"));
}

function descendants(root: number): Proc[] {
  const all = processes();
  const found: Proc[] = [];
  const parents = new Set([root]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of all) {
      if (parents.has(p.ppid) && !parents.has(p.pid)) {
        parents.add(p.pid);
        found.push(p);
        grew = true;
      }
    }
  }
  return found;
}

async function untilGone(pids: number[], ms: number): Promise<Proc[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = processes().filter((p) => pids.includes(p.pid));
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 100));
  }
}

type Stop = "SIGTERM to npm" | "SIGHUP to npm" | "Ctrl-C (SIGINT to the process group)" | "SIGTERM to node scripts/dev.mjs";

function send(how: Stop, npmPid: number, tree: Proc[]): void {
  if (how === "SIGTERM to npm") process.kill(npmPid, "SIGTERM");
  else if (how === "SIGHUP to npm") process.kill(npmPid, "SIGHUP");
  else if (how === "Ctrl-C (SIGINT to the process group)") process.kill(-npmPid, "SIGINT");
  else process.kill(tree.find((p) => p.command.startsWith("node scripts/dev.mjs"))!.pid, "SIGTERM");
}

describe("stopping npm start", () => {
  it.each<Stop>(["SIGTERM to npm", "SIGHUP to npm", "Ctrl-C (SIGINT to the process group)", "SIGTERM to node scripts/dev.mjs"])(
    "%s stops workerd: the port closes and no process of the tree remains",
    async (how) => {
      const server = await startDevServer({}, { viaNpm: true });
      const tree = descendants(server.pid);
      const pids = [server.pid, ...tree.map((p) => p.pid)];
      try {
        // The tree this test is about: npm → sh → node scripts/dev.mjs → workerd.
        expect(tree.some((p) => p.command.startsWith("node scripts/dev.mjs"))).toBe(true);
        expect(tree.some((p) => /\bworkerd serve\b/.test(p.command))).toBe(true);
        expect(await listening(server.port)).toBe(true);

        send(how, server.pid, tree);

        // dev.mjs gives workerd 3 s to stop, then kills it.
        expect(await untilClosed(server.port, 10_000)).toBe(true);
        expect((await untilGone(pids, 10_000)).map((p) => p.command)).toEqual([]);
      } finally {
        for (const p of processes().filter((p) => pids.includes(p.pid))) process.kill(p.pid, "SIGKILL");
        await server.stop();
      }
    },
  );
});
