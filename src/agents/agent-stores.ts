import { stableHash } from "../stable-hash";

/**
 * Where an agent lives and what its store answers: shared by the Worker's handles
 * (`agentObject` in src/durable-stubs.ts) and the store itself (durable/agent-store.ts).
 */

/**
 * Agents are spread over this many store objects by a stable hash of their id. Part of the storage
 * layout: changing it would look every agent up in a different object, so it is a constant, not a
 * setting. 64 stores hold 1M agents at ~16k each: ~50 check-ins/s per store at the 5-minute long
 * poll and a few hundred MB of SQLite, far inside one object's limits (platform.md), while a local
 * run of 10,000 agents needs 64 SQLite databases instead of 10,000.
 */
export const AGENT_STORES = 64;

/** The store object that holds an agent. */
export const agentStoreName = (agentId: string): string => `agents-${stableHash(`store:${agentId}`) % AGENT_STORES}`;

/**
 * The agent operations callers may invoke through the store's `call` (methods of `Agent` in
 * durable/agent.ts; `AgentHandle` in src/durable-stubs.ts fails to compile for a name that is not one).
 */
export const AGENT_METHODS = [
  "enroll",
  "authenticate",
  "holdsKey",
  "checkin",
  "checkinOverSocket",
  "checkinWithEnrollment",
  "enrollCollector",
  "requestRestart",
  "takeRestart",
  "attachSocket",
  "detachSocket",
  "pendingActions",
  "ack",
  "ackOverSocket",
  "auditUnenroll",
  "addAction",
  "dropIfNeverCheckedIn",
  "outputKeys",
  "forceUnenroll",
  "reassign",
  "updateTags",
  "detail",
  "record",
] as const;

export type AgentMethod = (typeof AGENT_METHODS)[number];
