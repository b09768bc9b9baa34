import { Hono, type Context } from "hono";
import { newAction, startJob, type ActionSpec } from "../../admin/jobs";
import type { JobTargets } from "../../admin/bulk-job-contract";
import { fleetConfig, type AppEnv } from "../../config";
import { requireUpgradeWithinServer } from "../../admin/upgrade-version";
import { agentObject, directory } from "../../durable-stubs";
import { FleetError, orThrow } from "../../errors";
import { readAdminJson } from "../../http/body";
import { DELIVERED_TYPES, shapeActionData } from "../../protocol/action";
import {
  ActionCreate,
  BulkAction,
  BulkDiagnostics,
  BulkReassign,
  BulkTags,
  BulkUnenroll,
  BulkUpgrade,
  DiagnosticsRequest,
  Reassign,
  type RestartRequested,
  Unenroll,
  UpgradeRequest,
} from "../../protocol/admin";
import { parseBody } from "../../protocol/parse";

/**
 * Operations on agents, one at a time (`/agents/{id}/…`, answered with the action or result) or in
 * bulk (`/agents/bulk_…` with `agents` or `policy_id`, answered with `{actionId}` to follow in
 * `action_status`). Every one runs as a BulkJob.
 */
export const agentOperations = new Hono<AppEnv>()
  .post("/api/fleet/agents/:agentId/actions", async (c) => {
    const { action } = parseBody(ActionCreate, await readAdminJson(c), "admin");
    return c.json({ item: await actionFor(c, action, { agents: [c.req.param("agentId")] }) });
  })
  .post("/api/fleet/actions", async (c) => {
    const body = parseBody(BulkAction, await readAdminJson(c), "admin");
    const item = await actionFor(c, body.action, targetsOf(body));
    return c.json({ actionId: item.id });
  })
  .post("/api/fleet/agents/:agentId/unenroll", async (c) => {
    const { revoke } = parseBody(Unenroll, await readOptionalJson(c), "admin");
    const agentId = c.req.param("agentId");
    if (revoke) {
      const id = await startJob(c, { kind: "revoke" }, { agents: [agentId] });
      return c.json({ item: { id, type: "REVOKE", agents: [agentId] } });
    }
    return c.json({ item: await actionFor(c, { type: "UNENROLL", data: null }, { agents: [agentId] }) });
  })
  .post("/api/fleet/agents/bulk_unenroll", async (c) => {
    const body = parseBody(BulkUnenroll, await readAdminJson(c), "admin");
    if (body.revoke) return c.json({ actionId: await startJob(c, { kind: "revoke" }, targetsOf(body)) });
    return c.json({ actionId: (await actionFor(c, { type: "UNENROLL", data: null }, targetsOf(body))).id });
  })
  .post("/api/fleet/agents/:agentId/restart", async (c) => {
    // OpAMP's `command: Restart` for a collector (docs/opamp.md); not a Fleet action.
    const agentId = c.req.param("agentId");
    const { requested_at } = orThrow(await agentObject(c.env, agentId).requestRestart());
    return c.json({ item: { id: agentId, type: "RESTART", requested_at } } satisfies RestartRequested);
  })
  .post("/api/fleet/agents/:agentId/reassign", async (c) => {
    const { policy_id } = parseBody(Reassign, await readAdminJson(c), "admin");
    await requirePolicy(c, policy_id);
    const agentId = c.req.param("agentId");
    const id = await startJob(c, { kind: "reassign", policyId: policy_id }, { agents: [agentId] });
    return c.json({ item: { id, type: "POLICY_REASSIGN", agents: [agentId], policy_id } });
  })
  .post("/api/fleet/agents/bulk_reassign", async (c) => {
    const body = parseBody(BulkReassign, await readAdminJson(c), "admin");
    await requirePolicy(c, body.policy_id);
    return c.json({ actionId: await startJob(c, { kind: "reassign", policyId: body.policy_id }, { agents: body.agents }) });
  })
  .post("/api/fleet/agents/bulk_update_agent_tags", async (c) => {
    const body = parseBody(BulkTags, await readAdminJson(c), "admin");
    return c.json({ actionId: await startJob(c, { kind: "tags", add: body.tagsToAdd, remove: body.tagsToRemove }, targetsOf(body)) });
  })
  .post("/api/fleet/agents/:agentId/upgrade", async (c) => {
    const body = parseBody(UpgradeRequest, await readAdminJson(c), "admin");
    return c.json({ item: await actionFor(c, upgradeSpec(body), { agents: [c.req.param("agentId")] }) });
  })
  .post("/api/fleet/agents/bulk_upgrade", async (c) => {
    const body = parseBody(BulkUpgrade, await readAdminJson(c), "admin");
    if (body.rollout_duration_seconds && !body.start_time) {
      throw new FleetError("AdminBadRequest", "rollout_duration_seconds: needs start_time, the beginning of the rollout window");
    }
    const item = await actionFor(c, upgradeSpec(body), targetsOf(body), body.rollout_duration_seconds);
    return c.json({ actionId: item.id });
  })
  .post("/api/fleet/agents/:agentId/request_diagnostics", async (c) => {
    const body = parseBody(DiagnosticsRequest, await readOptionalJson(c), "admin");
    return c.json({ item: await actionFor(c, diagnosticsSpec(body), { agents: [c.req.param("agentId")] }) });
  })
  .post("/api/fleet/agents/bulk_request_diagnostics", async (c) => {
    const body = parseBody(BulkDiagnostics, await readAdminJson(c), "admin");
    return c.json({ actionId: (await actionFor(c, diagnosticsSpec(body), targetsOf(body))).id });
  });

