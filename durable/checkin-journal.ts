/**
 * Where an agent store keeps heartbeat times: one row per flush window holding every time the
 * window wrote, instead of one rewrite of each agent's record per heartbeat. A heartbeat that
 * changes nothing but the check-in time then costs the store a 550th of a row at 1M agents
 * (550 heartbeats per store and window) instead of a whole row, and rows written are most of the
 * bill (docs/cost.md). The records keep the time of their last real change; the journal holds the
 * newer times, and an agent loaded from its record takes the journal's time when it is newer.
 *
 * A window's row is kept for `JOURNAL_SPAN_MS`. At the first flush after that, the agents whose
 * newest time is in it (they have not checked in since: gone quiet) get that time written into
 * their records, and the row goes. So a busy store's journal holds about an hour of windows (a
 * store that stopped flushing keeps its last ones, which cost nothing), and an agent checking in
 * regularly never has its record rewritten for its times alone.
 */
export const CHECKIN_JOURNAL_SCHEMA = `CREATE TABLE checkin_journal (window INTEGER PRIMARY KEY, times TEXT NOT NULL);`;

/**
 * Check-in times that changed nothing else are written at most this late, all of a window's in one
 * journal row: fleet-server's check-in bulker flushes every 10 s too (fleet-protocol.md §7), though
 * it holds status changes as well, which the store writes at once (durable/agent-store.ts). A crash
 * loses at most this much of `last_checkin`, never a state.
 */
export const CHECKIN_FLUSH_MS = 10_000;

/** How long a window's times stay in the journal before the quiet agents' times move into their records. */
export const JOURNAL_SPAN_MS = 60 * 60_000;

interface Entry {
  at: string;
  window: number;
}

export class CheckinJournal {
  readonly #sql: SqlStorage;
  /** Each journaled agent's newest time and the window that holds it; read from the rows on first use. */
  #latest: Map<string, Entry> | null = null;
  #lastWindow = 0;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /** The agent's newest journaled check-in time, if the journal holds one. */
  timeOf(agentId: string): string | undefined {
    return this.#entries().get(agentId)?.at;
  }

  /**
   * Writes one window's times as one row, in the caller's transaction. Windows are numbered by
   * their flush time in ms, kept increasing so that a later window's time always wins.
   */
  write(times: ReadonlyMap<string, string>, now: number): void {
    if (times.size === 0) return;
    const latest = this.#entries();
    const window = Math.max(now, this.#lastWindow + 1);
    this.#sql.exec("INSERT INTO checkin_journal (window, times) VALUES (?, ?)", window, JSON.stringify(Object.fromEntries(times)));
    this.#lastWindow = window;
    for (const [agentId, at] of times) latest.set(agentId, { at, window });
  }

  /**
   * Retires the windows older than `JOURNAL_SPAN_MS`, in the caller's transaction: `settle` is
   * given each agent whose newest time is in a retired window, to write it into its record.
   */
  expire(now: number, settle: (agentId: string, at: string) => void): void {
    const latest = this.#entries();
    const old = this.#sql
      .exec<{ window: number; times: string }>("SELECT window, times FROM checkin_journal WHERE window < ? ORDER BY window", now - JOURNAL_SPAN_MS)
      .toArray();
    for (const row of old) {
      for (const agentId of Object.keys(JSON.parse(row.times) as Record<string, string>)) {
        const entry = latest.get(agentId);
        if (entry?.window !== row.window) continue;
        settle(agentId, entry.at);
        latest.delete(agentId);
      }
    }
    if (old.length > 0) this.#sql.exec("DELETE FROM checkin_journal WHERE window <= ?", old[old.length - 1]!.window);
  }

  #entries(): Map<string, Entry> {
    if (this.#latest) return this.#latest;
    const latest = new Map<string, Entry>();
    for (const row of this.#sql.exec<{ window: number; times: string }>("SELECT window, times FROM checkin_journal ORDER BY window")) {
      for (const [agentId, at] of Object.entries(JSON.parse(row.times) as Record<string, string>)) latest.set(agentId, { at, window: row.window });
      this.#lastWindow = row.window;
    }
    return (this.#latest = latest);
  }
}
