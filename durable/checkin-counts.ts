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
 * Schema step: the batches counted are kept as one row per store (its counted sequences and their
 * first minutes, JSON) instead of a row per batch, so a batch costs one row rewritten, not an
 * insert and a later delete with their two index entries (six rows written). A batch id was
 * `<store id>:<sequence>`; store ids are hex.
 */
export const CHECKIN_SOURCES_SCHEMA = `
  CREATE TABLE checkin_sources (source TEXT PRIMARY KEY, batches TEXT NOT NULL) WITHOUT ROWID;
  INSERT INTO checkin_sources (source, batches)
    SELECT substr(batch, 1, instr(batch, ':') - 1), json_group_array(json_array(CAST(substr(batch, instr(batch, ':') + 1) AS INTEGER), minute))
    FROM checkin_batches WHERE instr(batch, ':') > 0 GROUP BY 1;
  DROP TABLE checkin_batches;`;

/**
 * A policy's check-ins per minute, summed from its agents' stores' batches (durable/checkin-tally.ts):
 * per batch (a store sends one per flush) its store's row of counted batches is rewritten and its
 * minutes added to, none per check-in. Only the last CHECKIN_MINUTES_KEPT minutes are kept; a batch
 * delivered later than that is dropped whole, and so is what a store's row remembers of it.
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
    const bySource = new Map<string, CheckinBatch[]>();
    for (const batch of batches) {
      let list = bySource.get(batch.source);
      if (!list) bySource.set(batch.source, (list = []));
      list.push(batch);
    }
    let changed = false;
    for (const [source, list] of bySource) {
      const row = this.#sql.exec<{ batches: string }>("SELECT batches FROM checkin_sources WHERE source = ?", source).toArray()[0];
      // Sequence → the first minute it counted, for the batches of the minutes still kept.
      const seen = new Map((row ? (JSON.parse(row.batches) as Array<[number, number]>) : []).filter(([, minute]) => minute >= oldest));
      let added = false;
      for (const { seq, minutes } of list) {
        const kept = minutes.filter(([minute]) => minute >= oldest);
        if (kept.length === 0 || seen.has(seq)) continue;
        seen.set(seq, Math.min(...kept.map(([minute]) => minute)));
        for (const [minute, count] of kept) {
          this.#sql.exec("INSERT INTO checkin_minutes (minute, count) VALUES (?, ?) ON CONFLICT (minute) DO UPDATE SET count = count + excluded.count", minute, count);
        }
        added = true;
      }
      if (!added) continue;
      this.#sql.exec("INSERT INTO checkin_sources (source, batches) VALUES (?, ?) ON CONFLICT (source) DO UPDATE SET batches = excluded.batches", source, JSON.stringify([...seen]));
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
