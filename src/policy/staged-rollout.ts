/**
 * Staged rollouts of a policy revision: the new revision reaches a growing share of the policy's
 * agents (e.g. 1% → 10% → 100%); each stage is promoted when enough of its agents acked it and
 * report healthy, and held when too many fail. Agents outside the current stage keep the previous
 * revision. The rules here are pure; `durable/rollout-control.ts` stores the state and applies the decisions.
 */
import { stableHash } from "../stable-hash";

export interface RolloutCriteria {
  /** Share of a stage's agents that must run the new revision before the next stage starts. */
  min_acked_percent: number;
  /** Share of a stage's agents reporting error/degraded that holds the rollout. */
  max_failed_percent: number;
  /** How long a stage may take to reach `min_acked_percent` before the rollout is held. */
  window_seconds: number;
}

export type RolloutStatus = "running" | "paused" | "held" | "completed" | "aborted" | "superseded";

export interface RolloutState {
  target: number;
  previous: number;
  /** Cumulative share of the fleet per stage, ascending, the last one 100. */
  stages: number[];
  stage: number;
  status: RolloutStatus;
  criteria: RolloutCriteria;
  created_at: string;
  created_by: string;
  stage_started_at: string;
  reason?: string;
  history: Array<{ stage: number; percent: number; started_at: string; ended_at: string; members: number; acked: number; failed: number; outcome: string }>;
}

/** One point of a rollout's progress over time: its current stage's counts at `at`. */
export interface RolloutSample extends StageStats {
  stage: number;
  at: string;
}

export interface StageStats {
  members: number;
  acked: number;
  failed: number;
}

/** Buckets per 100%: an agent is in a stage of p% when its bucket is below p × 100. */
export const BUCKETS = 10_000;

/** A stable bucket for an agent (FNV-1a of its id), so stage membership never changes under it. */
export function agentBucket(agentId: string): number {
  return stableHash(agentId) % BUCKETS;
}

/** The bucket threshold of the current stage: agents below it get the new revision. */
export function stageThreshold(state: RolloutState): number {
  return Math.round((state.stages[state.stage] ?? 100) * (BUCKETS / 100));
}

/** Whether the rollout still splits the fleet (agents outside the stage keep the previous revision). */
export function isSplitting(state: RolloutState | null): state is RolloutState {
  return state !== null && (state.status === "running" || state.status === "paused" || state.status === "held");
}

export type Decision = { action: "wait" } | { action: "promote" } | { action: "complete" } | { action: "hold"; reason: string };

/** What a running stage should do next, from its agents' acks and health. */
export function decide(state: RolloutState, stats: StageStats, now: number): Decision {
  if (state.status !== "running") return { action: "wait" };
  const percent = (n: number) => (stats.members === 0 ? 0 : (100 * n) / stats.members);
  if (stats.members > 0 && percent(stats.failed) > state.criteria.max_failed_percent) {
    return { action: "hold", reason: `${stats.failed} of ${stats.members} agents in stage ${state.stage + 1} report error or degraded (limit ${state.criteria.max_failed_percent}%)` };
  }
  const ready = stats.members === 0 || percent(stats.acked) >= state.criteria.min_acked_percent;
  if (ready) return state.stage === state.stages.length - 1 ? { action: "complete" } : { action: "promote" };
  if (now - Date.parse(state.stage_started_at) > state.criteria.window_seconds * 1000) {
    return { action: "hold", reason: `stage ${state.stage + 1}: ${stats.acked} of ${stats.members} agents acked within ${state.criteria.window_seconds} s (needed ${state.criteria.min_acked_percent}%)` };
  }
  return { action: "wait" };
}
