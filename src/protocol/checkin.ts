import { z } from "zod";
import { POLL_TIMEOUT_PATTERN } from "./duration";
import type { DeliveredAction } from "./action";
import { JsonObject, withinBytes } from "./parse";

const KiB = 1024;

/**
 * What one agent's record keeps of a check-in, per field, in bytes of JSON (docs/hardening.md).
 * The record lives in one SQLite row (2 MB at most, platform.md §3.4) and one Elasticsearch
 * document: these limits plus the enrollment's (`ENROLL_FIELD_LIMITS`, tags) add up to ~1.7 MB.
 * `components` gets the most room: a large install reports ~100 components with their units.
 */
export const CHECKIN_FIELD_LIMITS = {
  status: 1 * KiB,
  message: 64 * KiB,
  local_metadata: 256 * KiB,
  components: 1024 * KiB,
  upgrade_details: 64 * KiB,
  upgrade: 64 * KiB,
  agent_policy_id: 1 * KiB,
} as const;

const Unit = z.looseObject({
  id: z.string(),
  type: z.string().optional(),
  status: z.string().optional(),
  message: z.string().optional(),
});

export const Component = z.looseObject({
  id: z.string(),
  type: z.string().optional(),
  status: z.string().optional(),
  message: z.string().optional(),
  units: z.array(Unit).nullish(),
});
export type Component = z.infer<typeof Component>;

export const UpgradeDetails = z
  .looseObject({
    action_id: z.string().optional(),
    target_version: z.string(),
    state: z.enum([
      "UPG_REQUESTED",
      "UPG_SCHEDULED",
      "UPG_DOWNLOADING",
      "UPG_EXTRACTING",
      "UPG_REPLACING",
      "UPG_RESTARTING",
      "UPG_WATCHING",
      "UPG_ROLLBACK",
      "UPG_COMPLETED",
      "UPG_FAILED",
    ]),
    metadata: JsonObject.nullish(),
  })
  .superRefine((details, ctx) => {
    // fleet-server's validation of the states that carry required metadata.
    if (details.state === "UPG_FAILED" && typeof details.metadata?.error_msg !== "string")
      ctx.addIssue({ code: "custom", path: ["metadata", "error_msg"], message: "required for UPG_FAILED" });
    if (details.state === "UPG_SCHEDULED" && typeof details.metadata?.scheduled_at !== "string")
      ctx.addIssue({ code: "custom", path: ["metadata", "scheduled_at"], message: "required for UPG_SCHEDULED" });
  });
export type UpgradeDetails = z.infer<typeof UpgradeDetails>;

/** `POST /api/fleet/agents/{id}/checkin` body (elastic-agent-client.md §4.1). Unknown keys are ignored. */
export const CheckinRequest = z.object({
  status: withinBytes(z.string({ message: "checkin status missing" }).min(1, { message: "checkin status missing" }), CHECKIN_FIELD_LIMITS.status),
  message: withinBytes(z.string(), CHECKIN_FIELD_LIMITS.message).optional(),
  ack_token: z.string().max(1024).optional(),
  local_metadata: withinBytes(JsonObject, CHECKIN_FIELD_LIMITS.local_metadata).nullish(),
  components: withinBytes(z.array(Component), CHECKIN_FIELD_LIMITS.components).nullish(),
  upgrade_details: withinBytes(UpgradeDetails, CHECKIN_FIELD_LIMITS.upgrade_details).nullish(),
  agent_policy_id: withinBytes(z.string(), CHECKIN_FIELD_LIMITS.agent_policy_id).optional(),
  policy_revision_idx: z.number().int().nonnegative().optional(),
  upgrade: withinBytes(z.looseObject({ rollbacks: z.array(JsonObject).nullish() }), CHECKIN_FIELD_LIMITS.upgrade).nullish(),
  poll_timeout: z.string().meta({ pattern: POLL_TIMEOUT_PATTERN }).optional(),
});
export type CheckinRequest = z.infer<typeof CheckinRequest>;

/** Fields are in the order fleet-server serialises them. `actions` is omitted on a plain timeout. */
export interface CheckinResponse {
  ack_token: string;
  action: "checkin";
  actions?: DeliveredAction[];
}
