import { DurableObject } from "cloudflare:workers";
import { fleetConfig, type Env } from "../src/config";
import { mirrorMonitorFor } from "../src/durable-stubs";
import { policyDocument, policyDocumentId } from "../src/es/documents";
import { INDEX } from "../src/es/indices";
import { contentHash } from "../src/policy/content-hash";
import { changedPaths } from "../src/policy/diff";
import type { Failure } from "../src/errors";
import { effectiveRevision } from "../src/policy/revision-claim";
import type { PolicyContent, PolicyRevision } from "../src/protocol/policy";
import type { AgentStatus, AgentSummary } from "../src/agents/status";
import type { RevisionClaim } from "./agent";
import { AgentRoster, ROSTER_BUCKET_SCHEMA, ROSTER_SCHEMA, type AgentQuery, type ListedAgent } from "./agent-roster";
import { agentBucket, decide, isSplitting, stageThreshold, type RolloutCriteria, type RolloutState } from "./staged-rollout";
import { EsOutbox, OUTBOX_SCHEMA } from "./es-outbox";
import { SocketChannel, agentTag } from "./socket-channel";
import { TokenBucket } from "../src/limits/token-bucket";
import { migrateSchema } from "./sql-schema";

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
];

/** How often a running staged rollout is evaluated. */
const ROLLOUT_EVALUATION_MS = 10_000;

/** Parked check-ins expire in batches on this grid, so the hub runs one timer, not one per agent. */
const DEADLINE_GRID_MS = 250;
/** How long an action notification is remembered for a check-in that parks just after it. */
const NOTIFICATION_MEMORY_MS = 60_000;
/** Check-in times are written to the roster in batches, like fleet-server's 10 s check-in bulk. */
const SEEN_FLUSH_MS = 10_000;

export type ParkResult =
  | { kind: "policy"; revision: PolicyRevision }
  | { kind: "actions" }
  | { kind: "timeout" }
  /** Admission control: too many check-ins arriving, or parked, in this hub right now. */
  | { kind: "busy"; error: "RateLimit" | "MaxLimit"; retryAfterMs: number };

export interface ParkRequest {
  agentId: string;
  claim: RevisionClaim;
  /** Highest action sequence number the agent's object had when the check-in read it. */
  actionSeq: number;
  holdMs: number;
  /** The agent's roster row, when it changed since the agent's object last pushed it. */
  summary?: AgentSummary;
}

export interface PolicyPut {
  policyId: string;
  /** Who published it (admin key name, "admin-token", or "kibana" for ingested revisions). */
  createdBy: string;
  name: string;
  namespace: string;
  description?: string;
  policy: PolicyContent;
}

interface Waiter {
  agentId: string;
  revision: number;
  bucket: number;
  resolve: (result: ParkResult) => void;
}

/**
 * One agent policy: its immutable revisions, and the check-ins of its agents parked until a new
 * revision or an action for them arrives. A new revision wakes every parked check-in behind it.
 */
