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
 * Schema step: what was counted is kept as one row per store, its counted batches (sequence → first
 * minute) and its check-ins per minute (JSON), and summed over the stores when read. A batch then
 * costs one row rewritten, where it cost a row inserted (and an hour later deleted) with two index
 * entries, and a row per minute it counted in. A batch id was `<store id>:<sequence>` (store ids are
 * hex); the minutes counted before the step become a row of their own, which ages out with the rest.
 */
export const CHECKIN_SOURCES_SCHEMA = `
  CREATE TABLE checkin_sources (source TEXT PRIMARY KEY, batches TEXT NOT NULL, minutes TEXT NOT NULL) WITHOUT ROWID;
  INSERT INTO checkin_sources (source, batches, minutes)
    SELECT substr(batch, 1, instr(batch, ':') - 1), json_group_array(json_array(CAST(substr(batch, instr(batch, ':') + 1) AS INTEGER), minute)), '[]'
    FROM checkin_batches WHERE instr(batch, ':') > 0 GROUP BY 1;
  INSERT INTO checkin_sources (source, batches, minutes)
    SELECT '', '[]', json_group_array(json_array(minute, count)) FROM checkin_minutes HAVING COUNT(*) > 0;
  DROP TABLE checkin_batches;
  DROP TABLE checkin_minutes;`;

/**
 * A policy's check-ins per minute, summed from its agents' stores' batches (durable/checkin-tally.ts):
 * a batch (a store sends one per flush) rewrites its store's one row, none per check-in or minute;
 * a reading sums the stores' rows (at most one per agent store). Only the last CHECKIN_MINUTES_KEPT
 * minutes are kept; a batch delivered later than that is dropped whole, and a store's row forgets
 * the batches and minutes older than that when it is next written.
 */
export class CheckinCounts {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /** Adds each batch not seen before; true when a count changed. Run inside one transaction. */
  add(batches: CheckinBatch[], now: number): boolean {
    const oldest = minuteOf(now) - (CHECKIN_MINUTES_KEPT - 1) * MINUTE_MS;
    const bySource = new Map<string, CheckinBatch[]>();
    for (const batch of batches) {
      let list = bySource.get(batch.source);
      if (!list) bySource.set(batch.source, (list = []));
      list.push(batch);
    }
    let changed = false;
    for (const [source, list] of bySource) {
      const row = this.#sql.exec<{ batches: string; minutes: string }>("SELECT batches, minutes FROM checkin_sources WHERE source = ?", source).toArray()[0];
      // Sequence → the first minute it counted; minute → check-ins.
      const seen = new Map(pairsOf(row?.batches).filter(([, minute]) => minute >= oldest));
      const counts = new Map(pairsOf(row?.minutes).filter(([minute]) => minute >= oldest));
      let added = false;
      for (const { seq, minutes } of list) {
        const recent = minutes.filter(([minute]) => minute >= oldest);
        if (recent.length === 0 || seen.has(seq)) continue;
        seen.set(seq, Math.min(...recent.map(([minute]) => minute)));
        for (const [minute, count] of recent) counts.set(minute, (counts.get(minute) ?? 0) + count);
        added = true;
      }
      if (!added) continue;
      this.#sql.exec(
        "INSERT INTO checkin_sources (source, batches, minutes) VALUES (?, ?, ?) ON CONFLICT (source) DO UPDATE SET batches = excluded.batches, minutes = excluded.minutes",
        source,
        JSON.stringify([...seen]),
        JSON.stringify([...counts]),
      );
      changed = true;
    }
    return changed;
  }

  /** The counted minutes among the last CHECKIN_MINUTES_SHOWN up to `now`'s, oldest first, summed over the stores. */
  recent(now: number): CheckinMinutes {
    const first = minuteOf(now) - (CHECKIN_MINUTES_SHOWN - 1) * MINUTE_MS;
    const sums = new Map<number, number>();
    for (const row of this.#sql.exec<{ minutes: string }>("SELECT minutes FROM checkin_sources")) {
      for (const [minute, count] of pairsOf(row.minutes)) if (minute >= first) sums.set(minute, (sums.get(minute) ?? 0) + count);
    }
    return [...sums].sort(([a], [b]) => a - b);
  }
}

/** A row's JSON pairs of numbers (none when there is no row). */
function pairsOf(json: string | undefined): Array<[number, number]> {
  return json === undefined ? [] : (JSON.parse(json) as Array<[number, number]>);
}
