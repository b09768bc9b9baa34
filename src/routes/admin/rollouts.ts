import { Hono } from "hono";
import type { AppEnv } from "../../config";
import { directory, policyHub } from "../../durable-stubs";
import { FleetError, orThrow } from "../../errors";
import { readAdminJson } from "../../http/body";
import { RolloutStart } from "../../protocol/admin";
import { parseBody } from "../../protocol/parse";
import { PolicyContent } from "../../protocol/policy";

/**
 * Staged rollouts of a policy change: publish to 1% → 10% → 100% (or any stages), promoted
 * automatically while each stage acks and stays healthy; pause, resume, promote, abort.
 */
export const rollouts = new Hono<AppEnv>()
  .post("/api/fleet/agent_policies/:id/rollouts", async (c) => {
    const policyId = c.req.param("id");
    const body = parseBody(RolloutStart, await readAdminJson(c), "admin");
    const policy = parseBody(PolicyContent, body.policy, "admin");
    const hub = policyHub(c.env, policyId);
    const latest = await hub.latest();
    if (!latest) throw new FleetError("NotFound", `agent policy ${policyId} not found`);
    const rollout = orThrow(
      await hub.startRollout({
        policyId,
        createdBy: c.get("admin"),
        name: body.name ?? latest.name,
        namespace: body.namespace ?? latest.namespace,
        ...(body.description !== undefined ? { description: body.description } : {}),
        policy,
        stages: body.stages,
        criteria: { min_acked_percent: body.min_acked_percent, max_failed_percent: body.max_failed_percent, window_seconds: body.window_seconds },
      }),
    );
    await directory(c.env).registerPolicy({ id: policyId, name: body.name ?? latest.name, namespace: body.namespace ?? latest.namespace, revision: rollout.target, updated_at: rollout.created_at });
    return c.json({ item: rollout });
  })
  .get("/api/fleet/agent_policies/:id/rollouts/current", async (c) => {
    const rollout = await policyHub(c.env, c.req.param("id")).stagedRollout();
    if (!rollout) throw new FleetError("NotFound", `agent policy ${c.req.param("id")} has no staged rollout`);
    return c.json({ item: rollout });
  })
  .post("/api/fleet/agent_policies/:id/rollouts/current/:command{pause|resume|promote|abort}", async (c) => {
    const hub = policyHub(c.env, c.req.param("id"));
    const command = c.req.param("command") as "pause" | "resume" | "promote" | "abort";
    const rollout = orThrow(await hub.rolloutCommand(command, c.get("admin")));
    if (command === "abort") {
      // An abort publishes the previous content as a new revision: the catalogue follows, as after a PUT.
      const latest = await hub.latest();
      if (latest) await directory(c.env).registerPolicy({ id: latest.policy_id, name: latest.name, namespace: latest.namespace, revision: latest.revision, updated_at: latest.created_at });
    }
    return c.json({ item: rollout });
  });
