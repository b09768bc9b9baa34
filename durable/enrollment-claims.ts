/**
 * Which agent holds each enrollment id (the `enrollment_ids` table of the Directory): an agent that
 * enrolls again under the same enrollment id replaces the one that held it (fleet-protocol.md §2.2).
 */
export class EnrollmentClaims {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /** Records that `enrollmentId` now belongs to `agentId`; returns the agent that held it before, if another. */
  claim(enrollmentId: string, agentId: string): string | null {
    const previous = this.#sql.exec<{ agent_id: string }>("SELECT agent_id FROM enrollment_ids WHERE enrollment_id = ?", enrollmentId).toArray()[0];
    this.#sql.exec(
      "INSERT INTO enrollment_ids (enrollment_id, agent_id) VALUES (?, ?) ON CONFLICT (enrollment_id) DO UPDATE SET agent_id = excluded.agent_id",
      enrollmentId,
      agentId,
    );
    return previous && previous.agent_id !== agentId ? previous.agent_id : null;
  }
}
