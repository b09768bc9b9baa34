import { z } from "zod";
import { JsonObject } from "./parse";

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

export const AckRequest = z.object({ events: z.array(AckEvent).nullish() });

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
