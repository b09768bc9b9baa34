import { Hono } from "hono";
import { agentStatus } from "../../agents/status";
import type { AgentQuery } from "../../admin/agent-query";
import { agentListItem, kueryText, listAgents, nextCursor } from "../../admin/agent-listing";
import { startJob } from "../../admin/jobs";
import { fleetConfig, type AppEnv } from "../../config";
import { agentObject, directory, policyHub } from "../../durable-stubs";
import { FleetError } from "../../errors";
import { readAdminJson } from "../../http/body";
import { AgentListQuery, AgentUpdate, encodeCursor } from "../../protocol/admin";
import { parseBody } from "../../protocol/parse";

/** Reading agents: the paged list, one agent in full, tags, and the fleet overview. */
export const agents = new Hono<AppEnv>()
  .get("/api/fleet/agents", async (c) => {
    const query = parseBody(AgentListQuery, c.req.query(), "admin");
    if (query.searchAfter && query.page !== 1) throw new FleetError("AdminBadRequest", "page cannot be combined with searchAfter");
    const text = kueryText(query.kuery);
    const listQuery: AgentQuery = {
      sortField: query.sortField,
      sortOrder: query.sortOrder,
      limit: query.perPage,
      offset: (query.page - 1) * query.perPage,
      includeInactive: query.showInactive === "true",
      ...(query.status ? { status: query.status } : {}),
      ...(query.tag ? { tag: query.tag } : {}),
      ...(query.version ? { version: query.version } : {}),
      ...(text ? { text } : {}),
      ...(query.searchAfter ? { after: query.searchAfter } : {}),
    };
    const { items, total } = await listAgents(c.env, listQuery, query.policy_id);
    const next = nextCursor(items, listQuery);
    return c.json({ items: items.map(agentListItem), total, page: query.page, perPage: query.perPage, ...(next ? { nextSearchAfter: encodeCursor(next) } : {}) });
  })
  .get("/api/fleet/agent_status", async (c) => {
    const policyFilter = c.req.query("policyId");
    const ids = policyFilter ? [policyFilter] : await directory(c.env).policyIds();
    const offlineAfterMs = fleetConfig(c.env).offlineAfterMs;
    const byPolicy = await Promise.all(
      ids.map(async (id) => {
        const [counts, catalogue] = await Promise.all([policyHub(c.env, id).statusCounts(id, offlineAfterMs), directory(c.env).getPolicy(id)]);
        return { policy_id: id, name: catalogue?.name ?? id, revision: catalogue?.revision ?? 0, ...counts, active: counts.total - counts.unenrolled };
      }),
    );
    const results = { online: 0, offline: 0, degraded: 0, error: 0, updating: 0, enrolling: 0, unenrolling: 0, unenrolled: 0, total: 0, active: 0 };
    for (const policy of byPolicy) for (const key of Object.keys(results) as Array<keyof typeof results>) results[key] += policy[key];
    return c.json({ results, by_policy: byPolicy });
  })
  .get("/api/fleet/agents/:agentId", async (c) => {
    const agentId = c.req.param("agentId");
    const detail = await agentObject(c.env, agentId).detail();
    if (!detail) throw new FleetError("NotFound", `agent ${agentId} not found`);
    const { doc, summary } = detail;
    const latest = (await policyHub(c.env, doc.policy_id).latest())?.revision ?? 0;
    const status = agentStatus(summary, { now: Date.now(), offlineAfterMs: fleetConfig(c.env).offlineAfterMs, latestRevision: latest });
    return c.json({
      item: {
        ...agentListItem({ ...summary, status, policy_id: doc.policy_id }),
        latest_policy_revision: latest,
        local_metadata: doc.local_metadata,
        components: doc.components ?? null,
        upgrade_details: doc.upgrade_details ?? null,
        upgrade_started_at: doc.upgrade_started_at ?? null,
        upgraded_at: doc.upgraded_at ?? null,
        unenrolled_at: doc.unenrolled_at ?? null,
        audit_unenrolled_reason: doc.audit_unenrolled_reason ?? null,
        outputs: doc.outputs ?? {},
        pending_actions: detail.pending,
        action_results: detail.results,
        latest_action_results: detail.latestResults,
        status_history: detail.statusHistory,
        opamp: doc.opamp ?? null,
      },
    });
  })
  .put("/api/fleet/agents/:agentId", async (c) => {
    const agentId = c.req.param("agentId");
    const body = parseBody(AgentUpdate, await readAdminJson(c), "admin");
    await startJob(c, { kind: "tags", add: [], remove: [], replace: body.tags }, { agents: [agentId] });
    return c.json({ item: { id: agentId, tags: [...new Set(body.tags.map((t) => t.trim()).filter(Boolean))].sort() } });
  });
