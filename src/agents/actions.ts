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
export interface PendingAction {
  id: string;
  type: string;
  created_at: string;
  expiration: string;
  start_time?: string;
}
