import { DurableObject } from "cloudflare:workers";
import { useLogSettings } from "../src/log";
import type { Env } from "../src/config";
import type { MirrorBacklog } from "./es-outbox";
import { migrateOnStart } from "./sql-schema";

const SCHEMA = [
  `CREATE TABLE backlog (owner TEXT PRIMARY KEY, pending INTEGER NOT NULL, oldest_at TEXT NOT NULL, last_error TEXT NOT NULL, updated_at TEXT NOT NULL);`,
];

export interface MirrorSummary {
  failing_objects: number;
  pending: number;
  oldest_pending_at: string | null;
  last_error: string | null;
}

/**
 * Which objects currently cannot deliver their Elasticsearch outbox, and how much they hold. Objects
 * report only when they start failing (and every tenth retry) and when they recover, so a healthy
 * mirror writes nothing here. Sharded (see `mirrorMonitor`) so an outage reported by a whole fleet
 * at once is spread over several objects.
 */
export class MirrorMonitor extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    useLogSettings(env);
    migrateOnStart(ctx, SCHEMA);
  }

  async report(owner: string, backlog: MirrorBacklog | null): Promise<void> {
    if (backlog === null) {
      this.ctx.storage.sql.exec("DELETE FROM backlog WHERE owner = ?", owner);
      return;
    }
    this.ctx.storage.sql.exec(
      `INSERT INTO backlog (owner, pending, oldest_at, last_error, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (owner) DO UPDATE SET pending = excluded.pending, oldest_at = MIN(oldest_at, excluded.oldest_at),
         last_error = excluded.last_error, updated_at = excluded.updated_at`,
      owner,
      backlog.pending,
      backlog.oldestAt,
      backlog.lastError,
      new Date().toISOString(),
    );
  }

  async summary(): Promise<MirrorSummary> {
    const totals = this.ctx.storage.sql
      .exec<{ n: number; pending: number | null; oldest: string | null }>("SELECT COUNT(*) AS n, SUM(pending) AS pending, MIN(oldest_at) AS oldest FROM backlog")
      .one();
    const last = this.ctx.storage.sql.exec<{ last_error: string }>("SELECT last_error FROM backlog ORDER BY updated_at DESC LIMIT 1").toArray()[0];
    return { failing_objects: totals.n, pending: totals.pending ?? 0, oldest_pending_at: totals.oldest, last_error: last?.last_error ?? null };
  }
}
