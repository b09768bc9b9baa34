/**
 * An agent's one-line status as Kibana's Fleet UI shows it, computed from a roster row. The same
 * rule exists twice, here for single agents and as SQL in `durable/agent-roster.ts` for filtering
 * and counting; `test/agent-status.test.ts` holds both equal over every combination of the fields it reads.
 */
export const AGENT_STATUSES = ["online", "offline", "degraded", "error", "updating", "enrolling", "unenrolling", "unenrolled"] as const;
export type AgentStatus = (typeof AGENT_STATUSES)[number];

/** What the policy hub's roster keeps per agent: enough to list, filter and count without the agent's store. */
export interface AgentSummary {
  agent_id: string;
  active: boolean;
  enrolled_at: string;
  last_checkin: string | null;
  last_checkin_status: string | null;
  last_checkin_message: string | null;
  hostname: string | null;
  version: string | null;
  tags: string[];
  policy_revision_idx: number;
  /** An upgrade was requested or is reported in flight. */
  upgrading: boolean;
  /** An UNENROLL action is waiting for the agent's ack. */
  unenrolling: boolean;
  unhealthy_reason: string[] | null;
  /** The record's type: `PERMANENT` or `TEMPORARY` (Elastic Agents), `OPAMP` (OpenTelemetry collectors). */
  type: string;
}

export interface StatusContext {
  now: number;
  /** No check-in for this long means offline. */
  offlineAfterMs: number;
  /** The policy's latest revision; an agent behind it is updating. */
  latestRevision: number;
}

export function agentStatus(agent: AgentSummary, context: StatusContext): AgentStatus {
  if (!agent.active) return "unenrolled";
  if (agent.unenrolling) return "unenrolling";
  if (!agent.last_checkin) return "enrolling";
  // `disconnected`: an OpAMP collector said goodbye (agent_disconnect), offline without waiting.
  if (Date.parse(agent.last_checkin) < context.now - context.offlineAfterMs || (agent.last_checkin_status ?? "").toLowerCase() === "disconnected") return "offline";
  if (agent.upgrading || agent.policy_revision_idx < context.latestRevision) return "updating";
  const reported = (agent.last_checkin_status ?? "").toLowerCase();
  if (reported === "error" || reported === "failed") return "error";
  if (reported === "degraded") return "degraded";
  return "online";
}
