import type { AgentStatus, AgentSummary } from "../agents/status";
import type { ListCursor } from "../protocol/admin";

/** An admin's agent listing as a policy hub's roster answers it (durable/agent-roster.ts). */

/** Roster columns a listing may sort by (agent_id breaks ties). */
export const SORT_FIELDS = ["enrolled_at", "last_checkin", "hostname", "version", "agent_id"] as const;
export type SortField = (typeof SORT_FIELDS)[number];

export interface AgentQuery {
  status?: AgentStatus;
  tag?: string;
  version?: string;
  /** Case-insensitive substring of hostname or agent id (a simple `kuery`). */
  text?: string;
  /** Unenrolled agents are hidden unless asked for (as Kibana's `showInactive`). */
  includeInactive?: boolean;
  sortField: SortField;
  sortOrder: "asc" | "desc";
  limit: number;
  offset: number;
  /** Keyset paging: only rows after this one in the query's order (then `offset` is 0). */
  after?: ListCursor;
}

export type ListedAgent = AgentSummary & { status: AgentStatus; policy_id: string };
