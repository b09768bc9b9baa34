import type { Component, UpgradeDetails } from "./checkin";
import type { JsonObject } from "./parse";

/**
 * An agent's record, named field for field like fleet-server's `.fleet-agents` document
 * (schema.json) so it can be mirrored as is. The access key's hash is kept outside this document.
 */
export interface AgentDoc {
  id: string;
  active: boolean;
  type: string;
  policy_id: string;
  namespaces: string[];
  enrolled_at: string;
  updated_at: string;
  local_metadata: JsonObject | null;
  tags: string[];
  access_api_key_id: string;
  /** Cursor: sequence number of the last stored action the agent confirmed receiving, or -1. */
  action_seq_no: number[];
  agent: { id: string; version: string };
  enrollment_id?: string;
  /** `$pbkdf2-sha512$...` hash; never the token. */
  replace_token?: string;
  policy_revision_idx: number;
  agent_policy_id?: string;
  last_checkin?: string;
  last_checkin_status?: string;
  last_checkin_message?: string;
  unhealthy_reason?: string[] | null;
  components?: Component[] | null;
  upgrade_details?: UpgradeDetails | null;
  upgrade_started_at?: string | null;
  upgraded_at?: string | null;
  upgrade_attempts?: string[] | null;
  upgrade?: { rollbacks?: JsonObject[] | null };
  /** Per-output API key ids and permission hashes; the keys themselves stay in the agent's store. */
  outputs?: Record<string, { api_key_id: string; permissions_hash: string; type: string }>;
  unenrolled_at?: string;
  unenrolled_reason?: string;
  audit_unenrolled_time?: string;
  audit_unenrolled_reason?: string;
  /** OpenTelemetry collectors (type OPAMP) only: what they reported over OpAMP (docs/opamp.md). */
  opamp?: OpampState;
}

/** A collector's OpAMP state: the latest of each sub-message it sent (they are sent only when changed). */
export interface OpampState {
  /** `AgentCapabilities` bits of its latest message. */
  capabilities: number;
  /** It has authenticated with its own credential: the enrollment token no longer speaks for it. */
  credential_used: boolean;
  health?: { healthy: boolean; status: string; last_error: string };
  remote_config_status?: { hash: string; status: "UNSET" | "APPLIED" | "APPLYING" | "FAILED"; error_message?: string };
  /** File name → content, secret-looking values redacted. */
  effective_config?: Record<string, { content_type: string; body: string }>;
  /** An admin asked for a restart not yet sent (docs/opamp.md, "Restart"). */
  restart_requested_at?: string;
}

/** `unhealthy_reason` as fleet-server derives it from component units and the reported status. */
export function unhealthyReason(components: Component[] | null | undefined, status: string): string[] | null {
  const reasons = new Set<string>();
  for (const component of components ?? []) {
    for (const unit of component.units ?? []) {
      if (unit.status !== "FAILED" && unit.status !== "DEGRADED") continue;
      reasons.add(unit.type === "input" ? "input" : unit.type === "output" ? "output" : "other");
    }
  }
  if (reasons.size === 0 && /^(error|degraded|failed)$/i.test(status)) reasons.add("other");
  return reasons.size > 0 ? [...reasons].sort() : null;
}
