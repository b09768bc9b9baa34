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

/**
 * A page merged from several rosters (policies, or one policy's roster shards) costs each of them
 * its first `offset + limit` rows, so, like Elasticsearch's `max_result_window`, offset paging stops
 * here; a page after a cursor costs each `limit` rows at any depth.
 */
export const MERGED_PAGE_WINDOW = 10_000;

/** What each roster is asked for so that merging the answers gives `query`'s page. */
export const partQuery = (query: AgentQuery): AgentQuery => ({ ...query, offset: 0, limit: query.offset + query.limit });

/** `query`'s page from the rosters' answers to `partQuery(query)`: each sorted, disjoint. */
export function mergePages(pages: Array<{ items: ListedAgent[]; total: number }>, query: AgentQuery): { items: ListedAgent[]; total: number } {
  const merged = pages.flatMap((page) => page.items).sort(compareListed(query));
  return { items: merged.slice(query.offset, query.offset + query.limit), total: pages.reduce((sum, page) => sum + page.total, 0) };
}

/** The roster's order in JavaScript: the sort field with nulls last, then agent id. */
function compareListed(query: AgentQuery): (a: ListedAgent, b: ListedAgent) => number {
  const direction = query.sortOrder === "asc" ? 1 : -1;
  const field = query.sortField;
  return (a, b) => {
    const x = a[field];
    const y = b[field];
    if (x === null && y !== null) return 1;
    if (y === null && x !== null) return -1;
    if (x !== y && x !== null && y !== null) return (x < y ? -1 : 1) * direction;
    return a.agent_id < b.agent_id ? -1 : a.agent_id > b.agent_id ? 1 : 0;
  };
}
