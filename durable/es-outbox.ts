import type { Env } from "../src/config";
import { bulk, isDelivered, type BulkItemResult, type BulkOperation } from "../src/es/bulk";
import { EsError } from "../src/es/client";
import { esConfig } from "../src/es/config";
import { replaceDocument } from "../src/es/files";
import type { IndexName } from "../src/es/indices";
import { ensureTemplates, forgetTemplates } from "../src/es/templates";
import type { JsonObject } from "../src/protocol/parse";
import { log } from "../src/log";

/** Schema step each owning object appends to its migrations. */
export const OUTBOX_SCHEMA = `
  CREATE TABLE es_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    index_name TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    op TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT,
    coalesce_key TEXT UNIQUE,
    created_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT);
  CREATE TABLE es_outbox_state (k INTEGER PRIMARY KEY CHECK (k = 1), version INTEGER NOT NULL, failures INTEGER NOT NULL);`;

/** Operations per `_bulk` request from one object. */
const BATCH = 500;
const MAX_BACKOFF_MS = 5 * 60_000;

export interface MirrorEntry {
  index: IndexName;
  id: string;
  /**
   * `replace` overwrites the document wherever it lives (found by `_id`; a data stream's backing
   * index included) or creates it: for indices that may be data streams, where `index` is refused.
   */
  op: "index" | "create" | "delete" | "replace";
  body?: JsonObject;
  /**
   * Keep only the newest pending write of this document (check-in heartbeats: last write wins, as
   * fleet-server's 10 s check-in bulk). Results and other create-once documents keep every write.
   */
  coalesce?: boolean;
}

/** What an object reports while its mirror is failing, so admins can see the backlog. */
export interface MirrorBacklog {
  pending: number;
  oldestAt: string;
  lastError: string;
}

interface OutboxRow extends Record<string, SqlStorageValue> {
  seq: number;
  index_name: string;
  doc_id: string;
  op: string;
  version: number;
  body: string | null;
}

/**
 * A transactional outbox to Elasticsearch inside one Durable Object. `add` writes the mirror record
 * in the same synchronous transaction as the state change it describes; the object's alarm calls
 * `drain`, which sends `_bulk` with external versions and deletes what landed. Elasticsearch being
 * down only delays delivery: rows wait, the alarm backs off, nothing on the hot path waits.
 */
export class EsOutbox {
  readonly #ctx: DurableObjectState;
  readonly #env: Env;
  readonly #flushDelayMs: number;
  readonly #report: (backlog: MirrorBacklog | null) => Promise<void>;
  /** Asks the owner's alarm (an AlarmSchedule) to call `drain` no later than the given time. */
  readonly #wake: (at: number) => Promise<void>;
  #alarmSet = false;
  /**
   * After a failure, no delivery before this time (ms). The alarm is shared, so it also fires for
   * other concerns (check-in flushes every 10 s); those must not cut a back-off short.
   */
  #retryAt = 0;

  constructor(
    ctx: DurableObjectState,
    env: Env,
    options: { flushDelayMs: number; report: (backlog: MirrorBacklog | null) => Promise<void>; wake: (at: number) => Promise<void> },
  ) {
    this.#ctx = ctx;
    this.#env = env;
    this.#flushDelayMs = options.flushDelayMs;
    this.#report = options.report;
    this.#wake = options.wake;
  }

  /** True when Elasticsearch is configured; standalone servers mirror nothing. */
  get enabled(): boolean {
    return esConfig(this.#env) !== null;
  }

  /** Appends a mirror record. Call synchronously next to the state change (same implicit transaction). */
  add(entry: MirrorEntry): void {
    if (!this.enabled) return;
    const sql = this.#ctx.storage.sql;
    const state = sql.exec<{ version: number }>("SELECT version FROM es_outbox_state WHERE k = 1").toArray()[0];
    // Monotonic per object and ahead of the clock, so a re-created object never writes an older version.
    const version = Math.max((state?.version ?? 0) + 1, Date.now() * 1000);
    sql.exec(
      "INSERT INTO es_outbox_state (k, version, failures) VALUES (1, ?, 0) ON CONFLICT (k) DO UPDATE SET version = excluded.version",
      version,
    );
    sql.exec(
      `INSERT INTO es_outbox (index_name, doc_id, op, version, body, coalesce_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (coalesce_key) DO UPDATE SET op = excluded.op, version = excluded.version, body = excluded.body`,
      entry.index,
      entry.id,
      entry.op,
      version,
      entry.body === undefined ? null : JSON.stringify(entry.body),
      entry.coalesce ? `${entry.index}/${entry.id}` : null,
      Date.now(),
    );
    if (!this.#alarmSet) {
      this.#alarmSet = true;
      this.#wake(Date.now() + this.#flushDelayMs).catch((err: unknown) =>
        log.error("mirror.schedule_failed", { error: (err as Error).message }),
      );
    }
  }

