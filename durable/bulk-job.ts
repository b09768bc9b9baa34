import { DurableObject } from "cloudflare:workers";
import { useLogSettings } from "../src/log";
import type { Env } from "../src/config";
import type { ActionResult } from "../src/agents/effects";
import type { JobRecord, JobStatus } from "../src/admin/bulk-job-contract";
import { agentObject, policyHub } from "../src/durable-stubs";
import { isFailure, orThrow, type ErrorCode } from "../src/errors";
import { migrateOnStart } from "./sql-schema";

const SCHEMA = [
  `CREATE TABLE job (k INTEGER PRIMARY KEY CHECK (k = 1), body TEXT NOT NULL);
   CREATE TABLE targets (position INTEGER PRIMARY KEY, agent_id TEXT NOT NULL UNIQUE, dispatched_at TEXT, error TEXT);
   CREATE TABLE results (agent_id TEXT PRIMARY KEY, error TEXT, at TEXT NOT NULL);`,
];

/** Agents handled per dispatch step; each costs one or two calls into other objects. */
const BATCH = 100;

/**
 * One operation over many agents (an action for a list of agents or a whole policy, a bulk reassign,
 * tag change or revoke). It records its targets, dispatches them in batches from its alarm, so a
 * policy of 100k agents never needs 100k calls in one request, and collects the agents' results, so
 * admins can follow its progress.
 */
