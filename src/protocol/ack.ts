import { z } from "zod";
import { JsonObject, withinBytes } from "./parse";

/**
 * Events in one ack request or socket message (docs/hardening.md). fleet-server bounds an ack only
 * by its 2 MiB body, which holds ~650,000 empty events; an agent acks what one check-in delivered.
 */
export const MAX_ACK_EVENTS = 1_000;
/** One event is stored as one action-result row and document: well inside SQLite's 2 MB row. */
export const MAX_ACK_EVENT_BYTES = 1 << 20;

/**
 * One ack event. Both layouts real agents send (the legacy `AckEvent` and the July 2026 union types)
 * carry the same field names, so one schema reads both; key order and timestamp format do not matter.
 */
export const AckEvent = z.looseObject({
  type: z.string().optional(),
  subtype: z.string().optional(),
  agent_id: z.string().optional(),
  action_id: z.string().optional(),
  message: z.string().optional(),
  timestamp: z.string().optional(),
  error: z.string().optional(),
  payload: z.looseObject({ retry: z.boolean().optional(), retry_attempt: z.number().optional() }).nullish(),
  data: JsonObject.nullish(),
  action_input_type: z.string().optional(),
  action_data: z.json().optional(),
  action_response: z.json().optional(),
  started_at: z.string().optional(),
  completed_at: z.string().optional(),
});
export type AckEvent = z.infer<typeof AckEvent>;

export const AckRequest = z.object({
  events: z
    .array(withinBytes(AckEvent, MAX_ACK_EVENT_BYTES))
    .max(MAX_ACK_EVENTS, { message: `more than ${MAX_ACK_EVENTS} events in one request` })
    .nullish(),
});

export interface AckItem {
  status: number;
  message: string;
}

export interface AckResponse {
  action: "acks";
  errors?: true;
  items?: AckItem[];
}

/** Go's `http.StatusText` for the statuses an ack item can carry. */
export function statusText(status: number): string {
  return STATUS_TEXT[status] ?? "Internal Server Error";
}

const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  409: "Conflict",
  500: "Internal Server Error",
};

/** `policy:<policy_id>:<revision>` (or the pre-8.16 `...:<coordinator>` form) as acked by agents. */
export function parsePolicyActionId(actionId: string): { policyId: string; revision: number } | null {
  const parts = actionId.split(":");
  if (parts[0] !== "policy" || (parts.length !== 3 && parts.length !== 4)) return null;
  const revision = Number(parts[2]);
  if (!parts[1] || !Number.isSafeInteger(revision) || revision < 0) return null;
  return { policyId: parts[1], revision };
}