  /** Pending records and the age of the oldest, for observability. */
  stats(): { pending: number; oldestAt: number | null } {
    const row = this.#ctx.storage.sql
      .exec<{ n: number; oldest: number | null }>("SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM es_outbox")
      .one();
    return { pending: row.n, oldestAt: row.oldest };
  }

  /** Sends one batch. Called from the owner's `alarm()`; re-arms the alarm itself, never throws. */
  async drain(): Promise<void> {
    this.#alarmSet = false;
    const config = esConfig(this.#env);
    if (!config) return;
    if (Date.now() < this.#retryAt) {
      await this.#wake(this.#retryAt);
      this.#alarmSet = true;
      return;
    }
    const rows = this.#ctx.storage.sql
      .exec<OutboxRow>("SELECT seq, index_name, doc_id, op, version, body FROM es_outbox ORDER BY seq LIMIT ?", BATCH)
      .toArray();
    if (rows.length === 0) return;
    const operations = rows.map((row) => ({
      op: row.op as MirrorEntry["op"],
      index: row.index_name,
      id: row.doc_id,
      version: row.version,
      ...(row.body !== null ? { body: JSON.parse(row.body) as unknown } : {}),
    }));
    try {
      await ensureTemplates(config);
      // In order: runs of bulk operations, each `replace` on its own between them.
      const results: BulkItemResult[] = [];
      let run: BulkOperation[] = [];
      const flush = async () => {
        if (run.length > 0) results.push(...(await bulk(config, run)));
        run = [];
      };
      for (const operation of operations) {
        if (operation.op === "replace") {
          await flush();
          results.push(await replaceDocument(config, operation.index, operation.id, (operation.body ?? {}) as JsonObject));
        } else run.push(operation as BulkOperation);
      }
      await flush();
      const rejected: string[] = [];
      this.#ctx.storage.transactionSync(() => {
        results.forEach((result, i) => {
          const row = rows[i]!;
          const op = operations[i]!.op;
          if (op === "replace" ? result.status >= 200 && result.status < 300 : isDelivered(op, result)) {
            // A newer write of a coalesced document may have replaced this row meanwhile: keep that one.
            this.#ctx.storage.sql.exec("DELETE FROM es_outbox WHERE seq = ? AND version = ?", row.seq, row.version);
          } else {
            const reason = `${row.index_name}/${row.doc_id}: ${result.status} ${result.error ?? ""}`;
            rejected.push(reason);
            this.#ctx.storage.sql.exec("UPDATE es_outbox SET attempts = attempts + 1, last_error = ? WHERE seq = ?", reason, row.seq);
          }
        });
      });
      if (rejected.length > 0) {
        // Elasticsearch refused these documents (e.g. a mapping conflict): they stay queued and visible.
        log.error("mirror.rejected", { count: rejected.length, first: rejected[0] });
        await this.#backoff(rejected[0]!);
        return;
      }
      await this.#recovered();
      if (this.stats().pending > 0) await this.#wake(Date.now());
    } catch (err) {
      const message = err instanceof EsError ? err.message : `mirror: ${(err as Error).message}`;
      if (!(err instanceof EsError) || err.transient) forgetTemplates(config);
      await this.#backoff(message);
    }
  }

  async #backoff(lastError: string): Promise<void> {
    const sql = this.#ctx.storage.sql;
    const failures = (sql.exec<{ failures: number }>("SELECT failures FROM es_outbox_state WHERE k = 1").toArray()[0]?.failures ?? 0) + 1;
    sql.exec("UPDATE es_outbox_state SET failures = ? WHERE k = 1", failures);
    const delay = Math.min(1000 * 2 ** Math.min(failures, 10), MAX_BACKOFF_MS) * (0.75 + Math.random() * 0.5);
    // Whole milliseconds, as the alarm keeps them: a fractional time would fire a hair early, be
    // skipped as too soon, and be set again to the very time that fired, which deletes it.
    this.#retryAt = Math.ceil(Date.now() + delay);
    await this.#wake(this.#retryAt);
    this.#alarmSet = true;
    if (failures === 1 || failures % 10 === 0) {
      const stats = this.stats();
      await this.#report({ pending: stats.pending, oldestAt: new Date(stats.oldestAt ?? Date.now()).toISOString(), lastError }).catch(() => {});
    }
  }

  async #recovered(): Promise<void> {
    const sql = this.#ctx.storage.sql;
    const failures = sql.exec<{ failures: number }>("SELECT failures FROM es_outbox_state WHERE k = 1").toArray()[0]?.failures ?? 0;
    if (failures === 0) return;
    sql.exec("UPDATE es_outbox_state SET failures = 0 WHERE k = 1");
    await this.#report(null).catch(() => {});
  }
}
