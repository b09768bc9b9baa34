import { z } from "zod";
import type { DeliveredAction } from "./action";
import { JsonObject } from "./parse";

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
  status: z.string({ message: "checkin status missing" }).min(1, { message: "checkin status missing" }),
  message: z.string().optional(),
  ack_token: z.string().max(1024).optional(),
  local_metadata: JsonObject.nullish(),
  components: z.array(Component).nullish(),
  upgrade_details: UpgradeDetails.nullish(),
  agent_policy_id: z.string().optional(),
  policy_revision_idx: z.number().int().nonnegative().optional(),
  upgrade: z.looseObject({ rollbacks: z.array(JsonObject).nullish() }).nullish(),
  poll_timeout: z.string().optional(),
});
export type CheckinRequest = z.infer<typeof CheckinRequest>;

/** Fields are in the order fleet-server serialises them. `actions` is omitted on a plain timeout. */
export interface CheckinResponse {
  ack_token: string;
  action: "checkin";
  actions?: DeliveredAction[];
}
