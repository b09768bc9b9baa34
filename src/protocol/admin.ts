import { z } from "zod";
import { ACTION_TYPES } from "./action";

const isoDate = z.iso.datetime({ offset: true, message: "an RFC 3339 timestamp, e.g. 2026-12-01T00:00:00Z" });

/** `POST /api/fleet/enrollment_api_keys` body (Kibana's names). */
export const EnrollmentKeyCreate = z.object({
  policy_id: z.string().min(1),
  name: z.string().min(1).max(256).optional(),
  expiration: isoDate.optional(),
});

/** `POST /api/fleet/agents/{agentId}/actions` body: `{"action":{...}}` as Kibana's agent actions API. */
export const ActionCreate = z.object({
  action: z.object({
    type: z.enum(ACTION_TYPES),
    data: z.json().optional(),
    expiration: isoDate.optional(),
    start_time: isoDate.optional(),
    input_type: z.string().max(256).optional(),
    timeout: z.number().int().positive().max(3600).optional(),
  }),
});
export type ActionCreate = z.infer<typeof ActionCreate>;
