import type { PolicyRevision } from "../protocol/policy";
import type { RevisionClaim } from "../session/contract";
import type { RolloutState } from "../policy/staged-rollout";
import type { RevisionRef } from "./revision-cache";

/** What a check-in and a policy hub exchange with a policy's fan-out shard (durable/hub-shard.ts). */

export type ParkResult =
  /** The revision to run, as JSON, or only its name when the caller said it holds that revision. */
  | { kind: "policy"; ref: RevisionRef; json?: string }
  | { kind: "actions" }
  | { kind: "timeout" }
  /** Admission control: too many check-ins arriving, or parked, in this shard right now. */
  | { kind: "busy"; error: "RateLimit" | "MaxLimit"; retryAfterMs: number };

export interface ParkRequest {
  agentId: string;
  claim: RevisionClaim;
  /** Highest action sequence number the agent's store had when the check-in read it. */
  actionSeq: number;
  holdMs: number;
  /** The revision of this policy the calling isolate already holds (src/checkin/revision-cache.ts). */
  known?: RevisionRef;
}

/** What a shard needs from its policy hub to decide who is behind: sent on every change. */
export interface DeliverySnapshot {
  latest: PolicyRevision | null;
  previous: PolicyRevision | null;
  rollout: RolloutState | null;
}
