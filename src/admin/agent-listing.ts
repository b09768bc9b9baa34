import { MERGED_PAGE_WINDOW, mergePages, partQuery, type AgentQuery, type ListedAgent } from "./agent-query";
import type { Env } from "../config";
import type { ListCursor } from "../protocol/admin";
import { fleetConfig } from "../config";
import { directory, policyHub } from "../durable-stubs";
import { FleetError, orThrow } from "../errors";

/**
 * Across all policies, a page is the merge of every policy's first `offset + limit` rows, so offset
 * paging stops at `MERGED_PAGE_WINDOW` (as Elasticsearch's `max_result_window`); a page after a
 * cursor (`searchAfter`) merges each policy's first `limit` rows after it, so it has no limit. Within
 * one policy the hub answers (merging its roster shards' pages the same way when it has several).
 */
export async function listAgents(env: Env, query: AgentQuery, policyId?: string): Promise<{ items: ListedAgent[]; total: number }> {
  const offlineAfterMs = fleetConfig(env).offlineAfterMs;
  if (policyId) return orThrow(await policyHub(env, policyId).listAgents(policyId, query, offlineAfterMs));
  if (query.offset + query.limit > MERGED_PAGE_WINDOW) {
    throw new FleetError(
      "AdminBadRequest",
      `page * perPage may not exceed ${MERGED_PAGE_WINDOW} across all policies; page with searchAfter (each page's nextSearchAfter) or filter by policy_id to go deeper`,
    );
  }
  const policyIds = await directory(env).policyIds();
  const pages = await Promise.all(policyIds.map(async (id) => orThrow(await policyHub(env, id).listAgents(id, partQuery(query), offlineAfterMs))));
  return mergePages(pages, query);
}

/** Where the next page starts: after the last row of a full one. */
export function nextCursor(items: ListedAgent[], query: AgentQuery): ListCursor | undefined {
  const last = items.at(-1);
  return last && items.length === query.limit ? { value: last[query.sortField], agentId: last.agent_id } : undefined;
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
