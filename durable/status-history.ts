import { STATUS_HISTORY_LIMIT, type StatusChange } from "../src/agents/actions";
import type { AgentDoc } from "../src/protocol/agent-doc";

/** Schema step of the agent store: the latest status changes of each agent it holds. */
export const STATUS_HISTORY_SCHEMA = `CREATE TABLE status_history (
  agent_id TEXT NOT NULL, seq INTEGER NOT NULL, at TEXT NOT NULL, status TEXT NOT NULL, message TEXT,
  PRIMARY KEY (agent_id, seq));`;

/**
 * One agent's status history for its page in the console: a row when the status it reports (or its
 * enrollment) changes, not per check-in, so a healthy agent writes nothing here. The latest
 * STATUS_HISTORY_LIMIT rows are kept.
 */
export class StatusHistory {
  readonly #sql: SqlStorage;
  readonly #agentId: string;

  constructor(sql: SqlStorage, agentId: string) {
    this.#sql = sql;
    this.#agentId = agentId;
  }

  /** Records `after`'s status when it differs from `before`'s. */
  record(before: AgentDoc | null, after: AgentDoc, at: string): void {
    const status = statusOf(after);
    if (before && statusOf(before) === status) return;
    // A new agent has no rows (a re-enrolled one had them forgotten): enrollment costs one insert.
    const seq = before
      ? (this.#sql.exec<{ s: number | null }>("SELECT MAX(seq) AS s FROM status_history WHERE agent_id = ?", this.#agentId).one().s ?? 0)
      : 0;
    this.#sql.exec(
      "INSERT OR REPLACE INTO status_history (agent_id, seq, at, status, message) VALUES (?, ?, ?, ?, ?)",
      this.#agentId,
      seq + 1,
      at,
      status,
      after.active ? (after.last_checkin_message ?? null) : null,
    );
    if (seq + 1 > STATUS_HISTORY_LIMIT) this.#sql.exec("DELETE FROM status_history WHERE agent_id = ? AND seq <= ?", this.#agentId, seq + 1 - STATUS_HISTORY_LIMIT);
  }

  /** Newest first. */
  list(): StatusChange[] {
    return this.#sql
      .exec<{ at: string; status: string; message: string | null }>("SELECT at, status, message FROM status_history WHERE agent_id = ? ORDER BY seq DESC", this.#agentId)
      .toArray()
      .map((row) => ({ at: row.at, status: row.status, message: row.message }));
  }

  forget(): void {
    this.#sql.exec("DELETE FROM status_history WHERE agent_id = ?", this.#agentId);
  }
}

/** What the history follows: enrolled (no check-in yet), the reported status, or unenrolled. */
function statusOf(doc: AgentDoc): string {
  if (!doc.active) return "unenrolled";
  return doc.last_checkin_status ? doc.last_checkin_status.toLowerCase() : "enrolled";
}