export class BulkJob extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    useLogSettings(env);
    migrateOnStart(ctx, SCHEMA);
  }

  /**
   * Records the job. Small explicit target lists (≤ one batch) are dispatched before this returns, so
   * the caller can report per-agent failures; everything else continues from the alarm.
   */
  async start(record: Omit<JobRecord, "resolved" | "cursor">): Promise<{ failures: Array<{ agentId: string; error: ErrorCode; detail?: string }> }> {
    if (this.#job()) return { failures: [] };
    const job: JobRecord = { ...record, resolved: "agents" in record.targets, cursor: 0 };
    this.ctx.storage.transactionSync(() => {
      this.#saveJob(job);
      if ("agents" in record.targets) {
        record.targets.agents.forEach((agentId, position) =>
          this.ctx.storage.sql.exec("INSERT OR IGNORE INTO targets (position, agent_id) VALUES (?, ?)", position, agentId),
        );
      }
    });
    if ("agents" in record.targets && record.targets.agents.length <= BATCH) {
      return { failures: await this.#dispatchBatch() };
    }
    await this.ctx.storage.setAlarm(Date.now());
    return { failures: [] };
  }

  override async alarm(): Promise<void> {
    const job = this.#job();
    if (!job || job.completed_at) return;
    if (!job.resolved && "policyId" in job.targets) await this.#resolvePage(job, job.targets.policyId);
    await this.#dispatchBatch();
    const current = this.#job()!;
    const remaining = this.ctx.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM targets WHERE dispatched_at IS NULL").one().n;
    if (!current.resolved || remaining > 0) await this.ctx.storage.setAlarm(Date.now());
  }

  /**
   * Agents' answers to this job's action, from their stores' effects: the first ack per agent
   * counts, so a redelivered batch changes nothing; an upgrade's reported outcome replaces the ack
   * (a failed upgrade counts as failed though the agent acked it). Answers to actions that are not
   * jobs are ignored.
   */
  async recordResults(results: ActionResult[]): Promise<void> {
    if (!this.#job()) return;
    this.ctx.storage.transactionSync(() => {
      for (const result of results) {
        const sql = result.upgrade
          ? "INSERT INTO results (agent_id, error, at) VALUES (?, ?, ?) ON CONFLICT (agent_id) DO UPDATE SET error = excluded.error, at = excluded.at"
          : "INSERT OR IGNORE INTO results (agent_id, error, at) VALUES (?, ?, ?)";
        this.ctx.storage.sql.exec(sql, result.agentId, result.error ?? null, result.at);
      }
    });
  }

  async status(): Promise<JobStatus | null> {
    const job = this.#job();
    if (!job) return null;
    const sql = this.ctx.storage.sql;
    const total = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM targets").one().n;
    const created = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM targets WHERE dispatched_at IS NOT NULL AND error IS NULL").one().n;
    const dispatchFailed = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM targets WHERE error IS NOT NULL").one().n;
    const acked = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM results WHERE error IS NULL").one().n;
    const failed = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM results WHERE error IS NOT NULL").one().n + dispatchFailed;
    const errors = sql
      .exec<{ agent_id: string; error: string; at: string }>(
        "SELECT agent_id, error, at FROM results WHERE error IS NOT NULL UNION ALL SELECT agent_id, error, dispatched_at AS at FROM targets WHERE error IS NOT NULL ORDER BY at DESC LIMIT 10",
      )
      .toArray()
      .map((row) => ({ agentId: row.agent_id, error: row.error, timestamp: row.at }));
    const operation = job.operation;
    const expiration = operation.kind === "action" ? operation.action.expiration : undefined;
    const acknowledged = operation.kind === "action" ? acked + failed : created + dispatchFailed;
    let status: JobStatus["status"] = "IN_PROGRESS";
    if (job.cancelled_at) status = "CANCELLED";
    else if (job.resolved && total > 0 && acknowledged >= total) status = failed > 0 && failed === total ? "FAILED" : "COMPLETE";
    else if (expiration && Date.parse(expiration) <= Date.now()) status = "EXPIRED";
    return {
      actionId: job.id,
      type: operation.kind === "action" ? operation.action.type : operation.kind.toUpperCase(),
      status,
      nbAgentsActioned: total,
      nbAgentsActionCreated: created,
      nbAgentsAck: operation.kind === "action" ? acked : created,
      nbAgentsFailed: failed,
      creationTime: job.created_at,
      ...(expiration ? { expiration } : {}),
      ...(job.cancelled_at ? { cancellationTime: job.cancelled_at } : {}),
      latestErrors: errors,
    };
  }

  /** Agents that received the action but have not answered: the ones a CANCEL must reach. */
  async unanswered(): Promise<string[]> {
    return this.ctx.storage.sql
      .exec<{ agent_id: string }>(
        "SELECT agent_id FROM targets WHERE dispatched_at IS NOT NULL AND error IS NULL AND agent_id NOT IN (SELECT agent_id FROM results) ORDER BY position",
      )
      .toArray()
      .map((row) => row.agent_id);
  }

  async markCancelled(cancelActionId: string): Promise<boolean> {
    const job = this.#job();
    if (!job || job.cancelled_at) return false;
    this.#saveJob({ ...job, cancelled_at: new Date().toISOString(), cancel_action_id: cancelActionId });
    return true;
  }

  /** Appends the next page of the policy's active agents to the targets. */
  async #resolvePage(job: JobRecord, policyId: string): Promise<void> {
    // After the last agent read (a keyset, so a sharded roster pages at any depth); a job started
    // before cursors were kept goes on by offset.
    const page = orThrow(
      await policyHub(this.env, policyId).listAgents(
        policyId,
        { sortField: "enrolled_at", sortOrder: "asc", limit: BATCH, offset: job.after ? 0 : job.cursor, includeInactive: false, ...(job.after ? { after: job.after } : {}) },
        Number.MAX_SAFE_INTEGER,
      ),
    );
    const last = page.items.at(-1);
    const active = page.items.filter((agent) => agent.active);
    this.ctx.storage.transactionSync(() => {
      const base = this.ctx.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM targets").one().n;
      active.forEach((agent, i) => this.ctx.storage.sql.exec("INSERT OR IGNORE INTO targets (position, agent_id) VALUES (?, ?)", base + i, agent.agent_id));
      const cursor = job.cursor + page.items.length;
      const after = last ? { value: last.enrolled_at, agentId: last.agent_id } : job.after;
      this.#saveJob({ ...job, cursor, ...(after ? { after } : {}), resolved: page.items.length < BATCH || cursor >= page.total });
    });
  }

  async #dispatchBatch(): Promise<Array<{ agentId: string; error: ErrorCode; detail?: string }>> {
    const job = this.#job()!;
    const rows = this.ctx.storage.sql
      .exec<{ position: number; agent_id: string }>("SELECT position, agent_id FROM targets WHERE dispatched_at IS NULL ORDER BY position LIMIT ?", BATCH)
      .toArray();
    const total = this.ctx.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM targets").one().n;
    const failures: Array<{ agentId: string; error: ErrorCode; detail?: string }> = [];
    await Promise.all(
      rows.map(async (row) => {
        const failure = await this.#apply(job, row.agent_id, row.position, total).catch((err: unknown) => ({
          error: "Internal" as ErrorCode,
          detail: (err as Error).message,
        }));
        const now = new Date().toISOString();
        if (failure) failures.push({ agentId: row.agent_id, error: failure.error, ...(failure.detail ? { detail: failure.detail } : {}) });
        this.ctx.storage.sql.exec(
          "UPDATE targets SET dispatched_at = ?, error = ? WHERE position = ?",
          now,
          failure ? (failure.detail ?? failure.error) : null,
          row.position,
        );
      }),
    );
    return failures;
  }

  /**
   * Applies the job to one agent; returns a failure, or null. One call to the agent's store: it
   * writes what the change means for other objects (roster, wake-ups, socket closes) itself.
   */
  async #apply(job: JobRecord, agentId: string, position: number, total: number): Promise<{ error: ErrorCode; detail?: string } | null> {
    const agent = agentObject(this.env, agentId);
    const operation = job.operation;
    switch (operation.kind) {
      case "action": {
        const action = { ...operation.action };
        if (operation.rolloutDurationSeconds && action.start_time && total > 0) {
          // Spread the fleet's start times over the rollout window, as fleet-server does.
          const offset = Math.floor((operation.rolloutDurationSeconds * 1000 * position) / total);
          action.start_time = new Date(Date.parse(action.start_time) + offset).toISOString();
        }
        return failureOf(await agent.addAction(action));
      }
      case "reassign":
        return failureOf(await agent.reassign(operation.policyId));
      case "tags":
        return failureOf(await agent.updateTags(operation.add, operation.remove, operation.replace));
      case "revoke":
        return failureOf(await agent.forceUnenroll());
    }
  }

  #job(): JobRecord | null {
    const row = this.ctx.storage.sql.exec<{ body: string }>("SELECT body FROM job WHERE k = 1").toArray()[0];
    return row ? (JSON.parse(row.body) as JobRecord) : null;
  }

  #saveJob(job: JobRecord): void {
    this.ctx.storage.sql.exec("INSERT INTO job (k, body) VALUES (1, ?) ON CONFLICT (k) DO UPDATE SET body = excluded.body", JSON.stringify(job));
  }
}

const failureOf = <T extends object>(result: T): { error: ErrorCode; detail?: string } | null => (isFailure(result) ? result : null);
