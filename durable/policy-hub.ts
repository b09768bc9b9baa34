import { DurableObject } from "cloudflare:workers";
import { fleetConfig, type Env } from "../src/config";
import { hubShards, mirrorMonitorFor } from "../src/durable-stubs";
import { policyDocument, policyDocumentId } from "../src/es/documents";
import { INDEX } from "../src/es/indices";
import { contentHash } from "../src/policy/content-hash";
import { changedPaths } from "../src/policy/diff";
import { withFleetHosts } from "../src/policy/fleet-hosts";
import type { Failure } from "../src/errors";
import type { PolicyContent, PolicyRevision } from "../src/protocol/policy";
import type { AgentStatus } from "../src/agents/status";
import { AlarmSchedule } from "./alarm-schedule";
import { AgentRoster, ROSTER_BUCKET_SCHEMA, ROSTER_SCHEMA, ROSTER_VERSION_SCHEMA, type AgentQuery, type ListedAgent } from "./agent-roster";
import { decide, isSplitting, stageThreshold, type RolloutCriteria, type RolloutState } from "./staged-rollout";
import { EsOutbox, OUTBOX_SCHEMA } from "./es-outbox";
import type { DeliverySnapshot } from "./hub-shard";
import type { RosterChanges } from "../src/agents/effects";
import { migrateSchema } from "./sql-schema";
import { log } from "../src/log";

const SCHEMA = [
  `CREATE TABLE revisions (
     revision INTEGER PRIMARY KEY,
     created_at TEXT NOT NULL,
     content_hash TEXT NOT NULL,
     body TEXT NOT NULL);`,
  OUTBOX_SCHEMA,
  ROSTER_SCHEMA,
  `ALTER TABLE revisions ADD COLUMN created_by TEXT; ALTER TABLE revisions ADD COLUMN changed_paths INTEGER;`,
  `${ROSTER_BUCKET_SCHEMA} CREATE TABLE rollout (k INTEGER PRIMARY KEY CHECK (k = 1), body TEXT NOT NULL);`,
  ROSTER_VERSION_SCHEMA,
];

/** How often a running staged rollout is evaluated. */
const ROLLOUT_EVALUATION_MS = 10_000;

export interface PolicyPut {
  policyId: string;
  /** Who published it (admin key name, "admin-token", or "kibana" for ingested revisions). */
  createdBy: string;
  name: string;
  namespace: string;
  description?: string;
  policy: PolicyContent;
}

/**
 * One agent policy: its immutable revisions, its staged rollout, and the roster of its agents. The
 * agents' parked polls and sockets live in the policy's fan-out shards (`HubShard`, `POLICY_HUB_SHARDS`
 * of them; an agent belongs to the shard its id hashes to): every change is sent to each shard as a
 * delivery snapshot, and each shard wakes its own agents. Shards send back roster changes in batches.
 */
