import { Hono, type Context } from "hono";
import type { NewAction } from "../../../durable/agent";
import { fleetConfig, type AppEnv } from "../../config";
import { agentObject, policyHub } from "../../durable-stubs";
import { FleetError, orThrow } from "../../errors";
import { readAdminJson } from "../../http/body";
import { DELIVERED_TYPES, shapeActionData } from "../../protocol/action";
import { ActionCreate } from "../../protocol/admin";
import { parseBody } from "../../protocol/parse";

/** Actions for one agent, delivered on its parked or next check-in. */
export const agentActions = new Hono<AppEnv>()
  .post("/api/fleet/agents/:agentId/actions", async (c) => {
    const { action } = parseBody(ActionCreate, await readAdminJson(c), "admin");
    if (DELIVERED_TYPES.has(action.type)) {
      const shaped = shapeActionData(action.type, action.data);
      if (!shaped.ok) throw new FleetError("AdminBadRequest", `action.${shaped.message}`);
    }
    const item = await queueAction(c, {
      type: action.type,
      data: action.data ?? null,
      ...(action.expiration ? { expiration: action.expiration } : {}),
      ...(action.start_time ? { start_time: action.start_time } : {}),
      ...(action.input_type ? { input_type: action.input_type } : {}),
      ...(action.timeout !== undefined ? { timeout: action.timeout } : {}),
    });
    return c.json({ item });
  })
  .post("/api/fleet/agents/:agentId/unenroll", async (c) => {
    const item = await queueAction(c, { type: "UNENROLL", data: null });
    return c.json({ item });
  });

type ActionSpec = Omit<NewAction, "action_id" | "created_at" | "expiration"> & { expiration?: string };

/** Stores the action in the agent's object, then wakes the agent's parked check-in through its hub. */
async function queueAction(c: Context<AppEnv>, spec: ActionSpec) {
  const agentId = c.req.param("agentId")!;
  const now = new Date();
  const expiration = spec.expiration ?? new Date(now.getTime() + fleetConfig(c.env).actionDefaultExpirationMs).toISOString();
  if (Date.parse(expiration) <= now.getTime()) throw new FleetError("AdminBadRequest", "action.expiration: must be in the future");
  const action: NewAction = { ...spec, action_id: crypto.randomUUID(), created_at: now.toISOString(), expiration };
  const stored = orThrow(await agentObject(c.env, agentId).addAction(action));
  await policyHub(c.env, stored.policyId).notifyActions(agentId, stored.seq);
  return {
    id: action.action_id,
    type: action.type,
    data: action.data,
    agents: [agentId],
    created_at: action.created_at,
    expiration: action.expiration,
    ...(action.start_time ? { start_time: action.start_time } : {}),
  };
}
