import type { RolloutSample, StageStats } from "../src/policy/staged-rollout";

/** Schema step of the policy hub: the progress of its latest staged rollout over time. */
export const ROLLOUT_SAMPLES_SCHEMA = `
  CREATE TABLE rollout_samples (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    target INTEGER NOT NULL,
    stage INTEGER NOT NULL,
    at TEXT NOT NULL,
    members INTEGER NOT NULL,
    acked INTEGER NOT NULL,
    failed INTEGER NOT NULL);`;

/** Rows kept for a rollout; past it, every other sample of each stage is dropped (first and last kept). */
export const MAX_ROLLOUT_SAMPLES = 500;

/**
 * A staged rollout's progress over time, for its chart: the current stage's members, acks and
 * failures, recorded when the rollout starts, at each evaluation where they changed, at each
 * command and when a stage closes. Only the latest rollout's samples are kept, and at most
 * MAX_ROLLOUT_SAMPLES of them: a long rollout loses resolution, never its stages' ends.
 */
export class RolloutSamples {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /** A new rollout of `target`: the samples of earlier ones go. */
  begin(target: number): void {
    this.#sql.exec("DELETE FROM rollout_samples WHERE target <> ?", target);
  }

  /** Records the stage's counts at `at`; unless `always`, only when they differ from its last sample. */
  record(target: number, stage: number, stats: StageStats, at: string, always: boolean): void {
    if (!always) {
      const last = this.#sql
        .exec<{ members: number; acked: number; failed: number }>("SELECT members, acked, failed FROM rollout_samples WHERE target = ? AND stage = ? ORDER BY seq DESC LIMIT 1", target, stage)
        .toArray()[0];
      if (last && last.members === stats.members && last.acked === stats.acked && last.failed === stats.failed) return;
    }
    this.#sql.exec("INSERT INTO rollout_samples (target, stage, at, members, acked, failed) VALUES (?, ?, ?, ?, ?, ?)", target, stage, at, stats.members, stats.acked, stats.failed);
    if (this.#sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM rollout_samples WHERE target = ?", target).one().n > MAX_ROLLOUT_SAMPLES) this.#thin(target);
  }

  /** The rollout's samples, oldest first. */
  list(target: number): RolloutSample[] {
    return this.#sql
      .exec<RolloutSample & Record<string, SqlStorageValue>>("SELECT stage, at, members, acked, failed FROM rollout_samples WHERE target = ? ORDER BY seq", target)
      .toArray()
      .map(({ stage, at, members, acked, failed }) => ({ stage, at, members, acked, failed }));
  }

  /** Halves the samples: every second one of each stage, but never a stage's first or last. */
  #thin(target: number): void {
    this.#sql.exec(
      `DELETE FROM rollout_samples WHERE seq IN (
         SELECT seq FROM (
           SELECT seq, ROW_NUMBER() OVER (PARTITION BY stage ORDER BY seq) AS n, COUNT(*) OVER (PARTITION BY stage) AS total
           FROM rollout_samples WHERE target = ?)
         WHERE n % 2 = 0 AND n < total)`,
      target,
    );
  }
}
