import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * The load simulation (scripts/bench/load-sim.mjs, BENCHMARKS.md's issue #20 tables) counts what
 * the real objects do; this checks its counting on a fleet small enough to count by hand, so a
 * broken counter (zeros, double counts, a phase's calls credited to the next) fails here instead
 * of printing a flat table. The long poll is 10 minutes, so no parked check-in times out during
 * the run and every count below follows from the agents' own steps.
 */

const root = path.resolve(__dirname, "../..");
const scratch = mkdtempSync(path.join(tmpdir(), "load-sim-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const AGENTS = 6;

interface CallCounts {
  requests: number;
  rpc: number;
  methods: Record<string, number>;
}

interface Phase {
  phase: string;
  agents: number;
  calls: Record<string, CallCounts>;
  classes: Record<string, { objects: number; events: number; busiest: { events: number } | null }>;
  agent_stats: { checkins: number; acks: number; answered: Record<string, number> };
  worker_requests: Record<string, number>;
}

interface Run {
  shape: string;
  policies: number;
  shards_per_policy: number;
  phases: Phase[];
  errors: Record<string, number>;
}

let runs: Run[] = [];

beforeAll(async () => {
  const out = path.join(scratch, "report.json");
  const args = ["scripts/bench/load-sim.mjs", "--exact", "--agents", String(AGENTS), "--shapes", "one,many", "--agents-per-shard", "3", "--policy-size", "3", "--out", out];
  const child = spawn("node", args, { cwd: root, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  if (code !== 0) throw new Error(`load-sim exited ${code}:\n${stderr}`);
  runs = (JSON.parse(readFileSync(out, "utf8")) as { runs: Run[] }).runs;
}, 240_000);

const phaseOf = (run: Run, name: string): Phase => {
  const phase = run.phases.find((p) => p.phase === name);
  if (!phase) throw new Error(`no phase ${name}`);
  return phase;
};
const method = (phase: Phase, cls: string, name: string) => phase.calls[cls]?.methods[name] ?? 0;

describe("load simulation counting", () => {
  it("runs both fleet shapes without an agent request failing", () => {
    expect(runs.map((r) => [r.shape, r.policies, r.shards_per_policy])).toEqual([
      ["one", 1, 2],
      ["many", 2, 1],
    ]);
    for (const run of runs) expect(run.errors).toEqual({});
  });

  it("counts each agent's enrollment as one call to its store", () => {
    for (const run of runs) expect(method(phaseOf(run, "enroll"), "AgentStore", "call")).toBe(AGENTS);
  });

  it("counts the start: a check-in answered with revision 1, its ack, and a check-in that parks", () => {
    for (const run of runs) {
      const start = phaseOf(run, "start");
      expect(start.worker_requests).toEqual({ checkin: 2 * AGENTS, acks: AGENTS });
      expect(start.agent_stats).toEqual({ checkins: 2 * AGENTS, acks: AGENTS, answered: { policy: AGENTS, actions: 0, none: 0, error: 0 } });
      // Each check-in and each ack is one call to the agent's store; each check-in one park in its shard.
      expect(method(start, "AgentStore", "call")).toBe(3 * AGENTS);
      expect(method(start, "HubShard", "park")).toBe(2 * AGENTS);
      expect(start.calls.Directory).toBeUndefined();
    }
  });

  it("counts a rollout: one delivery per shard, and per agent a wake-up, an ack and a check-in that parks", () => {
    for (const run of runs) {
      const rollout = phaseOf(run, "rollout");
      expect(rollout.worker_requests).toEqual({ admin: run.policies, acks: AGENTS, checkin: AGENTS });
      expect(rollout.agent_stats).toEqual({ checkins: AGENTS, acks: AGENTS, answered: { policy: AGENTS, actions: 0, none: 0, error: 0 } });
      expect(method(rollout, "AgentStore", "call")).toBe(2 * AGENTS);
      expect(method(rollout, "HubShard", "park")).toBe(AGENTS);
      expect(method(rollout, "HubShard", "deliver")).toBe(run.policies * run.shards_per_policy);
    }
  });

  it("counts a reconnect storm: one check-in per agent, each parking again", () => {
    for (const run of runs) {
      const storm = phaseOf(run, "storm");
      expect(storm.worker_requests).toEqual({ checkin: AGENTS });
      expect(method(storm, "AgentStore", "call")).toBe(AGENTS);
      expect(method(storm, "HubShard", "park")).toBe(AGENTS);
    }
  });

  it("credits every counted call to some object, and the busiest object of a kind to its kind", () => {
    for (const run of runs) {
      for (const phase of run.phases) {
        for (const [cls, calls] of Object.entries(phase.calls)) {
          if (calls.requests === 0) continue;
          expect(phase.classes[cls]?.events, `${run.shape} ${phase.phase} ${cls}`).toBe(calls.requests);
          expect(phase.classes[cls]!.busiest!.events).toBeGreaterThan(0);
          expect(phase.classes[cls]!.busiest!.events).toBeLessThanOrEqual(calls.requests);
        }
      }
    }
  });
});
