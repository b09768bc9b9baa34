import type { AgentQuery, ListedAgent } from "./agent-query";
import type { Env } from "../config";
import type { ListCursor } from "../protocol/admin";
import { fleetConfig } from "../config";
import { directory, policyHub } from "../durable-stubs";
import { FleetError } from "../errors";

/**
 * Across all policies, a page is the merge of every policy's first `offset + limit` rows, so its
 * cost grows with depth: like Elasticsearch's `max_result_window`, it stops at 10,000. A page after
 * a cursor (`searchAfter`) merges each policy's first `limit` rows after it, so it has no limit, nor
 * has paging within one policy (`policy_id`), an indexed LIMIT/OFFSET in that policy's roster.
 */
export const CROSS_POLICY_WINDOW = 10_000;

export async function listAgents(env: Env, query: AgentQuery, policyId?: string): Promise<{ items: ListedAgent[]; total: number }> {
  const offlineAfterMs = fleetConfig(env).offlineAfterMs;
  if (policyId) return policyHub(env, policyId).listAgents(policyId, query, offlineAfterMs);
  if (query.offset + query.limit > CROSS_POLICY_WINDOW) {
    throw new FleetError(
      "AdminBadRequest",
      `page * perPage may not exceed ${CROSS_POLICY_WINDOW} across all policies; page with searchAfter (each page's nextSearchAfter) or filter by policy_id to go deeper`,
    );
  }
  const policyIds = await directory(env).policyIds();
  const pages = await Promise.all(
    policyIds.map((id) => policyHub(env, id).listAgents(id, { ...query, offset: 0, limit: query.offset + query.limit }, offlineAfterMs)),
  );
  const merged = pages.flatMap((page) => page.items).sort(compareBy(query));
  return { items: merged.slice(query.offset, query.offset + query.limit), total: pages.reduce((sum, page) => sum + page.total, 0) };
}

/** Where the next page starts: after the last row of a full one. */
export function nextCursor(items: ListedAgent[], query: AgentQuery): ListCursor | undefined {
  const last = items.at(-1);
  return last && items.length === query.limit ? { value: last[query.sortField], agentId: last.agent_id } : undefined;
}

/** The roster's order in JavaScript: the sort field with nulls last, then agent id. */
function compareBy(query: AgentQuery): (a: ListedAgent, b: ListedAgent) => number {
  const direction = query.sortOrder === "asc" ? 1 : -1;
  const field = query.sortField === "agent_id" ? "agent_id" : query.sortField;
  return (a, b) => {
    const x = a[field];
    const y = b[field];
    if (x === null && y !== null) return 1;
    if (y === null && x !== null) return -1;
    if (x !== y && x !== null && y !== null) return (x < y ? -1 : 1) * direction;
    return a.agent_id < b.agent_id ? -1 : a.agent_id > b.agent_id ? 1 : 0;
  };
}

/** An agent in admin listings: Kibana's names where they exist. */
export function agentListItem(agent: ListedAgent) {
  return {
    id: agent.agent_id,
    policy_id: agent.policy_id,
    policy_revision: agent.policy_revision_idx,
    status: agent.status,
    active: agent.active,
    enrolled_at: agent.enrolled_at,
    last_checkin: agent.last_checkin,
    last_checkin_status: agent.last_checkin_status,
    last_checkin_message: agent.last_checkin_message,
    hostname: agent.hostname,
    agent: { id: agent.agent_id, version: agent.version },
    tags: agent.tags,
    unhealthy_reason: agent.unhealthy_reason,
    type: agent.type,
  };
}

/** `field:value` KQL reduced to the value a hostname/id substring match can use. */
export function kueryText(kuery: string | undefined): string | undefined {
  if (!kuery) return undefined;
  const value = kuery.includes(":") ? kuery.slice(kuery.lastIndexOf(":") + 1) : kuery;
  const cleaned = value.trim().replace(/^["']|["']$/g, "").replaceAll("*", "");
  return cleaned || undefined;
}
