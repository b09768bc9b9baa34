import { DurableObject } from "cloudflare:workers";
import { fleetConfig, type Env } from "../src/config";
import { hubShards, mirrorMonitorFor } from "../src/durable-stubs";
import { shardCountFor } from "../src/checkin/shard-count";
import { policyDocument, policyDocumentId } from "../src/es/documents";
import { INDEX } from "../src/es/indices";
import { contentHash } from "../src/policy/content-hash";
import { changedPaths } from "../src/policy/diff";
import { withFleetHosts } from "../src/policy/fleet-hosts";
import type { Failure } from "../src/errors";
import { log, useLogSettings } from "../src/log";
import type { PolicyContent, PolicyRevision } from "../src/protocol/policy";
import type { AgentQuery, ListedAgent } from "../src/admin/agent-query";
import type { PolicyGlance } from "../src/admin/fleet-overview";
import type { DeliverySnapshot } from "../src/checkin/shard-contract";
import type { RolloutState } from "../src/policy/staged-rollout";
import type { RosterChanges } from "../src/agents/effects";
import type { CheckinBatch } from "../src/agents/checkin-rate";
import { AlarmSchedule } from "./alarm-schedule";
import { AgentRoster, ROSTER_BUCKET_SCHEMA, ROSTER_COUNT_TRIGGERS_SCHEMA, ROSTER_COUNTS_SCHEMA, ROSTER_SCHEMA, ROSTER_TOUCH_JOURNAL_SCHEMA, ROSTER_TYPE_SCHEMA, ROSTER_UNINDEXED_CHECKIN_SCHEMA, ROSTER_VERSION_SCHEMA, type StatusCounts } from "./agent-roster";
import { CheckinCounts, CHECKIN_COUNTS_SCHEMA, CHECKIN_SOURCES_SCHEMA } from "./checkin-counts";
import { CoalescedRun } from "./coalesced-run";
import { ConsoleWatch } from "./console-watch";
import { EsOutbox, OUTBOX_SCHEMA } from "./es-outbox";
import { RolloutControl, type RolloutCommand, type RolloutProgress, type RolloutStart } from "./rollout-control";
import { ROLLOUT_SAMPLES_SCHEMA } from "./rollout-samples";
import { ROSTER_LAYOUT_SCHEMA, ShardedRoster } from "./sharded-roster";
import { migrateSchema } from "./sql-schema";
import { WriteLock } from "./write-lock";

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
  ROSTER_TYPE_SCHEMA,
  ROSTER_COUNTS_SCHEMA,
  ROSTER_LAYOUT_SCHEMA,
  CHECKIN_COUNTS_SCHEMA,
  ROLLOUT_SAMPLES_SCHEMA,
  ROSTER_COUNT_TRIGGERS_SCHEMA,
  ROSTER_UNINDEXED_CHECKIN_SCHEMA,
  CHECKIN_SOURCES_SCHEMA,
  ROSTER_TOUCH_JOURNAL_SCHEMA,
];

