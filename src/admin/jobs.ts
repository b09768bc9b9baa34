import type { Context } from "hono";
import type { NewAction } from "../agents/actions";
import type { JobOperation, JobTargets } from "./bulk-job-contract";
import { fleetConfig, type AppEnv } from "../config";
import { bulkJob, directory } from "../durable-stubs";
import { FleetError } from "../errors";

/**
 * Starts a bulk job (one agent or thousands) and registers it for the action-status listing. For a
 * single agent the job runs before this returns, so its failure (unknown agent, unenrolled…)
 * becomes this request's error.
 */
export async function startJob(c: Context<AppEnv>, operation: JobOperation, targets: JobTargets, id = crypto.randomUUID()): Promise<string> {
  const created_at = new Date().toISOString();
  const type = operation.kind === "action" ? operation.action.type : operation.kind.toUpperCase();
  await directory(c.env).registerJob({ id, type, created_at, created_by: c.get("admin") });
  const { failures } = await bulkJob(c.env, id).start({ id, operation, targets, created_at });
  if ("agents" in targets && targets.agents.length === 1 && failures[0]) throw new FleetError(failures[0].error, failures[0].detail);
  return id;
}

export interface ActionSpec {
  type: NewAction["type"];
  data: NewAction["data"];
  expiration?: string;
  start_time?: string;
  input_type?: string;
  timeout?: number;
}

/** A stored action with its id, creation time and default expiration filled in. */
export function newAction(c: Context<AppEnv>, spec: ActionSpec, id: string): NewAction {
  const now = new Date();
  const expiration = spec.expiration ?? new Date(now.getTime() + fleetConfig(c.env).actionDefaultExpirationMs).toISOString();
  if (Date.parse(expiration) <= now.getTime()) throw new FleetError("AdminBadRequest", "action.expiration: must be in the future");
  return {
    action_id: id,
    type: spec.type,
    data: spec.data,
    created_at: now.toISOString(),
    expiration,
    ...(spec.start_time ? { start_time: spec.start_time } : {}),
    ...(spec.input_type ? { input_type: spec.input_type } : {}),
    ...(spec.timeout !== undefined ? { timeout: spec.timeout } : {}),
  };
}
