import { actionDocument, actionResultId } from "../src/es/documents";
import { INDEX } from "../src/es/indices";
import type { AckEvent } from "../src/protocol/ack";
import { DELIVERED_TYPES, shapeActionData, type DeliveredAction } from "../src/protocol/action";
import type { JsonObject, JsonValue } from "../src/protocol/parse";
import type { ActionResultSummary, NewAction, PendingAction } from "../src/agents/actions";
import type { EsOutbox } from "./es-outbox";

/** fleet-server delivers at most this many stored actions per check-in. */
const MAX_ACTIONS_PER_CHECKIN = 100;

interface StoredActionRow extends Record<string, SqlStorageValue> {
  seq: number;
  doc_id: string;
  body: string;
}

/**
 * One agent's stored actions and their results (tables `actions` and `action_results` of its agent
 * store, keyed by agent id). Sequence numbers order the actions; an agent's cursor is the highest
 * one it has been sent. The caller runs each change inside its own transaction, with the record
 * change it belongs to. Only this object writes these rows, so the answers a check-in asks for
 * every time (the highest sequence number, whether an UNENROLL is pending) are kept in memory.
 */
export class AgentActions {
  readonly #sql: SqlStorage;
  readonly #agentId: string;
  readonly #outbox: EsOutbox;
  /** `null`: not known, read the table. */
  #maxSeqKnown: number | null = null;
  #unenrollingKnown: boolean | null = null;

  /**
   * `unrecorded`: the agent has no record, so it has no actions either (they are stored only for an
   * agent with one, and dropping a record forgets them): a new agent's enrollment reads none.
   */
  constructor(sql: SqlStorage, agentId: string, outbox: EsOutbox, unrecorded: boolean) {
    this.#sql = sql;
    this.#agentId = agentId;
    this.#outbox = outbox;
    if (unrecorded) {
      this.#maxSeqKnown = 0;
      this.#unenrollingKnown = false;
    }
  }

