import type { CheckinInput } from "../session/contract";
import type { CheckinRequest } from "../protocol/checkin";

/** What the agent's store records from a check-in body, over HTTP or a socket alike. */
export function checkinInput(body: Omit<CheckinRequest, "poll_timeout">, version: string): CheckinInput {
  return {
    status: body.status,
    message: body.message ?? "",
    version,
    ...(body.ack_token ? { ackToken: body.ack_token } : {}),
    ...(body.local_metadata !== undefined ? { localMetadata: body.local_metadata } : {}),
    ...(body.components !== undefined ? { components: body.components } : {}),
    ...(body.upgrade_details !== undefined ? { upgradeDetails: body.upgrade_details } : {}),
    // Both fields or neither, as fleet-server reads them (9.2+ agents send both).
    ...(body.agent_policy_id && body.policy_revision_idx !== undefined
      ? { reported: { policyId: body.agent_policy_id, revision: body.policy_revision_idx } }
      : {}),
    ...(body.upgrade ? { rollbacks: body.upgrade.rollbacks ?? [] } : {}),
  };
}