function targetsOf(body: { agents?: string[] | undefined; policy_id?: string | undefined }): JobTargets {
  return body.agents ? { agents: body.agents } : { policyId: body.policy_id! };
}

const upgradeSpec = (body: { version: string; source_uri?: string | undefined; start_time?: string | undefined; expiration?: string | undefined }): ActionSpec => ({
  type: "UPGRADE",
  data: { version: body.version, ...(body.source_uri ? { source_uri: body.source_uri } : {}) },
  ...(body.start_time ? { start_time: body.start_time } : {}),
  ...(body.expiration ? { expiration: body.expiration } : {}),
});

const diagnosticsSpec = (body: { additional_metrics?: Array<"CPU" | "CONN"> | undefined }): ActionSpec => ({
  type: "REQUEST_DIAGNOSTICS",
  data: body.additional_metrics ? { additional_metrics: body.additional_metrics } : null,
});

/** Validates the action's data for its type, then dispatches it as a job; answers Kibana's action item. */
async function actionFor(
  c: Context<AppEnv>,
  spec: { type: string; data?: ActionSpec["data"] | undefined; expiration?: string | undefined; start_time?: string | undefined; input_type?: string | undefined; timeout?: number | undefined },
  targets: JobTargets,
  rolloutDurationSeconds?: number,
) {
  if (DELIVERED_TYPES.has(spec.type)) {
    const shaped = shapeActionData(spec.type, spec.data);
    if (!shaped.ok) throw new FleetError("AdminBadRequest", `action.${shaped.message}`);
  }
  if (spec.type === "UPGRADE") requireUpgradeWithinServer((spec.data as { version: string }).version, fleetConfig(c.env).version);
  const id = crypto.randomUUID();
  const action = newAction(
    c,
    {
      type: spec.type,
      data: spec.data ?? null,
      ...(spec.expiration ? { expiration: spec.expiration } : {}),
      ...(spec.start_time ? { start_time: spec.start_time } : {}),
      ...(spec.input_type ? { input_type: spec.input_type } : {}),
      ...(spec.timeout !== undefined ? { timeout: spec.timeout } : {}),
    },
    id,
  );
  await startJob(c, { kind: "action", action, ...(rolloutDurationSeconds ? { rolloutDurationSeconds } : {}) }, targets, id);
  return {
    id,
    type: action.type,
    data: action.data,
    agents: "agents" in targets ? targets.agents : [],
    created_at: action.created_at,
    expiration: action.expiration,
    ...(action.start_time ? { start_time: action.start_time } : {}),
  };
}

async function requirePolicy(c: Context<AppEnv>, policyId: string): Promise<void> {
  if (!(await directory(c.env).getPolicy(policyId))) throw new FleetError("NotFound", `agent policy ${policyId} not found`);
}

/** Bodies that may be omitted entirely (`curl -X POST …/unenroll`). */
async function readOptionalJson(c: Context<AppEnv>): Promise<unknown> {
  const length = c.req.header("Content-Length");
  if (!c.req.raw.body || length === "0") return {};
  return readAdminJson(c);
}
