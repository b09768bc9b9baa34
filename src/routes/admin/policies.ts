import { Hono } from "hono";
import type { AppEnv } from "../../config";
import { directory, policyHub } from "../../durable-stubs";
import { FleetError } from "../../errors";
import { readAdminJson } from "../../http/body";
import { parseBody } from "../../protocol/parse";
import { PolicyId, PolicyPutRequest, toAgentPolicy, type PolicyRevision } from "../../protocol/policy";

/** Agent policies: create or revise with PUT; read what agents receive with `/full`. */
export const policies = new Hono<AppEnv>()
  .put("/api/fleet/agent_policies/:id", async (c) => {
    const policyId = parseBody(PolicyId, c.req.param("id"), "admin");
    const body = parseBody(PolicyPutRequest, await readAdminJson(c), "admin");
    const { revision, changed } = await policyHub(c.env, policyId).put({
      policyId,
      name: body.name,
      namespace: body.namespace,
      ...(body.description !== undefined ? { description: body.description } : {}),
      policy: body.policy,
    });
    await directory(c.env).registerPolicy({
      id: policyId,
      name: revision.name,
      namespace: revision.namespace,
      revision: revision.revision,
      updated_at: revision.created_at,
    });
    return c.json({ item: policyItem(revision), changed });
  })
  .get("/api/fleet/agent_policies/:id/full", async (c) => {
    const latest = await policyHub(c.env, c.req.param("id")).latest();
    if (!latest) throw new FleetError("NotFound", `agent policy ${c.req.param("id")} not found`);
    return c.json({ item: toAgentPolicy(latest) });
  });

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
