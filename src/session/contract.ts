import type { AckItem } from "../protocol/ack";
import type { DeliveredAction } from "../protocol/action";
import type { Component, UpgradeDetails } from "../protocol/checkin";
import type { JsonObject } from "../protocol/parse";
import type { OpampOutcome, OpampReport } from "../opamp/report";

/**
 * What an agent's session exchanges with the agent's store, whatever the channel (HTTP long poll,
 * WebSocket). The store records; the session decides what the agent gets (src/session/checkin.ts).
 */

export interface AgentEnrollInput {
  agentId: string;
  /** The agent asked for this id (`id` in the body), so an existing record may be replaced. */
  clientChosenId: boolean;
  replaceToken?: string;
  policyId: string;
  namespaces: string[];
  type: string;
  localMetadata: JsonObject | null;
  tags: string[];
  enrollmentId?: string;
  version: string;
}

export interface CheckinInput {
  status: string;
  message: string;
  ackToken?: string;
  localMetadata?: JsonObject | null;
  components?: Component[] | null;
  upgradeDetails?: UpgradeDetails | null;
  reported?: { policyId: string; revision: number };
  rollbacks?: JsonObject[] | null;
  version: string;
  /** An OpenTelemetry collector's message (src/opamp/): its status, metadata and components come from here. */
  opamp?: OpampReport;
}

/** What the policy's shard needs to decide whether this agent's policy is out of date (fleet-protocol.md §4.2). */
export interface RevisionClaim {
  /** `policy_revision_idx` from the record before this check-in. */
  stored: number;
  /** `agent_policy_id` / `policy_revision_idx` the agent reported (9.2+). */
  reported?: { policyId: string; revision: number };
}

/** The store's record of a check-in: what is pending for the agent right now. */
export interface CheckinOutcome {
  policyId: string;
  claim: RevisionClaim;
  actions: DeliveredAction[];
  ackToken: string;
  /** Highest stored action sequence number, so the shard can tell if it missed a wake-up. */
  actionSeq: number;
  /** For an OpAMP check-in. */
  opamp?: OpampOutcome;
}

export interface AckOutcome {
  /** One per event, in request order (fleet-protocol.md §6). */
  items: AckItem[];
}
