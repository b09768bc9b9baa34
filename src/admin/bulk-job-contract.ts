import type { ListCursor } from "../protocol/admin";
import type { NewAction } from "../agents/actions";

/** What a bulk job (durable/bulk-job.ts) is asked to do, and what it reports back. */

export type JobOperation =
  | { kind: "action"; action: NewAction; rolloutDurationSeconds?: number }
  | { kind: "reassign"; policyId: string }
  | { kind: "tags"; add: string[]; remove: string[]; replace?: string[] }
  | { kind: "revoke" };

export type JobTargets = { agents: string[] } | { policyId: string };

export interface JobRecord {
  id: string;
  operation: JobOperation;
  targets: JobTargets;
  created_at: string;
  /** Set once the target list is complete (a policy's roster is read page by page). */
  resolved: boolean;
  /** Agents read so far while resolving a policy's agents. */
  cursor: number;
  /** The last agent read (enrolled_at, id): the next page starts after it. */
  after?: ListCursor;
  cancelled_at?: string;
  cancel_action_id?: string;
  completed_at?: string;
}

/** Progress in Kibana's action-status names. */
export interface JobStatus {
  actionId: string;
  type: string;
  status: "IN_PROGRESS" | "COMPLETE" | "EXPIRED" | "CANCELLED" | "FAILED";
  nbAgentsActioned: number;
  nbAgentsActionCreated: number;
  nbAgentsAck: number;
  nbAgentsFailed: number;
  creationTime: string;
  expiration?: string;
  completionTime?: string;
  cancellationTime?: string;
  latestErrors: Array<{ agentId: string; error: string; timestamp: string }>;
}
