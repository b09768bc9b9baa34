/**
 * Which of an agent's WebSockets delivers its actions (table `socket_lease`, one row per agent):
 * only that socket speaks for the agent, until a newer socket or an HTTP check-in takes over.
 * Only the agent writes its row, so the holder is read once and then kept in memory.
 */
export class SocketLease {
  readonly #sql: SqlStorage;
  readonly #agentId: string;
  /** `undefined`: not known, read the table; `null`: no socket holds it. */
  #holder: string | null | undefined = undefined;

  /** `unrecorded`: the agent has no record, so no socket holds it (a record's removal drops its lease). */
  constructor(sql: SqlStorage, agentId: string, unrecorded: boolean) {
    this.#sql = sql;
    this.#agentId = agentId;
    if (unrecorded) this.#holder = null;
  }

  holder(): string | null {
    if (this.#holder === undefined) {
      this.#holder = this.#sql.exec<{ connection: string }>("SELECT connection FROM socket_lease WHERE agent_id = ?", this.#agentId).toArray()[0]?.connection ?? null;
    }
    return this.#holder;
  }

  grant(connection: string): void {
    this.#sql.exec(
      "INSERT INTO socket_lease (agent_id, connection) VALUES (?, ?) ON CONFLICT (agent_id) DO UPDATE SET connection = excluded.connection",
      this.#agentId,
      connection,
    );
    this.#holder = connection;
  }

  /** The socket `connection` closed; a newer socket's lease is left alone. */
  release(connection: string): void {
    this.#sql.exec("DELETE FROM socket_lease WHERE agent_id = ? AND connection = ?", this.#agentId, connection);
    this.#holder = undefined;
  }

  drop(): void {
    // Known to hold none (a new agent's enrollment): no delete, which cost ~1.5% of an enrollment.
    if (this.#holder !== null) this.#sql.exec("DELETE FROM socket_lease WHERE agent_id = ?", this.#agentId);
    this.#holder = null;
  }
}
