import { z } from "zod";
import type { JsonValue } from "./parse";

/** Every action type an admin may store. Only DELIVERED_TYPES ever reach an agent (fleet-protocol.md §5). */
export const ACTION_TYPES = [
  "UNENROLL",
  "UPGRADE",
  "SETTINGS",
  "POLICY_REASSIGN",
  "REQUEST_DIAGNOSTICS",
  "INPUT_ACTION",
  "CANCEL",
  "MIGRATE",
  "PRIVILEGE_LEVEL_CHANGE",
  "FORCE_UNENROLL",
  "UPDATE_TAGS",
] as const;
export type ActionType = (typeof ACTION_TYPES)[number];

/** Stored for Kibana's bookkeeping, never sent to an agent (fleet-server drops them). */
const UNDELIVERED: ReadonlySet<ActionType> = new Set(["FORCE_UNENROLL", "UPDATE_TAGS"]);

export const DELIVERED_TYPES: ReadonlySet<string> = new Set(ACTION_TYPES.filter((type) => !UNDELIVERED.has(type)));

/**
 * An action as a check-in response carries it. Keys are declared in the alphabetical order of
 * fleet-server's generated `Action` struct; `data` and `input_type` are always present because
 * agents up to 8.14 fail the whole check-in on a missing `data`.
 */
export interface DeliveredAction {
  agent_id: string;
  created_at: string;
  data: JsonValue;
  expiration?: string;
  id: string;
  input_type: string;
  signed?: { data: string; signature: string };
  start_time?: string;
  timeout?: number;
  traceparent?: string;
  type: string;
}

/** Typed `data` per action type: unknown keys are dropped before delivery, as fleet-server re-parses them. */
const DATA_SHAPES: Record<string, z.ZodType | null> = {
  UNENROLL: null,
  UPGRADE: z.object({ version: z.string(), source_uri: z.string().optional(), rollback: z.boolean().optional() }),
  SETTINGS: z.object({ log_level: z.enum(["trace", "debug", "info", "warning", "error", ""]).optional() }),
  POLICY_REASSIGN: z.object({ policy_id: z.string() }),
  CANCEL: z.object({ target_id: z.string() }),
  REQUEST_DIAGNOSTICS: z.object({
    additional_metrics: z.array(z.enum(["CPU", "CONN"])).optional(),
    exclude_events_log: z.boolean().optional(),
  }),
  MIGRATE: z.object({ target_uri: z.string(), enrollment_token: z.string(), settings: z.json().optional() }),
  PRIVILEGE_LEVEL_CHANGE: z.object({
    unprivileged: z.boolean(),
    user_info: z.object({ username: z.string().optional(), password: z.string().optional(), groupname: z.string().optional() }).optional(),
  }),
  INPUT_ACTION: z.record(z.string(), z.json()),
};

export type ShapedData = { ok: true; data: JsonValue } | { ok: false; message: string };

/**
 * The `data` an agent receives for an action type. REQUEST_DIAGNOSTICS without data and UNENROLL
 * carry `null`. A `data` that does not fit its type is refused (fleet-server drops such an action).
 */
export function shapeActionData(type: string, data: unknown): ShapedData {
  const shape = DATA_SHAPES[type];
  if (shape === undefined) return { ok: false, message: `action type ${type} is not delivered to agents` };
  if (shape === null) return { ok: true, data: null };
  if (data === undefined || data === null) {
    return type === "REQUEST_DIAGNOSTICS" ? { ok: true, data: null } : { ok: false, message: `${type} requires data` };
  }
  const parsed = shape.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { ok: false, message: `data.${issue.path.join(".")}: ${issue.message}` };
  }
  return { ok: true, data: parsed.data as JsonValue };
}
