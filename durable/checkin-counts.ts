import { CHECKIN_MINUTES_KEPT, CHECKIN_MINUTES_SHOWN, MINUTE_MS, minuteOf, type CheckinBatch, type CheckinMinutes } from "../src/agents/checkin-rate";

/**
 * Schema step of the policy hub: its agents' check-ins per minute, and the batches already counted
 * (a store redelivers a batch after a failed call; it must count once).
 */
export const CHECKIN_COUNTS_SCHEMA = `
  CREATE TABLE checkin_minutes (minute INTEGER PRIMARY KEY, count INTEGER NOT NULL);
  CREATE TABLE checkin_batches (batch TEXT PRIMARY KEY, minute INTEGER NOT NULL);
  CREATE INDEX checkin_batches_minute ON checkin_batches (minute);`;

/**
 * A policy's check-ins per minute, summed from its agents' stores' batches (durable/checkin-tally.ts):
 * two small writes per batch (a store sends one per flush), none per check-in. Only the last
 * CHECKIN_MINUTES_KEPT minutes are kept; a batch delivered later than that is dropped whole.
 */
export class CheckinCounts {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /** Adds each batch not seen before; true when a count changed. Run inside one transaction. */
  add(batches: CheckinBatch[], now: number): boolean {
    const oldest = minuteOf(now) - (CHECKIN_MINUTES_KEPT - 1) * MINUTE_MS;
    this.#sql.exec("DELETE FROM checkin_minutes WHERE minute < ?", oldest);
    this.#sql.exec("DELETE FROM checkin_batches WHERE minute < ?", oldest);
    let changed = false;
    for (const { batch, minutes } of batches) {
      const kept = minutes.filter(([minute]) => minute >= oldest);
      if (kept.length === 0) continue;
      const first = Math.min(...kept.map(([minute]) => minute));
      const added = this.#sql.exec("INSERT INTO checkin_batches (batch, minute) VALUES (?, ?) ON CONFLICT (batch) DO NOTHING RETURNING batch", batch, first).toArray();
      if (added.length === 0) continue;
      for (const [minute, count] of kept) {
        this.#sql.exec("INSERT INTO checkin_minutes (minute, count) VALUES (?, ?) ON CONFLICT (minute) DO UPDATE SET count = count + excluded.count", minute, count);
      }
      changed = true;
    }
    return changed;
  }

  /** The counted minutes among the last CHECKIN_MINUTES_SHOWN up to `now`'s, oldest first. */
  recent(now: number): CheckinMinutes {
    return this.#sql
      .exec<{ minute: number; count: number }>("SELECT minute, count FROM checkin_minutes WHERE minute >= ? ORDER BY minute", minuteOf(now) - (CHECKIN_MINUTES_SHOWN - 1) * MINUTE_MS)
      .toArray()
      .map((row) => [row.minute, row.count]);
  }
}
