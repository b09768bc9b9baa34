import type { PolicyRevision } from "../protocol/policy";
import type { RevisionClaim } from "../session/contract";
import type { RolloutState } from "../policy/staged-rollout";
import type { RevisionRef } from "./revision-cache";

/** What a check-in and a policy hub exchange with a policy's fan-out shard (durable/hub-shard.ts). */

export type ParkResult =
  /**
   * The revision to run, as JSON, or only its name when the caller said it holds that revision; and
   * the policy's shard count, which the caller's revision cache learns with it.
   */
  | { kind: "policy"; ref: RevisionRef; json?: string; shards: number }
  | { kind: "actions" }
  | { kind: "timeout" }
  /** Admission control: too many check-ins arriving, or parked, in this shard right now. */
  | { kind: "busy"; error: "RateLimit" | "MaxLimit"; retryAfterMs: number }
  /** The policy has `shards` shards now and the agent belongs to another: call that one (once). */
  | { kind: "moved"; shards: number };

export interface ParkRequest {
  agentId: string;
  /** The index of the shard called, as the caller picked it (src/durable-stubs.ts). */
  shard: number;
  claim: RevisionClaim;
  /** Highest action sequence number the agent's store had when the check-in read it. */
  actionSeq: number;
  holdMs: number;
  /** The revision of this policy the calling isolate already holds (src/checkin/revision-cache.ts). */
  known?: RevisionRef;
}

/** What a shard needs from its policy hub to decide who is behind and whom it holds: sent on every change. */
export interface DeliverySnapshot {
  latest: PolicyRevision | null;
  previous: PolicyRevision | null;
  rollout: RolloutState | null;
  /** The policy's fan-out shard count: an agent belongs to shard `agentBucket(id) % shards`. */
  shards: number;
}

/** The status and header of a shard's answer to a WebSocket upgrade for an agent it no longer holds. */
export const MOVED_STATUS = 421;
export const SHARDS_HEADER = "X-Fleet-Shards";
