import type { JsonValue } from "../protocol/parse";

/** An action to store for agents, in `.fleet-actions` field names (what admins, bulk jobs and ingest hand an agent's store). */
export interface NewAction {
  action_id: string;
  /** The Elasticsearch `_id` of an action ingested from `.fleet-actions` (its ack_token); ours use action_id. */
  doc_id?: string;
  type: string;
  data: JsonValue;
  created_at: string;
  expiration: string;
  start_time?: string;
  input_type?: string;
  timeout?: number;
}

/** A pending action as admins see it on one agent. */
/** One of an agent's latest action results, as its page shows them. */
export interface ActionResultSummary {
  action_id: string;
  type: string;
  created_at: string;
  /** What the agent reported as the action's error; null for a success. */
  error: string | null;
}

/** One change of the status an agent reports, kept by its store (the latest STATUS_HISTORY_LIMIT). */
export interface StatusChange {
  at: string;
  status: string;
  message: string | null;
}

/** How many status changes an agent's store keeps. */
export const STATUS_HISTORY_LIMIT = 20;

export interface PendingAction {
  id: string;
  type: string;
  created_at: string;
  expiration: string;
  start_time?: string;
}