export class PolicyHub extends DurableObject<Env> {
  #latest: PolicyRevision | null = null;
  #latestHash: string | null = null;
  /** A staged rollout, and the revision agents outside its current stage keep. */
  #rollout: RolloutState | null = null;
  #previous: PolicyRevision | null = null;
  readonly #outbox: EsOutbox;
  readonly #alarms: AlarmSchedule;
  #roster!: AgentRoster;
  /** This policy's id before its first revision exists (learned from calls that carry it). */
  #policyId: string | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#alarms = new AlarmSchedule(ctx.storage);
    this.#outbox = new EsOutbox(ctx, env, {
      wake: (at) => this.#alarms.request(at),
      flushDelayMs: fleetConfig(env).mirrorFlushMs,
      report: (backlog) => {
        const owner = `policy:${this.#latest?.policy_id ?? ctx.id.toString()}`;
        return mirrorMonitorFor(env, owner).report(owner, backlog);
      },
    });
    ctx.blockConcurrencyWhile(async () => {
      migrateSchema(ctx.storage, SCHEMA);
      this.#roster = new AgentRoster(ctx.storage.sql);
      const row = ctx.storage.sql
        .exec<{ body: string; content_hash: string }>("SELECT body, content_hash FROM revisions ORDER BY revision DESC LIMIT 1")
        .toArray()[0];
      this.#latest = row ? (JSON.parse(row.body) as PolicyRevision) : null;
      this.#latestHash = row?.content_hash ?? null;
      const rollout = ctx.storage.sql.exec<{ body: string }>("SELECT body FROM rollout WHERE k = 1").toArray()[0];
      this.#rollout = rollout ? (JSON.parse(rollout.body) as RolloutState) : null;
      if (isSplitting(this.#rollout)) this.#previous = this.#revisionRow(this.#rollout.previous);
    });
  }

  /** Stores a new revision when the content differs from the latest; otherwise returns the latest. */
  async put(published: PolicyPut): Promise<{ revision: PolicyRevision; changed: boolean } | Failure> {
    const input = this.#completed(published);
    const hash = await contentHash(input);
    const latest = this.#latest;
    if (latest && hash === this.#latestHash) return { revision: latest, changed: false };
    if (isSplitting(this.#rollout)) {
      return { error: "Conflict", detail: `a staged rollout of revision ${this.#rollout.target} is in progress: promote, wait for it, or abort it first` };
    }
    const revision: PolicyRevision = {
      policy_id: input.policyId,
      revision: (latest?.revision ?? 0) + 1,
      name: input.name,
      namespace: input.namespace,
      ...(input.description !== undefined ? { description: input.description } : {}),
      created_at: new Date().toISOString(),
      policy: input.policy,
    };
    await this.#store(revision, hash, true, input.createdBy);
    return { revision, changed: true };
  }

  /**
   * What an admin publishes, with the server's `fleet.hosts` when the policy names none. Part of
   * the content, so a change of `FLEET_SERVER_HOSTS` makes the next publish a new revision.
   */
  #completed<T extends PolicyPut>(input: T): T {
    return { ...input, policy: withFleetHosts(input.policy, fleetConfig(this.env).serverHosts) };
  }

  /** Publishes the content of an earlier revision as a new revision. */
  async rollback(to: number, createdBy: string): Promise<{ revision: PolicyRevision; changed: boolean } | Failure> {
    const old = await this.revision(to);
    if (!old) return { error: "NotFound", detail: `revision ${to} not found` };
    return this.put({
      policyId: old.policy_id,
      createdBy,
      name: old.name,
      namespace: old.namespace,
      ...(old.description !== undefined ? { description: old.description } : {}),
      policy: old.policy,
    });
  }

  /** Deletes the policy, refused while any active agent is assigned to it. */
  async deletePolicy(): Promise<{ deleted: true } | Failure> {
    const assigned = this.#roster.activeCount();
    if (assigned > 0) return { error: "Conflict", detail: `cannot delete an agent policy with ${assigned} active agents; reassign or unenroll them first` };
    const policyId = this.#latest?.policy_id ?? null;
    this.ctx.storage.sql.exec("DELETE FROM revisions; DELETE FROM roster");
    this.#latest = null;
    this.#latestHash = null;
    this.#policyId = policyId;
    await this.#deliverTargets();
    return { deleted: true };
  }

  /** Stores a revision (mirrored unless it came from Elasticsearch) and wakes every check-in behind it. */
  async #store(revision: PolicyRevision, hash: string, mirror: boolean, createdBy: string): Promise<void> {
    this.ctx.storage.sql.exec(
      "INSERT INTO revisions (revision, created_at, content_hash, body, created_by, changed_paths) VALUES (?, ?, ?, ?, ?, ?)",
      revision.revision,
      revision.created_at,
      hash,
      JSON.stringify(revision),
      createdBy,
      changedPaths(this.#latest?.policy ?? {}, revision.policy),
    );
    if (mirror) this.#outbox.add({ index: INDEX.policies, id: policyDocumentId(revision), op: "index", body: policyDocument(revision) });
    this.#latest = revision;
    this.#latestHash = hash;
    const woken = await this.#deliverTargets();
    log.info("policy.revision", { policy_id: revision.policy_id, revision: revision.revision, woken });
  }

  /**
   * Sends every shard the new delivery snapshot; each wakes its parked polls and pushes to its
   * sockets whose agents are behind the revision they should run. Returns how many polls woke.
   */
  async #deliverTargets(): Promise<number> {
    const policyId = this.#latest?.policy_id ?? this.#policyId;
    if (!policyId) return 0;
    const snapshot = await this.snapshot();
    const woken = await Promise.all(hubShards(this.env, policyId).map((shard) => shard.deliver(snapshot)));
    return woken.reduce((sum, n) => sum + n, 0);
  }

  /** What shards need to decide who is behind (also asked for by a shard that restarted). */
  async snapshot(): Promise<DeliverySnapshot> {
    return { latest: this.#latest, previous: isSplitting(this.#rollout) ? this.#previous : null, rollout: this.#rollout };
  }

  /** Roster rows from an agent store's effects: applied in one transaction, idempotently (versions). */
  async applyRoster(policyId: string, changes: RosterChanges): Promise<void> {
    this.#policyId = policyId;
    this.ctx.storage.transactionSync(() => {
      for (const { summary, version } of changes.upserts) this.#roster.upsert(summary, version);
      for (const { agentId, version } of changes.removes) this.#roster.remove(agentId, version);
    });
  }

  #revisionRow(revision: number): PolicyRevision | null {
    const row = this.ctx.storage.sql.exec<{ body: string }>("SELECT body FROM revisions WHERE revision = ?", revision).toArray()[0];
    return row ? (JSON.parse(row.body) as PolicyRevision) : null;
  }

  #saveRollout(rollout: RolloutState): void {
    this.ctx.storage.sql.exec("INSERT INTO rollout (k, body) VALUES (1, ?) ON CONFLICT (k) DO UPDATE SET body = excluded.body", JSON.stringify(rollout));
    this.#rollout = rollout;
    if (!isSplitting(rollout)) this.#previous = null;
  }

  /**
   * Publishes a new revision to the first stage only. Later stages follow as the evaluation
   * (every 10 s, or an admin's `promote`) finds each stage acked and healthy.
   */
  async startRollout(published: PolicyPut & { stages: number[]; criteria: RolloutCriteria }): Promise<RolloutState | Failure> {
    const input = this.#completed(published);
    const latest = this.#latest;
    if (!latest) return { error: "NotFound", detail: `agent policy ${input.policyId} has no revision to roll out from` };
    if (isSplitting(this.#rollout)) return { error: "Conflict", detail: `a staged rollout of revision ${this.#rollout.target} is already in progress` };
    const hash = await contentHash(input);
    if (hash === this.#latestHash) return { error: "Conflict", detail: "the content equals the latest revision: nothing to roll out" };
    const now = new Date().toISOString();
    const revision: PolicyRevision = {
      policy_id: input.policyId,
      revision: latest.revision + 1,
      name: input.name,
      namespace: input.namespace,
      ...(input.description !== undefined ? { description: input.description } : {}),
      created_at: now,
      policy: input.policy,
    };
    this.#previous = latest;
    this.#saveRollout({
      target: revision.revision,
      previous: latest.revision,
      stages: input.stages,
      stage: 0,
      status: "running",
      criteria: input.criteria,
      created_at: now,
      created_by: input.createdBy,
      stage_started_at: now,
      history: [],
    });
    await this.#store(revision, hash, true, input.createdBy);
    await this.#alarms.request(Date.now() + ROLLOUT_EVALUATION_MS);
    return this.#rollout!;
  }

  async stagedRollout(): Promise<(RolloutState & { current: { percent: number; members: number; acked: number; failed: number } }) | null> {
    const rollout = this.#rollout;
    if (!rollout) return null;
    return { ...rollout, current: { percent: rollout.stages[rollout.stage] ?? 100, ...(await this.#stageStats(rollout)) } };
  }

  /** pause, resume, promote (skip the wait), or abort (everyone back to the previous content, as a new revision). */
  async rolloutCommand(command: "pause" | "resume" | "promote" | "abort", by: string): Promise<RolloutState | Failure> {
    const rollout = this.#rollout;
    if (!isSplitting(rollout)) return { error: "Conflict", detail: "no staged rollout is in progress" };
    switch (command) {
      case "pause":
        this.#saveRollout({ ...rollout, status: "paused", reason: `paused by ${by}` });
        break;
      case "resume":
        this.#saveRollout({ ...rollout, status: "running", stage_started_at: new Date().toISOString(), reason: `resumed by ${by}` });
        await this.#alarms.request(Date.now());
        break;
      case "promote":
        await this.#advance(rollout, `promoted by ${by}`);
        break;
      case "abort": {
        const previous = this.#previous ?? this.#revisionRow(rollout.previous);
        this.#saveRollout({ ...rollout, status: "aborted", reason: `aborted by ${by}` });
        if (previous) {
          const revision: PolicyRevision = { ...previous, revision: this.#latest!.revision + 1, created_at: new Date().toISOString() };
          await this.#store(revision, await contentHash(revision), true, by);
        }
        break;
      }
    }
    return this.#rollout!;
  }

  /** One evaluation of a running rollout: promote, complete, hold, or wait. */
  async evaluateRollout(): Promise<RolloutState | null> {
    const rollout = this.#rollout;
    if (!rollout || rollout.status !== "running") return rollout;
    const decision = decide(rollout, await this.#stageStats(rollout), Date.now());
    if (decision.action === "promote" || decision.action === "complete") await this.#advance(rollout, "criteria met");
    if (decision.action === "hold") {
      this.#saveRollout({ ...rollout, status: "held", reason: decision.reason });
      log.warn("rollout.held", { policy_id: this.#latest?.policy_id, reason: decision.reason });
    }
    return this.#rollout;
  }

  async #stageStats(rollout: RolloutState) {
    return this.#roster.stageStats(stageThreshold(rollout), rollout.target, rollout.stage_started_at);
  }

  /** Closes the current stage and opens the next (or completes), delivering to the agents it adds. */
  async #advance(rollout: RolloutState, outcome: string): Promise<void> {
    const now = new Date().toISOString();
    const stats = await this.#stageStats(rollout);
    const history = [
      ...rollout.history,
      { stage: rollout.stage, percent: rollout.stages[rollout.stage] ?? 100, started_at: rollout.stage_started_at, ended_at: now, ...stats, outcome },
    ];
    const last = rollout.stage >= rollout.stages.length - 1;
    this.#saveRollout(
      last
        ? { ...rollout, status: "completed", history, reason: outcome }
        : { ...rollout, stage: rollout.stage + 1, status: "running", stage_started_at: now, history, reason: outcome },
    );
    log.info(last ? "rollout.completed" : "rollout.promoted", { policy_id: this.#latest?.policy_id, stage: this.#rollout!.stage });
    // A promote by hand may come while paused or held, when no evaluation alarm is pending.
    if (!last) await this.#alarms.request(Date.now() + ROLLOUT_EVALUATION_MS);
    await this.#deliverTargets();
  }

  /**
   * Stores a revision Kibana wrote to `.fleet-policies`, under Kibana's own revision number, when it
   * is newer than the latest; older or equal ones (including this server's own mirrored revisions)
   * are ignored. Returns the stored revision, or null.
   */
  async ingestRevision(input: { policyId: string; revision: number; createdAt: string; policy: PolicyContent }): Promise<PolicyRevision | null> {
    const latest = this.#latest;
    if (latest && input.revision <= latest.revision) return null;
    // A revision made in Kibana replaces whatever this server was rolling out.
    if (isSplitting(this.#rollout)) this.#saveRollout({ ...this.#rollout, status: "superseded", reason: `Kibana published revision ${input.revision}` });
    const revision: PolicyRevision = {
      policy_id: input.policyId,
      revision: input.revision,
      name: latest?.name ?? input.policyId,
      namespace: latest?.namespace ?? "default",
      created_at: input.createdAt,
      policy: input.policy,
    };
    await this.#store(revision, await contentHash(revision), false, "kibana");
    return revision;
  }

  async latest(): Promise<PolicyRevision | null> {
    return this.#latest;
  }

  /** Delivers the Elasticsearch outbox and evaluates a running staged rollout. */
  override async alarm(): Promise<void> {
    await this.#alarms.run(async () => {
      await this.#outbox.drain();
      if (this.#rollout?.status === "running") {
        await this.evaluateRollout();
        if (this.#rollout?.status === "running") await this.#alarms.request(Date.now() + ROLLOUT_EVALUATION_MS);
      }
    });
  }

  /** A page of this policy's agents, filtered and sorted in SQLite. */
  async listAgents(policyId: string, query: AgentQuery, offlineAfterMs: number): Promise<{ items: ListedAgent[]; total: number; latestRevision: number }> {
    this.#policyId = policyId;
    const latestRevision = this.#latest?.revision ?? 0;
    return { ...this.#roster.list(policyId, query, { now: Date.now(), offlineAfterMs, latestRevision }), latestRevision };
  }

  async statusCounts(offlineAfterMs: number): Promise<Record<AgentStatus, number> & { total: number }> {
    return this.#roster.counts({ now: Date.now(), offlineAfterMs, latestRevision: this.#latest?.revision ?? 0 });
  }

  /** How far the latest revision has reached: agents per acked revision, and the ones in trouble. */
  async rollout(): Promise<{ latest: number; revisions: Array<{ revision: number; agents: number }>; failing: ListedAgent[] }> {
    const latest = this.#latest?.revision ?? 0;
    return { latest, revisions: this.#roster.revisions(), failing: this.#roster.failing(latest, 100) };
  }

  /** Every revision, oldest first, with its size (for the admin revision history). */
  async revisions(): Promise<Array<{ revision: number; created_at: string; created_by: string; size_bytes: number; changed_paths: number }>> {
    return this.ctx.storage.sql
      .exec<{ revision: number; created_at: string; created_by: string | null; size_bytes: number; changed_paths: number | null }>(
        "SELECT revision, created_at, created_by, length(body) AS size_bytes, changed_paths FROM revisions ORDER BY revision DESC",
      )
      .toArray()
      .map((row) => ({ ...row, created_by: row.created_by ?? "unknown", changed_paths: row.changed_paths ?? 0 }));
  }

  async revision(revision: number): Promise<PolicyRevision | null> {
    const row = this.ctx.storage.sql.exec<{ body: string }>("SELECT body FROM revisions WHERE revision = ?", revision).toArray()[0];
    return row ? (JSON.parse(row.body) as PolicyRevision) : null;
  }
}
