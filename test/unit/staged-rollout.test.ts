import { describe, expect, it } from "vitest";
import { BUCKETS, agentBucket, decide, isSplitting, stageThreshold, type RolloutState, type RolloutStatus } from "../../src/policy/staged-rollout";

const started = "2026-11-29T00:00:00.000Z";
const at = (seconds: number) => Date.parse(started) + seconds * 1000;

function rollout(overrides: Partial<RolloutState> = {}): RolloutState {
  return {
    target: 2,
    previous: 1,
    stages: [1, 10, 100],
    stage: 0,
    status: "running",
    criteria: { min_acked_percent: 90, max_failed_percent: 5, window_seconds: 600 },
    created_at: started,
    created_by: "admin-token",
    stage_started_at: started,
    history: [],
    ...overrides,
  };
}

describe("decide (what a running stage does next)", () => {
  it("promotes a stage whose agents acked enough, and completes the last one", () => {
    expect(decide(rollout(), { members: 10, acked: 9, failed: 0 }, at(30))).toEqual({ action: "promote" });
    expect(decide(rollout({ stage: 2 }), { members: 10, acked: 10, failed: 0 }, at(30))).toEqual({ action: "complete" });
    // A stage with no agents in it (a small fleet's 1%) does not block the rollout.
    expect(decide(rollout(), { members: 0, acked: 0, failed: 0 }, at(0))).toEqual({ action: "promote" });
  });

  it("waits inside the window and holds, with the reason, once the window has passed", () => {
    expect(decide(rollout(), { members: 10, acked: 8, failed: 0 }, at(600))).toEqual({ action: "wait" });
    expect(decide(rollout({ stage: 1 }), { members: 10, acked: 8, failed: 0 }, at(601))).toEqual({
      action: "hold",
      reason: "stage 2: 8 of 10 agents acked within 600 s (needed 90%)",
    });
  });

  it("holds when more than the allowed share fails, even when the stage acked", () => {
    expect(decide(rollout(), { members: 20, acked: 20, failed: 1 }, at(30))).toEqual({ action: "promote" });
    expect(decide(rollout(), { members: 20, acked: 20, failed: 2 }, at(30))).toEqual({
      action: "hold",
      reason: "2 of 20 agents in stage 1 report error or degraded (limit 5%)",
    });
  });

  it("leaves a rollout that is not running alone", () => {
    for (const status of ["paused", "held", "completed", "aborted", "superseded"] satisfies RolloutStatus[]) {
      expect(decide(rollout({ status }), { members: 10, acked: 10, failed: 10 }, at(10_000))).toEqual({ action: "wait" });
    }
  });
});

describe("stage membership", () => {
  it("takes the stage's share of the buckets, so each stage contains the one before", () => {
    expect([0, 1, 2].map((stage) => stageThreshold(rollout({ stage })))).toEqual([BUCKETS / 100, BUCKETS / 10, BUCKETS]);
    expect(stageThreshold(rollout({ stages: [0.5, 100] }))).toBe(50);
  });

  it("is a stable bucket of the agent id, spread over the whole range", () => {
    const buckets = Array.from({ length: 10_000 }, (_, i) => agentBucket(`agent-${i}`));
    expect(buckets.every((b) => Number.isInteger(b) && b >= 0 && b < BUCKETS)).toBe(true);
    expect(agentBucket("agent-42")).toBe(buckets[42]);
    // About 10% of agents fall in a 10% stage (binomial: 1,000 ± ~95 at three standard deviations).
    const inTenPercent = buckets.filter((b) => b < BUCKETS / 10).length;
    expect(inTenPercent).toBeGreaterThan(900);
    expect(inTenPercent).toBeLessThan(1100);
  });

  it("splits the fleet only while the rollout is running, paused or held", () => {
    const splitting = (["running", "paused", "held", "completed", "aborted", "superseded"] satisfies RolloutStatus[]).filter((status) => isSplitting(rollout({ status })));
    expect(splitting).toEqual(["running", "paused", "held"]);
    expect(isSplitting(null)).toBe(false);
  });
});