export class PolicyHub extends DurableObject<Env> {
  #latest: PolicyRevision | null = null;
  #latestHash: string | null = null;
  /** A staged rollout, and the revision agents outside its current stage keep. */
  #rollout: RolloutState | null = null;
  #previous: PolicyRevision | null = null;
  #waiters = new Map<string, Waiter>();
  #buckets = new Map<number, Set<Waiter>>();
  #timer: ReturnType<typeof setTimeout> | null = null;
  #timerAt = Infinity;
  #notified = new Map<string, { seq: number; at: number }>();
  readonly #outbox: EsOutbox;
  #roster!: AgentRoster;
  #seen = new Map<string, string>();
  #seenTimer: ReturnType<typeof setTimeout> | null = null;
  readonly #sockets: SocketChannel;
  /** Check-ins entering this hub (fleet-server's checkin limiter, per policy here). */
  readonly #admission: TokenBucket;
  readonly #maxParked: number;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const { checkin } = fleetConfig(env).tier;
    this.#admission = new TokenBucket(checkin.ratePerSec, checkin.burst);
    this.#maxParked = checkin.max;
    this.#sockets = new SocketChannel({
      ctx,
      env,
      targetFor: (agentId) => this.#targetFor(agentId),
      rosterUpsert: (summary) => this.#roster.upsert(summary),
      markSeen: (agentId) => this.#markSeen(agentId),
    });
    this.#outbox = new EsOutbox(ctx, env, {
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
  async put(input: PolicyPut): Promise<{ revision: PolicyRevision; changed: boolean } | Failure> {
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
    for (const agentId of [...this.#waiters.keys()]) this.#release(agentId, { kind: "timeout" });
    this.ctx.storage.sql.exec("DELETE FROM revisions; DELETE FROM roster");
    this.#latest = null;
    this.#latestHash = null;
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
    const woken = this.#deliverTargets();
    console.log(JSON.stringify({ event: "policy.revision", policy_id: revision.policy_id, revision: revision.revision, woken }));
  }

  /**
   * Wakes every parked check-in, and pushes to every socket, whose agent is behind the revision it
   * should run (the latest, or during a staged rollout the previous one outside the stage). Sockets
   * are pushed to in the background: publishing never waits for a fan-out.
   */
  #deliverTargets(): number {
    let woken = 0;
    for (const waiter of [...this.#waiters.values()]) {
      const target = this.#targetFor(waiter.agentId);
      if (target && waiter.revision < target.revision && this.#release(waiter.agentId, { kind: "policy", revision: target })) woken++;
    }
    const policyId = this.#latest?.policy_id;
    this.ctx.waitUntil(
      this.#sockets.pushBehind().then(
        (pushed) => console.log(JSON.stringify({ event: "policy.pushed", policy_id: policyId, sockets: pushed })),
        (err: unknown) => console.error(JSON.stringify({ event: "policy.push_failed", error: (err as Error).message })),
      ),
    );
    return woken;
  }

  /** The revision this agent should run: the latest, unless a staged rollout has not reached it yet. */
  #targetFor(agentId: string): PolicyRevision | null {
    const rollout = this.#rollout;
    if (isSplitting(rollout) && this.#previous && agentBucket(agentId) >= stageThreshold(rollout)) return this.#previous;
    return this.#latest;
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
  async startRollout(input: PolicyPut & { stages: number[]; criteria: RolloutCriteria }): Promise<RolloutState | Failure> {
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
    await this.#alarmNoLaterThan(Date.now() + ROLLOUT_EVALUATION_MS);
    return this.#rollout!;
  }

  async stagedRollout(): Promise<(RolloutState & { current: { percent: number; members: number; acked: number; failed: number } }) | null> {
    const rollout = this.#rollout;
    if (!rollout) return null;
    return { ...rollout, current: { percent: rollout.stages[rollout.stage] ?? 100, ...this.#stageStats(rollout) } };
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
        await this.#alarmNoLaterThan(Date.now());
        break;
      case "promote":
        this.#advance(rollout, `promoted by ${by}`);
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
    const decision = decide(rollout, this.#stageStats(rollout), Date.now());
    if (decision.action === "promote" || decision.action === "complete") this.#advance(rollout, "criteria met");
    if (decision.action === "hold") {
      this.#saveRollout({ ...rollout, status: "held", reason: decision.reason });
      console.warn(JSON.stringify({ event: "rollout.held", policy_id: this.#latest?.policy_id, reason: decision.reason }));
    }
    return this.#rollout;
  }

  #stageStats(rollout: RolloutState) {
    this.#flushSeen();
    return this.#roster.stageStats(stageThreshold(rollout), rollout.target, rollout.stage_started_at);
  }

  /** Closes the current stage and opens the next (or completes), delivering to the agents it adds. */
  #advance(rollout: RolloutState, outcome: string): void {
    const now = new Date().toISOString();
    const stats = this.#stageStats(rollout);
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
    console.log(JSON.stringify({ event: last ? "rollout.completed" : "rollout.promoted", policy_id: this.#latest?.policy_id, stage: this.#rollout!.stage }));
    this.#deliverTargets();
  }

  async #alarmNoLaterThan(at: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
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

  /**
   * Answers at once when the agent is behind the latest revision or an action arrived since it
   * looked; otherwise holds the call until one of those happens or `holdMs` passes.
   */
  async park(request: ParkRequest): Promise<ParkResult> {
    if (request.summary) this.#roster.upsert(request.summary);
    this.#markSeen(request.agentId);
    // Admission before any waiting: a storm is refused at a sustainable rate, not queued.
    if (this.#waiters.size >= this.#maxParked && !this.#waiters.has(request.agentId)) {
      return { kind: "busy", error: "MaxLimit", retryAfterMs: 30_000 };
    }
    const admitted = this.#admission.take();
    if (!admitted.ok) return { kind: "busy", error: "RateLimit", retryAfterMs: admitted.retryAfterMs };
    const target = this.#targetFor(request.agentId);
    const revision = effectiveRevision(request.claim, target?.policy_id ?? "", target?.revision ?? null);
    if (target && target.revision > revision) return { kind: "policy", revision: target };
    const notified = this.#notified.get(request.agentId);
    if (notified && notified.seq > request.actionSeq) return { kind: "actions" };

    // One parked check-in per agent: a newer one supersedes a stale one (e.g. after a reconnect).
    this.#release(request.agentId, { kind: "timeout" });
    return new Promise<ParkResult>((resolve) => {
      const bucket = Math.ceil((Date.now() + request.holdMs) / DEADLINE_GRID_MS) * DEADLINE_GRID_MS;
      const waiter: Waiter = { agentId: request.agentId, revision, bucket, resolve };
      this.#waiters.set(request.agentId, waiter);
      let set = this.#buckets.get(bucket);
      if (!set) this.#buckets.set(bucket, (set = new Set()));
      set.add(waiter);
      this.#schedule(bucket);
    });
  }

  /** An action was stored for the agent: release its parked check-in, or remember for the next one. */
  async notifyActions(agentId: string, seq: number): Promise<boolean> {
    if (await this.#sockets.pushActions(agentId)) return true;
    this.#notified.set(agentId, { seq, at: Date.now() });
    return this.#release(agentId, { kind: "actions" });
  }

  /** Closes the agent's socket (it was unenrolled or revoked elsewhere). */
  async disconnect(agentId: string, code: number, reason: string): Promise<void> {
    for (const ws of this.ctx.getWebSockets(agentTag(agentId))) ws.close(code, reason);
  }

  /** Takes over an agent's authenticated WebSocket upgrade (forwarded by the Worker). */
  override async fetch(request: Request): Promise<Response> {
    const agentId = request.headers.get("X-Fleet-Agent-Id");
    const connection = request.headers.get("X-Fleet-Connection");
    if (!agentId || !connection || request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return new Response("policy hubs accept only forwarded agent WebSockets", { status: 400 });
    }
    // The socket replaces a parked long poll of the same agent.
    this.#release(agentId, { kind: "timeout" });
    return this.#sockets.accept(agentId, connection, request.headers.get("X-Fleet-Agent-Version") ?? "");
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    await this.#sockets.message(ws, message);
  }

  override async webSocketClose(ws: WebSocket): Promise<void> {
    await this.#sockets.closed(ws);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    await this.#sockets.closed(ws);
  }

  /** Delivers the Elasticsearch outbox and evaluates a running staged rollout. */
  override async alarm(): Promise<void> {
    await this.#outbox.drain();
    if (this.#rollout?.status === "running") {
      await this.evaluateRollout();
      if (this.#rollout?.status === "running") await this.#alarmNoLaterThan(Date.now() + ROLLOUT_EVALUATION_MS);
    }
  }

  /** Adds or refreshes an agent's roster row (enrollment, acks, admin changes). */
  async upsertAgent(summary: AgentSummary): Promise<void> {
    this.#roster.upsert(summary);
  }

  /** Removes an agent that left this policy (reassigned), ending its parked check-in so it re-checks in. */
  async removeAgent(agentId: string): Promise<void> {
    this.#seen.delete(agentId);
    this.#roster.remove(agentId);
    this.#release(agentId, { kind: "timeout" });
  }

  /** A page of this policy's agents, filtered and sorted in SQLite. */
  async listAgents(policyId: string, query: AgentQuery, offlineAfterMs: number): Promise<{ items: ListedAgent[]; total: number; latestRevision: number }> {
    this.#flushSeen();
    const latestRevision = this.#latest?.revision ?? 0;
    return { ...this.#roster.list(policyId, query, { now: Date.now(), offlineAfterMs, latestRevision }), latestRevision };
  }

  async statusCounts(offlineAfterMs: number): Promise<Record<AgentStatus, number> & { total: number }> {
    this.#flushSeen();
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

  #markSeen(agentId: string): void {
    this.#seen.set(agentId, new Date().toISOString());
    this.#seenTimer ??= setTimeout(() => this.#flushSeen(), SEEN_FLUSH_MS);
  }

  #flushSeen(): void {
    if (this.#seenTimer) clearTimeout(this.#seenTimer);
    this.#seenTimer = null;
    if (this.#seen.size === 0) return;
    const seen = this.#seen;
    this.#seen = new Map();
    this.ctx.storage.transactionSync(() => this.#roster.touch(seen));
  }

  /** Number of check-ins parked here (for tests and the admin overview). */
  async parkedCount(): Promise<number> {
    return this.#waiters.size;
  }

  #release(agentId: string, result: ParkResult): boolean {
    const waiter = this.#waiters.get(agentId);
    if (!waiter) return false;
    this.#waiters.delete(agentId);
    const set = this.#buckets.get(waiter.bucket);
    set?.delete(waiter);
    if (set?.size === 0) this.#buckets.delete(waiter.bucket);
    waiter.resolve(result);
    return true;
  }

  #schedule(at: number): void {
    if (at >= this.#timerAt) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#expire(), Math.max(0, at - Date.now()));
  }

  #expire(): void {
    this.#timer = null;
    this.#timerAt = Infinity;
    const now = Date.now();
    for (const [bucket, set] of [...this.#buckets]) {
      if (bucket > now) continue;
      for (const waiter of [...set]) this.#release(waiter.agentId, { kind: "timeout" });
    }
    for (const [agentId, note] of this.#notified) {
      if (now - note.at > NOTIFICATION_MEMORY_MS) this.#notified.delete(agentId);
    }
    const next = Math.min(...this.#buckets.keys());
    if (Number.isFinite(next)) this.#schedule(next);
  }
}