/** Stored under FANOUT_KEY; see `PolicyHub.#fanout`. */
interface Fanout {
  shards: number;
  reach: number;
}
const FANOUT_KEY = "fanout";
/** The roster is counted for the shard count at most this often (its counters: one call per roster shard). */
const FANOUT_CHECK_MS = 10_000;

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
 * One agent policy: its immutable revisions, its staged rollout (`RolloutControl`), and the roster
 * of its agents (`ShardedRoster`: in the hub, or for a large policy spread over roster shards with
 * the hub's own part one of them). The agents' parked polls and sockets live in the policy's fan-out shards
 * (`HubShard`, as many as the roster needs or `POLICY_HUB_SHARDS` fixes; an agent belongs to the shard its id hashes to): every
 * change is sent to each shard as a delivery snapshot, and each shard wakes its own agents. Agent
 * stores send roster rows as effects (`applyRoster`).
 *
 * Every step that changes revisions or the rollout (publish, rollback, delete, ingest, rollout
 * start, commands and evaluation) runs under one write lock: such a step reads the latest revision,
 * awaits (a hash, the alarm), then writes `latest + 1`, and two overlapping steps would
 * collide on that number or write a rollout from a stale read. Deliveries to the shards happen
 * after the lock is released, one at a time, each carrying the state current when it starts.
 */
export class PolicyHub extends DurableObject<Env> {
  #latest: PolicyRevision | null = null;
  #latestHash: string | null = null;
  readonly #rollouts: RolloutControl;
  readonly #outbox: EsOutbox;
  readonly #alarms: AlarmSchedule;
  /** The hub's own part of the roster (all of it when the policy has one roster shard). */
  #roster!: AgentRoster;
  #rosters!: ShardedRoster;
  #checkins!: CheckinCounts;
  /** Pushes what the console's overview shows of this policy while a console is open. */
  readonly #watch: ConsoleWatch;
  /** This policy's id before its first revision exists (learned from calls that carry it). */
  #policyId: string | null = null;
  readonly #writes = new WriteLock();
  readonly #deliveries = new CoalescedRun(() => this.#deliverTargets());
  /** Set by a write step that changed what the shards see; the step's end requests a delivery. */
  #deliveryDue = false;
  /**
   * The policy's fan-out shard count, and how many shards the next delivery must reach: after a
   * shrink, the shards no longer in the set too, so they move their agents (docs/scale.md §4).
   */
  #fanout: Fanout = { shards: 1, reach: 1 };
  #fanoutCheckAt = 0;
  /** A roster change came within FANOUT_CHECK_MS of the last count: the alarm counts again. */
  #fanoutDeferred = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    useLogSettings(env);
    this.#alarms = new AlarmSchedule(ctx.storage);
    this.#outbox = new EsOutbox(ctx, env, {
      wake: (at) => this.#alarms.request(at),
      flushDelayMs: fleetConfig(env).mirrorFlushMs,
      report: (backlog) => {
        const owner = `policy:${this.#latest?.policy_id ?? ctx.id.toString()}`;
        return mirrorMonitorFor(env, owner).report(owner, backlog);
      },
    });
    this.#rollouts = new RolloutControl(ctx.storage, {
      latest: () => this.#latest,
      latestHash: () => this.#latestHash,
      revision: (revision) => this.#revisionRow(revision),
      publish: (content, hash) => this.#publish(content, hash),
      redeliver: () => {
        this.#deliveryDue = true;
      },
      stageStats: (threshold, target, since) => this.#rosters.stageStats(this.#policy(), threshold, target, since),
      wakeAt: (at) => this.#alarms.request(at),
    });
    this.#watch = new ConsoleWatch(env, {
      policyId: () => this.#policy(),
      glance: () => this.#glance(),
      nextStatusChange: (now) => {
        // The hub's own part of the roster (all of it unless the policy has roster shards).
        const { offlineAfterMs } = fleetConfig(env);
        const oldest = this.#roster.oldestLiveCheckin(new Date(Math.max(0, now - offlineAfterMs)).toISOString());
        // Offline once strictly older than the cutoff: the first millisecond after the window.
        return oldest === null ? null : Date.parse(oldest) + offlineAfterMs + 1;
      },
      wakeAt: (at) => this.#alarms.request(at),
    });
    // The runtime delivers no event until this settles and resets the object if it throws.
    void ctx.blockConcurrencyWhile(async () => {
      migrateSchema(ctx.storage, SCHEMA);
      this.#roster = new AgentRoster(ctx.storage.sql);
      this.#roster.prepare();
      this.#rosters = new ShardedRoster(ctx.storage.sql, env, this.#roster);
      this.#checkins = new CheckinCounts(ctx.storage.sql);
      const row = ctx.storage.sql
        .exec<{ body: string; content_hash: string }>("SELECT body, content_hash FROM revisions ORDER BY revision DESC LIMIT 1")
        .toArray()[0];
      this.#latest = row ? (JSON.parse(row.body) as PolicyRevision) : null;
      this.#latestHash = row?.content_hash ?? null;
      this.#rollouts.load();
      await this.#loadFanout();
    });
  }

  /**
   * Runs `step` under the write lock, then (outside it, so the next step need not wait for the
   * shards) waits until the shards got a snapshot at least as new as the one the step left, when
   * the step changed what they see.
   */
  async #write<T>(step: () => Promise<T>): Promise<T> {
    const pending: { delivery?: Promise<number> } = {};
    try {
      return await this.#writes.run(async () => {
        this.#deliveryDue = false;
        const rollout = this.#rollouts.state;
        try {
          return await step();
        } finally {
          // Revisions and the rollout are part of the console's overview (each write of the rollout is a new object).
          const changed = this.#deliveryDue || this.#rollouts.state !== rollout;
          if (this.#deliveryDue) pending.delivery = this.#deliveries.request();
          this.#deliveryDue = false;
          if (changed) await this.#watch.changed();
        }
      });
    } finally {
      if (pending.delivery) await pending.delivery;
    }
  }

  /** Stores a new revision when the content differs from the latest; otherwise returns the latest. */
  async put(published: PolicyPut): Promise<{ revision: PolicyRevision; changed: boolean } | Failure> {
    const input = this.#completed(published);
    return this.#write(() => this.#put(input));
  }

  async #put(input: PolicyPut): Promise<{ revision: PolicyRevision; changed: boolean } | Failure> {
    const hash = await contentHash(input);
    const latest = this.#latest;
    if (latest && hash === this.#latestHash) return { revision: latest, changed: false };
    const blocked = this.#rollouts.blocksPublish();
    if (blocked) return blocked;
    return { revision: this.#publish(input, hash), changed: true };
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
    return this.#write(async () => {
      const old = this.#revisionRow(to);
      if (!old) return { error: "NotFound", detail: `revision ${to} not found` };
      return this.#put(
        this.#completed({
          policyId: old.policy_id,
          createdBy,
          name: old.name,
          namespace: old.namespace,
          ...(old.description !== undefined ? { description: old.description } : {}),
          policy: old.policy,
        }),
      );
    });
  }

  /** Deletes the policy, refused while any active agent is assigned to it. */
  async deletePolicy(): Promise<{ deleted: true } | Failure> {
    return this.#write(async () => {
      const policyId = this.#policy();
      const assigned = await this.#rosters.activeCount(policyId);
      if (assigned > 0) return { error: "Conflict", detail: `cannot delete an agent policy with ${assigned} active agents; reassign or unenroll them first` };
      await this.#rosters.dropInactive(policyId);
      this.ctx.storage.sql.exec("DELETE FROM revisions");
      this.#latest = null;
      this.#latestHash = null;
      this.#policyId = policyId;
      this.#deliveryDue = true;
      return { deleted: true };
    });
  }

  /** Stores `content` as the next revision, mirrored. Only from a write step. */
  #publish(content: PolicyPut, hash: string): PolicyRevision {
    const revision: PolicyRevision = {
      policy_id: content.policyId,
      revision: (this.#latest?.revision ?? 0) + 1,
      name: content.name,
      namespace: content.namespace,
      ...(content.description !== undefined ? { description: content.description } : {}),
      created_at: new Date().toISOString(),
      policy: content.policy,
    };
    this.#store(revision, hash, true, content.createdBy);
    return revision;
  }

  /** Stores a revision (mirrored unless it came from Elasticsearch); the step's end wakes every check-in behind it. */
  #store(revision: PolicyRevision, hash: string, mirror: boolean, createdBy: string): void {
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
    this.#deliveryDue = true;
    log.info("policy.revision", { policy_id: revision.policy_id, revision: revision.revision, created_by: createdBy });
  }

  /**
   * Sends every shard the current delivery snapshot; each wakes its parked polls and pushes to its
   * sockets whose agents are behind the revision they should run. Returns how many polls woke.
   * Runs through `#deliveries` only, so no two sends overlap and shards never see an older state
   * after a newer one.
   */
  async #deliverTargets(): Promise<number> {
    const policyId = this.#policy();
    if (!policyId) return 0;
    const snapshot = await this.snapshot();
    const { reach } = this.#fanout;
    const woken = (await Promise.all(hubShards(this.env, policyId, Math.max(reach, snapshot.shards)).map((shard, index) => shard.deliver(policyId, snapshot, index)))).reduce(
      (sum, n) => sum + n,
      0,
    );
    if (reach !== snapshot.shards && this.#fanout.shards === snapshot.shards) await this.#storeFanout({ shards: snapshot.shards, reach: snapshot.shards });
    log.info("policy.delivered", { policy_id: policyId, revision: snapshot.latest?.revision ?? null, shards: snapshot.shards, woken });
    return woken;
  }

  /** What shards need to decide who is behind (also asked for by a shard that restarted). */
  async snapshot(): Promise<DeliverySnapshot> {
    return { latest: this.#latest, previous: this.#rollouts.previous, rollout: this.#rollouts.state, shards: this.#fanout.shards };
  }

  /**
   * The stored count, or for a hub from before per-policy counts one from its roster, reaching every
   * shard the largest count could have used (its agents may sit in any). A fixed count that an
   * operator changed applies at once, delivered to the old shards and the new.
   */
  async #loadFanout(): Promise<void> {
    const config = fleetConfig(this.env).hubShards;
    const stored = await this.ctx.storage.get<Fanout>(FANOUT_KEY);
    if (!stored) {
      // Estimated from the hub's own roster part (roster shards hold equal shares); the first count after a roster change corrects it.
      const local = this.#roster.activeCount();
      const agents = local > 0 ? local * this.#rosters.count() : 0;
      const shards = shardCountFor(config, agents, 1);
      this.#fanout = { shards, reach: agents > 0 ? Math.max(shards, config.max) : shards };
      return;
    }
    this.#fanout = stored;
    if (config.fixed === null || stored.shards === config.fixed) return;
    await this.#storeFanout({ shards: config.fixed, reach: Math.max(stored.reach, stored.shards, config.fixed) });
    // Not awaited: the runtime holds every call until the constructor's block ends.
    void this.#deliveries.request().catch((err: unknown) => log.error("policy.deliver_failed", { error: (err as Error).message }));
  }

  /**
   * Counts the roster (its counters, over every roster shard; at most every FANOUT_CHECK_MS, later
   * on the alarm) and, when the policy
   * crossed a power of two of POLICY_HUB_SHARD_AGENTS, changes its shard count and delivers it.
   */
  async #checkFanout(now = Date.now()): Promise<void> {
    const config = fleetConfig(this.env).hubShards;
    if (config.fixed !== null && this.#fanout.shards === config.fixed && this.#fanout.reach === config.fixed) return;
    if (now < this.#fanoutCheckAt) {
      if (!this.#fanoutDeferred) await this.#alarms.request(this.#fanoutCheckAt);
      this.#fanoutDeferred = true;
      return;
    }
    this.#fanoutDeferred = false;
    this.#fanoutCheckAt = Date.now() + FANOUT_CHECK_MS;
    const shards = shardCountFor(config, await this.#rosters.activeCount(this.#policy()), this.#fanout.shards);
    if (shards === this.#fanout.shards) return;
    log.info("policy.shards", { policy_id: this.#policy(), from: this.#fanout.shards, to: shards });
    await this.#storeFanout({ shards, reach: Math.max(this.#fanout.reach, this.#fanout.shards, shards) });
    this.ctx.waitUntil(this.#deliveries.request().catch((err: unknown) => log.error("policy.deliver_failed", { error: (err as Error).message })));
  }

  async #storeFanout(fanout: Fanout): Promise<void> {
    this.#fanout = fanout;
    await this.ctx.storage.put(FANOUT_KEY, fanout);
  }

  /**
   * How many roster shards this policy has (fixed for its life): agent stores ask once per policy
   * and send each agent's rows to shard `rosterShardIndexOf(agentId, count)`, 0 being this hub.
   */
  async rosterShards(policyId: string): Promise<number> {
    this.#policyId = policyId;
    return this.#rosters.count();
  }

  /**
   * Roster rows of the hub's own part from an agent store's effects, with the check-in counts of
   * the store's flush: one transaction, idempotent (versions, batch ids).
   */
  async applyRoster(policyId: string, changes: RosterChanges, checkins: CheckinBatch[] = []): Promise<void> {
    this.#policyId = policyId;
    this.ctx.storage.transactionSync(() => {
      this.#roster.apply(changes);
      if (checkins.length > 0) this.#checkins.add(checkins, Date.now());
    });
    // The hub's own part sees a share of the policy's enrollments and removals: enough to notice growth.
    if (changes.upserts.length + changes.removes.length > 0) await this.#checkFanout();
    await this.#watch.changed();
  }

  /** Check-in counts from agent stores' flushes written before they rode `applyRoster`; a batch already counted is ignored. */
  async countCheckins(batches: CheckinBatch[]): Promise<void> {
    const changed = this.ctx.storage.transactionSync(() => this.#checkins.add(batches, Date.now()));
    if (changed) await this.#watch.changed();
  }

  /** This policy's id, once a revision or a call told it. */
  #policy(): string | null {
    return this.#latest?.policy_id ?? this.#policyId;
  }

  #revisionRow(revision: number): PolicyRevision | null {
    const row = this.ctx.storage.sql.exec<{ body: string }>("SELECT body FROM revisions WHERE revision = ?", revision).toArray()[0];
    return row ? (JSON.parse(row.body) as PolicyRevision) : null;
  }

  /**
   * Publishes a new revision to the first stage only. Later stages follow as the evaluation
   * (every 10 s, or an admin's `promote`) finds each stage acked and healthy.
   */
  async startRollout(published: RolloutStart): Promise<RolloutProgress | Failure> {
    const input = this.#completed(published);
    return this.#write(() => this.#rollouts.start(input));
  }

  async stagedRollout(): Promise<RolloutProgress | null> {
    return this.#rollouts.progress();
  }

  /** pause, resume, promote (skip the wait), or abort (everyone back to the previous content, as a new revision). */
  async rolloutCommand(command: RolloutCommand, by: string): Promise<RolloutProgress | Failure> {
    return this.#write(() => this.#rollouts.command(command, by));
  }

  /** One evaluation of a running rollout: promote, complete, hold, or wait. */
  async evaluateRollout(): Promise<RolloutState | null> {
    return this.#write(() => this.#rollouts.evaluate());
  }

  /**
   * Stores a revision Kibana wrote to `.fleet-policies`, under Kibana's own revision number, when it
   * is newer than the latest; older or equal ones (including this server's own mirrored revisions)
   * are ignored. Returns the stored revision, or null.
   */
  async ingestRevision(input: { policyId: string; revision: number; createdAt: string; policy: PolicyContent }): Promise<PolicyRevision | null> {
    return this.#write(async () => {
      const latest = this.#latest;
      if (latest && input.revision <= latest.revision) return null;
      // A revision made in Kibana replaces whatever this server was rolling out.
      this.#rollouts.supersede(`Kibana published revision ${input.revision}`);
      const revision: PolicyRevision = {
        policy_id: input.policyId,
        revision: input.revision,
        name: latest?.name ?? input.policyId,
        namespace: latest?.namespace ?? "default",
        created_at: input.createdAt,
        policy: input.policy,
      };
      this.#store(revision, await contentHash(revision), false, "kibana");
      return revision;
    });
  }

  async latest(): Promise<PolicyRevision | null> {
    return this.#latest;
  }

  /** Delivers the Elasticsearch outbox and evaluates a running staged rollout. */
  override async alarm(): Promise<void> {
    await this.#alarms.run(async () => {
      await this.#outbox.drain();
      // The deferred count, now (the alarm was set for the end of the window, or runs early for the outbox).
      if (this.#fanoutDeferred) await this.#checkFanout(Infinity);
      await this.#write(() => this.#rollouts.onAlarm());
      await this.#watch.onAlarm();
    });
  }

  /** A page of this policy's agents, filtered and sorted in SQLite. */
  async listAgents(policyId: string, query: AgentQuery, offlineAfterMs: number): Promise<{ items: ListedAgent[]; total: number; latestRevision: number } | Failure> {
    this.#policyId = policyId;
    const latestRevision = this.#latest?.revision ?? 0;
    const page = await this.#rosters.list(policyId, query, { now: Date.now(), offlineAfterMs, latestRevision });
    return "error" in page ? page : { ...page, latestRevision };
  }

  async statusCounts(policyId: string, offlineAfterMs: number): Promise<StatusCounts> {
    this.#policyId = policyId;
    return this.#rosters.counts(policyId, { now: Date.now(), offlineAfterMs, latestRevision: this.#latest?.revision ?? 0 });
  }

  /**
   * What the console's overview needs from this policy, in one call: counts by status, agents by
   * version, check-ins per minute, and where a staged rollout stands. `watchUntil`: the console's
   * feed asks for this policy's changes to be pushed to it until then (durable/console-watch.ts).
   */
  async glance(policyId: string, watchUntil = 0): Promise<PolicyGlance> {
    this.#policyId = policyId;
    await this.#watch.watched(watchUntil);
    return this.#glance();
  }

  async #glance(): Promise<PolicyGlance> {
    const now = Date.now();
    const latestRevision = this.#latest?.revision ?? 0;
    const overview = await this.#rosters.overview(this.#policy(), { now, offlineAfterMs: fleetConfig(this.env).offlineAfterMs, latestRevision });
    const rollout = this.#rollouts.state;
    return {
      ...overview,
      revision: latestRevision,
      checkins: this.#checkins.recent(now),
      rollout: rollout ? { status: rollout.status, stage: rollout.stage, target: rollout.target } : null,
    };
  }

  /** How far the latest revision has reached: agents per acked revision, and the ones in trouble. */
  async rollout(): Promise<{ latest: number; revisions: Array<{ revision: number; agents: number }>; failing: ListedAgent[] }> {
    const latest = this.#latest?.revision ?? 0;
    return { latest, ...(await this.#rosters.progress(this.#policy(), latest, 100)) };
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

  /** Revision `revision`, who published it, and the revision stored before it (for a revision's diff). */
  async revisionWithPrevious(revision: number): Promise<{ current: PolicyRevision; createdBy: string; previous: PolicyRevision | null } | null> {
    const rows = this.ctx.storage.sql
      .exec<{ body: string; created_by: string | null }>("SELECT body, created_by FROM revisions WHERE revision <= ? ORDER BY revision DESC LIMIT 2", revision)
      .toArray();
    const current = rows[0] ? (JSON.parse(rows[0].body) as PolicyRevision) : null;
    if (!current || current.revision !== revision) return null;
    return { current, createdBy: rows[0]!.created_by ?? "unknown", previous: rows[1] ? (JSON.parse(rows[1].body) as PolicyRevision) : null };
  }

  async revision(revision: number): Promise<PolicyRevision | null> {
    const row = this.ctx.storage.sql.exec<{ body: string }>("SELECT body FROM revisions WHERE revision = ?", revision).toArray()[0];
    return row ? (JSON.parse(row.body) as PolicyRevision) : null;
  }
}