  /** Stores an action, once per action id (the ingest watcher may bring back one this server wrote). */
  add(action: NewAction): { seq: number; added: boolean } {
    const existing = this.#sql
      .exec<{ seq: number }>("SELECT seq FROM actions WHERE agent_id = ? AND action_id = ?", this.#agentId, action.action_id)
      .toArray()[0];
    if (existing) return { seq: existing.seq, added: false };
    const row = this.#sql
      .exec<{ seq: number }>(
        "INSERT INTO actions (agent_id, action_id, doc_id, type, expiration, body) VALUES (?, ?, ?, ?, ?, ?) RETURNING seq",
        this.#agentId,
        action.action_id,
        action.doc_id ?? action.action_id,
        action.type,
        action.expiration,
        JSON.stringify(action),
      )
      .one();
    this.#maxSeqKnown = null;
    this.#unenrollingKnown = null;
    // An ingested action is already in Elasticsearch.
    if (!action.doc_id) {
      this.#outbox.add({ index: INDEX.actions, id: `${action.action_id}:${this.#agentId}`, op: "create", body: actionDocument(action, [this.#agentId]) });
    }
    return { seq: row.seq, added: true };
  }

  /** The cursor named by the agent's ack_token, else the stored one (fleet-protocol.md §2.3). */
  cursor(ackToken: string | undefined, stored: number): number {
    if (ackToken) {
      const row = this.#sql.exec<{ seq: number }>("SELECT seq FROM actions WHERE agent_id = ? AND doc_id = ?", this.#agentId, ackToken).toArray()[0];
      if (row) return Math.max(row.seq, stored);
    }
    return stored;
  }

  /** Unexpired, unanswered actions after the cursor, shaped for delivery, and the ack_token that follows them. */
  pending(cursor: number): { actions: DeliveredAction[]; ackToken?: string } {
    // Sequence numbers start at 1: nothing was stored after the cursor.
    if (this.maxSeq() <= Math.max(cursor, 0)) return { actions: [] };
    const rows = this.#sql
      .exec<StoredActionRow>(
        `SELECT seq, doc_id, body FROM actions
         WHERE agent_id = ?1 AND seq > ?2 AND expiration > ?3
           AND action_id NOT IN (SELECT action_id FROM action_results WHERE agent_id = ?1)
         ORDER BY seq LIMIT ?4`,
        this.#agentId,
        cursor,
        new Date().toISOString(),
        MAX_ACTIONS_PER_CHECKIN,
      )
      .toArray();
    const actions: DeliveredAction[] = [];
    let ackToken: string | undefined;
    for (const row of rows) {
      const action = JSON.parse(row.body) as NewAction;
      if (!DELIVERED_TYPES.has(action.type)) continue;
      const shaped = shapeActionData(action.type, action.data);
      if (!shaped.ok) continue;
      actions.push(toDelivered(this.#agentId, action, shaped.data));
      ackToken = row.doc_id;
    }
    return ackToken === undefined ? { actions } : { actions, ackToken };
  }

  /** What an admin sees as still to be done by the agent. */
  awaiting(): PendingAction[] {
    return this.#sql
      .exec<{ body: string }>(
        `SELECT body FROM actions WHERE agent_id = ?1 AND expiration > ?2
           AND action_id NOT IN (SELECT action_id FROM action_results WHERE agent_id = ?1) ORDER BY seq`,
        this.#agentId,
        new Date().toISOString(),
      )
      .toArray()
      .map((row) => JSON.parse(row.body) as NewAction)
      .filter((action) => DELIVERED_TYPES.has(action.type))
      .map((action) => ({
        id: action.action_id,
        type: action.type,
        created_at: action.created_at,
        expiration: action.expiration,
        ...(action.start_time ? { start_time: action.start_time } : {}),
      }));
  }

  /** The latest `limit` results, newest first, with their action's type and the error reported. */
  latestResults(limit: number): ActionResultSummary[] {
    return this.#sql
      .exec<{ action_id: string; type: string | null; created_at: string; body: string }>(
        `SELECT r.action_id, a.type, r.created_at, r.body FROM action_results r
           LEFT JOIN actions a ON a.agent_id = r.agent_id AND a.action_id = r.action_id
         WHERE r.agent_id = ? ORDER BY r.created_at DESC LIMIT ?`,
        this.#agentId,
        limit,
      )
      .toArray()
      .map((row) => {
        const error = (JSON.parse(row.body) as { error?: unknown }).error;
        return { action_id: row.action_id, type: row.type ?? "unknown", created_at: row.created_at, error: typeof error === "string" && error ? error : null };
      });
  }

  resultCount(): number {
    return this.#sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM action_results WHERE agent_id = ?", this.#agentId).one().n;
  }

  /**
   * Records the result an ack event carries; the first result wins, since agents re-send acks on
   * retry and restart. Returns the acked action's type and whether this was its first result, or
   * null when no such action is stored.
   */
  recordResult(event: AckEvent, now: string, namespaces: string[]): { type: string; first: boolean } | null {
    const actionId = event.action_id ?? "";
    const stored = this.#sql
      .exec<{ type: string }>("SELECT type FROM actions WHERE agent_id = ? AND action_id = ?", this.#agentId, actionId)
      .toArray()[0];
    if (!stored) return null;
    const result = actionResult(this.#agentId, event);
    const first =
      this.#sql.exec(
        "INSERT OR IGNORE INTO action_results (agent_id, action_id, created_at, body) VALUES (?, ?, ?, ?)",
        this.#agentId,
        actionId,
        now,
        JSON.stringify(result),
      ).rowsWritten > 0;
    if (first) {
      this.#outbox.add({ index: INDEX.actionResults, id: actionResultId(actionId, this.#agentId), op: "create", body: { ...result, namespaces } });
    }
    return { type: stored.type, first };
  }

  maxSeq(): number {
    this.#maxSeqKnown ??= this.#sql.exec<{ s: number | null }>("SELECT MAX(seq) AS s FROM actions WHERE agent_id = ?", this.#agentId).one().s ?? 0;
    return this.#maxSeqKnown;
  }

  /** An unanswered, unexpired UNENROLL. A known "no" holds until an action is stored; a "yes" is re-read (it ends by ack or expiry). */
  unenrollPending(): boolean {
    if (this.#unenrollingKnown === false) return false;
    this.#unenrollingKnown =
      this.maxSeq() > 0 &&
      this.#sql
        .exec<{ n: number }>(
          `SELECT COUNT(*) AS n FROM actions WHERE agent_id = ?1 AND type = 'UNENROLL' AND expiration > ?2
             AND action_id NOT IN (SELECT action_id FROM action_results WHERE agent_id = ?1)`,
          this.#agentId,
          new Date().toISOString(),
        )
        .one().n > 0;
    return this.#unenrollingKnown;
  }

  /** Deletes every action and result (the agent starts over, or is dropped). */
  forget(): void {
    this.#sql.exec("DELETE FROM actions WHERE agent_id = ?", this.#agentId);
    this.#sql.exec("DELETE FROM action_results WHERE agent_id = ?", this.#agentId);
    this.#maxSeqKnown = null;
    this.#unenrollingKnown = null;
  }
}

/** Keys in the order fleet-server serialises an action (alphabetical). */
function toDelivered(agentId: string, action: NewAction, data: JsonValue): DeliveredAction {
  return {
    agent_id: agentId,
    created_at: action.created_at,
    data,
    expiration: action.expiration,
    id: action.action_id,
    input_type: action.input_type ?? "",
    ...(action.start_time ? { start_time: action.start_time } : {}),
    ...(action.timeout !== undefined ? { timeout: action.timeout } : {}),
    type: action.type,
  };
}

/** An `.fleet-actions-results` document body for one ack event. */
function actionResult(agentId: string, event: AckEvent): JsonObject {
  const result: JsonObject = { action_id: event.action_id ?? "", agent_id: agentId, "@timestamp": event.timestamp ?? new Date().toISOString() };
  for (const key of ["error", "data", "action_input_type", "action_data", "action_response", "started_at", "completed_at"] as const) {
    if (event[key] !== undefined && event[key] !== null) result[key] = event[key];
  }
  return result;
}
