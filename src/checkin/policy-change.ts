import type { DeliveredAction } from "../protocol/action";
import type { CheckinResponse } from "../protocol/checkin";
import { toAgentPolicy, type PolicyRevision } from "../protocol/policy";
import { withOutputKeys } from "../policy/output-keys";

/** `policy:<policy_id>:<revision>`, the id an agent acks a POLICY_CHANGE by (parsePolicyActionId reads it). */
const policyChangeId = (revision: PolicyRevision): string => `policy:${revision.policy_id}:${revision.revision}`;

/**
 * The POLICY_CHANGE an agent receives for a revision (fleet-protocol.md §4.3): synthesised per agent,
 * never stored, `id` = `policy:<policy_id>:<revision>`, `created_at` = when the revision was made,
 * each Elasticsearch output carrying this agent's own API key.
 */
export function policyChangeAction(agentId: string, revision: PolicyRevision, outputKeys: Record<string, string> = {}): DeliveredAction {
  return {
    agent_id: agentId,
    created_at: revision.created_at,
    data: { policy: withOutputKeys(toAgentPolicy(revision), outputKeys) },
    id: policyChangeId(revision),
    input_type: "",
    type: "POLICY_CHANGE",
  };
}

/** Each revision's agent policy without output keys, serialised once (revisions are immutable). */
const keylessPolicies = new WeakMap<PolicyRevision, string>();

/**
 * The check-in answer carrying only a POLICY_CHANGE, as `JSON.stringify` would write it. Without
 * output keys (no Elasticsearch mirror, so no per-agent keys) every agent's policy serialises the
 * same, so it is written once per revision and spliced in: serialising ~3 KB per answer was ~6% of
 * a check-in's CPU.
 */
export function policyChangeAnswer(agentId: string, revision: PolicyRevision, outputKeys: Record<string, string> = {}): string {
  if (Object.keys(outputKeys).length > 0) {
    const body: CheckinResponse = { ack_token: "", action: "checkin", actions: [policyChangeAction(agentId, revision, outputKeys)] };
    return JSON.stringify(body);
  }
  let policy = keylessPolicies.get(revision);
  if (policy === undefined) keylessPolicies.set(revision, (policy = JSON.stringify(withOutputKeys(toAgentPolicy(revision), {}))));
  // Keys in policyChangeAction's order, which is the order JSON.stringify follows.
  return (
    `{"ack_token":"","action":"checkin","actions":[{"agent_id":${JSON.stringify(agentId)},"created_at":${JSON.stringify(revision.created_at)},` +
    `"data":{"policy":${policy}},"id":${JSON.stringify(policyChangeId(revision))},"input_type":"","type":"POLICY_CHANGE"}]}`
  );
}
