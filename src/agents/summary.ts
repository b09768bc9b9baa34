import type { AgentDoc } from "../protocol/agent-doc";
import type { AgentSummary } from "./status";

/**
 * An agent's row in its policy's roster, from its record: what listings, status counts and rollout
 * progress read. `unenrolling`: an UNENROLL action waits for the agent's ack.
 */
export function agentSummary(doc: AgentDoc, unenrolling: boolean): AgentSummary {
  const host = (doc.local_metadata?.host ?? null) as { hostname?: unknown } | null;
  const state = doc.upgrade_details?.state;
  return {
    agent_id: doc.id,
    active: doc.active,
    enrolled_at: doc.enrolled_at,
    last_checkin: doc.last_checkin ?? null,
    last_checkin_status: doc.last_checkin_status ?? null,
    last_checkin_message: doc.last_checkin_message ?? null,
    hostname: typeof host?.hostname === "string" ? host.hostname : null,
    version: doc.agent.version || null,
    tags: doc.tags,
    policy_revision_idx: doc.policy_revision_idx,
    upgrading: !!doc.upgrade_started_at || (!!state && state !== "UPG_COMPLETED" && state !== "UPG_FAILED"),
    unenrolling: doc.active && unenrolling,
    unhealthy_reason: doc.unhealthy_reason ?? null,
    type: doc.type,
  };
}
