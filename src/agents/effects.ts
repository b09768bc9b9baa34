import type { AgentSummary } from "./status";

/**
 * What an agent's store tells other objects about a change it made. Each is written in the same
 * transaction as the change (durable/agent-effects.ts) and delivered afterwards, in order and with
 * retry: receivers must apply them idempotently.
 */

/** A policy hub's roster rows. `version` rises with every change of an agent (its store's effect sequence). */
export interface RosterChanges {
  upserts: Array<{ summary: AgentSummary; version: number }>;
  /** The agent left the policy (reassigned, or an enrollment that never checked in was dropped). */
  removes: Array<{ agentId: string; version: number }>;
  /** Only the agent's check-in time moved (a held heartbeat was written): one column, not the row. */
  touches: Array<{ agentId: string; lastCheckin: string; version: number }>;
}

/** What a policy's fan-out shard does for one of its agents. */
export type ShardEffect =
  /** Close the agent's socket (only `connection`'s, when given) and end its parked check-in. */
  | { kind: "disconnect"; agentId: string; code: number; reason: string; connection?: string }
  /** An action was stored for the agent (its sequence number): push it, or release the parked check-in. */
  | { kind: "wake"; agentId: string; seq: number };

/**
 * An agent's answer to an action, for the action's progress: its first ack counts; an upgrade's
 * outcome as the agent later reports it in `upgrade_details` (`upgrade: true`) replaces it, since
 * an agent acks an UPGRADE before it knows whether the upgrade worked.
 */
export interface ActionResult {
  agentId: string;
  error?: string;
  at: string;
  upgrade?: true;
}
