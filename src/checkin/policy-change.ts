import type { DeliveredAction } from "../protocol/action";
import { toAgentPolicy, type PolicyRevision } from "../protocol/policy";
import { withOutputKeys } from "../policy/output-keys";

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
    id: `policy:${revision.policy_id}:${revision.revision}`,
    input_type: "",
    type: "POLICY_CHANGE",
  };
}
