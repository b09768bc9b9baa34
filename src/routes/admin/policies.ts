import { Hono, type Context } from "hono";
import { fleetConfig, type AppEnv } from "../../config";
import { directory, policyHub } from "../../durable-stubs";
import { FleetError, orThrow } from "../../errors";
import { readAdminJson } from "../../http/body";
import { Paging } from "../../protocol/admin";
import { parseBody, parseParam } from "../../protocol/parse";
import { pathChanges } from "../../policy/diff";
import { PolicyId, PolicyPutRequest, toAgentPolicy, type PolicyRevision } from "../../protocol/policy";
import { z } from "zod";

/** Changes a revision's diff lists; the rest are counted in `omitted`. */
const MAX_DIFF_CHANGES = 500;

const PolicyCreate = PolicyPutRequest.extend({ id: PolicyId.optional() });

/** Agent policies: immutable revisions, their history and rollback, rollout progress, deletion. */
export const policies = new Hono<AppEnv>()
  .get("/api/fleet/agent_policies", async (c) => {
    const { page, perPage } = parseBody(Paging, c.req.query(), "admin");
    const { items, total } = await directory(c.env).listPolicies(perPage, (page - 1) * perPage);
    const offlineAfterMs = fleetConfig(c.env).offlineAfterMs;
    const withAgents = await Promise.all(
      items.map(async (policy) => {
        const counts = await policyHub(c.env, policy.id).statusCounts(policy.id, offlineAfterMs);
        return { ...policy, agents: counts.total - counts.unenrolled };
      }),
    );
    return c.json({ items: withAgents, total, page, perPage });
  })
  .post("/api/fleet/agent_policies", async (c) => {
    const body = parseBody(PolicyCreate, await readAdminJson(c), "admin");
    const policyId = body.id ?? crypto.randomUUID();
    if (await directory(c.env).getPolicy(policyId)) throw new FleetError("Conflict", `agent policy ${policyId} already exists`);
    return c.json(await publish(c, policyId, body));
  })
  .put("/api/fleet/agent_policies/:id", async (c) => {
    const policyId = parseParam(PolicyId, "id", c.req.param("id"));
    return c.json(await publish(c, policyId, parseBody(PolicyPutRequest, await readAdminJson(c), "admin")));
  })
  .get("/api/fleet/agent_policies/:id", async (c) => {
    const latest = await latestOrThrow(c);
    const counts = await policyHub(c.env, latest.policy_id).statusCounts(latest.policy_id, fleetConfig(c.env).offlineAfterMs);
    return c.json({ item: { ...policyItem(latest), agents: counts.total - counts.unenrolled } });
  })
  .get("/api/fleet/agent_policies/:id/full", async (c) => c.json({ item: toAgentPolicy(await latestOrThrow(c)) }))
  .get("/api/fleet/agent_policies/:id/revisions", async (c) => {
    await latestOrThrow(c);
    return c.json({ items: await policyHub(c.env, c.req.param("id")).revisions() });
  })
  .get("/api/fleet/agent_policies/:id/revisions/:revision/diff", async (c) => {
    const policyId = c.req.param("id");
    const target = parseParam(z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER), "revision", c.req.param("revision"));
    await latestOrThrow(c);
    const found = await policyHub(c.env, policyId).revisionWithPrevious(target);
    if (!found) throw new FleetError("NotFound", `agent policy ${policyId} has no revision ${target}`);
    const { changes, omitted } = pathChanges(found.previous?.policy ?? {}, found.current.policy, MAX_DIFF_CHANGES);
    return c.json({
      item: {
        revision: found.current.revision,
        previous: found.previous?.revision ?? null,
        created_at: found.current.created_at,
        created_by: found.createdBy,
        changes,
        omitted,
      },
    });
  })
  .post("/api/fleet/agent_policies/:id/revisions/:revision/rollback", async (c) => {
    const policyId = c.req.param("id");
    const target = parseParam(z.coerce.number().int().min(1), "revision", c.req.param("revision"));
    await latestOrThrow(c);
    const { revision, changed } = orThrow(await policyHub(c.env, policyId).rollback(target, c.get("admin")));
    await register(c, revision);
    return c.json({ item: policyItem(revision), changed });
  })
  .get("/api/fleet/agent_policies/:id/rollout", async (c) => {
    const latest = await latestOrThrow(c);
    const rollout = await policyHub(c.env, latest.policy_id).rollout();
    const total = rollout.revisions.reduce((sum, r) => sum + r.agents, 0);
    return c.json({
      item: {
        policy_id: latest.policy_id,
        latest_revision: rollout.latest,
        agents_total: total,
        // Every revision at or past the latest: a reassigned agent may report its old policy's higher one.
        agents_on_latest: rollout.revisions.filter((r) => r.revision >= rollout.latest).reduce((sum, r) => sum + r.agents, 0),
        revisions: rollout.revisions,
        failing: rollout.failing.map((agent) => ({
          id: agent.agent_id,
          revision: agent.policy_revision_idx,
          status: agent.last_checkin_status,
          message: agent.last_checkin_message,
          unhealthy_reason: agent.unhealthy_reason,
        })),
      },
    });
  })
  .delete("/api/fleet/agent_policies/:id", async (c) => {
    const latest = await latestOrThrow(c);
    orThrow(await policyHub(c.env, latest.policy_id).deletePolicy());
    await directory(c.env).removePolicy(latest.policy_id);
    return c.json({ id: latest.policy_id, name: latest.name });
  });

async function publish(c: Context<AppEnv>, policyId: string, body: z.infer<typeof PolicyPutRequest>) {
  const { revision, changed } = orThrow(await policyHub(c.env, policyId).put({
    policyId,
    createdBy: c.get("admin"),
    name: body.name,
    namespace: body.namespace,
    ...(body.description !== undefined ? { description: body.description } : {}),
    policy: body.policy,
  }));
  await register(c, revision);
  return { item: policyItem(revision), changed };
}

/** Keeps the Directory's catalogue (names, latest revision) in step with the hub. */
async function register(c: Context<AppEnv>, revision: PolicyRevision): Promise<void> {
  await directory(c.env).registerPolicy({
    id: revision.policy_id,
    name: revision.name,
    namespace: revision.namespace,
    revision: revision.revision,
    updated_at: revision.created_at,
  });
}

async function latestOrThrow(c: Context<AppEnv>): Promise<PolicyRevision> {
  const id = c.req.param("id")!;
  const latest = await policyHub(c.env, id).latest();
  if (!latest) throw new FleetError("NotFound", `agent policy ${id} not found`);
  return latest;
}

function policyItem(revision: PolicyRevision) {
  return {
    id: revision.policy_id,
    name: revision.name,
    namespace: revision.namespace,
    ...(revision.description !== undefined ? { description: revision.description } : {}),
    revision: revision.revision,
    updated_at: revision.created_at,
  };
}
