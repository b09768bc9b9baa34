import { DurableObject } from "cloudflare:workers";
import type { AgentSummary } from "../src/agents/status";
import { fleetConfig, type Env } from "../src/config";
import { policyHub } from "../src/durable-stubs";
import { TokenBucket } from "../src/limits/token-bucket";
import { effectiveRevision } from "../src/policy/revision-claim";
import type { PolicyRevision } from "../src/protocol/policy";
import { CLOSE, PING, PONG } from "../src/protocol/socket";
import { refOf, sameRevision, type RevisionRef } from "../src/checkin/revision-cache";
import type { RevisionClaim } from "./agent";
import { SocketChannel } from "./socket-channel";
import { agentBucket, isSplitting, stageThreshold, type RolloutState } from "./staged-rollout";

/** Parked check-ins expire in batches on this grid, so a shard runs one timer, not one per agent. */
const DEADLINE_GRID_MS = 250;
/** How long an action notification is remembered for a check-in that parks just after it. */
const NOTIFICATION_MEMORY_MS = 60_000;
/** Roster changes seen here reach the policy hub in batches (fleet-server batches check-ins for 10 s). */
const ROSTER_FLUSH_MS = 2_000;

export type ParkResult =
  /** The revision to run, as JSON, or only its name when the caller said it holds that revision. */
  | { kind: "policy"; ref: RevisionRef; json?: string }
  | { kind: "actions" }
  | { kind: "timeout" }
  /** Admission control: too many check-ins arriving, or parked, in this shard right now. */
  | { kind: "busy"; error: "RateLimit" | "MaxLimit"; retryAfterMs: number };

export interface ParkRequest {
  agentId: string;
  claim: RevisionClaim;
  /** Highest action sequence number the agent's store had when the check-in read it. */
  actionSeq: number;
  holdMs: number;
  /** The agent's roster row, when it changed since the agent's store last pushed it. */
  summary?: AgentSummary;
  /** The revision of this policy the calling isolate already holds (src/checkin/revision-cache.ts). */
  known?: RevisionRef;
}

/** What a shard needs from its policy hub to decide who is behind: sent on every change. */
export interface DeliverySnapshot {
  latest: PolicyRevision | null;
  previous: PolicyRevision | null;
  rollout: RolloutState | null;
}

/** Roster changes a shard collected for its policy hub. */
export interface RosterBatch {
  upserts: AgentSummary[];
  seen: Array<[agentId: string, at: string]>;
}

interface Waiter {
  agentId: string;
  revision: number;
  known?: RevisionRef;
  bucket: number;
  resolve: (result: ParkResult) => void;
}

/**
 * One fan-out shard of a policy (`<policy id>#<n>`): holds the parked long polls and hibernating
 * sockets of the agents that hash to it, and wakes or pushes to them when its policy hub sends a
 * new delivery snapshot. It keeps nothing durable: the hub owns revisions, the rollout and the
 * roster, and a shard that restarts asks the hub for the snapshot again.
 */
export class HubShard extends DurableObject<Env> {
  #snapshot: DeliverySnapshot | null = null;
  /** Learned from the first call (shards are named `<policy id>#<n>`, but names are not readable back). */
  #policyId: string | null = null;
  #waiters = new Map<string, Waiter>();
  #buckets = new Map<number, Set<Waiter>>();
  #timer: ReturnType<typeof setTimeout> | null = null;
  #timerAt = Infinity;
  #notified = new Map<string, { seq: number; at: number }>();
  #upserts = new Map<string, AgentSummary>();
  #seen = new Map<string, string>();
  #flushTimer: ReturnType<typeof setTimeout> | null = null;
  /** Each revision serialised once, not once per answer: an RPC clones a string far more cheaply than an object tree. */
  #serialized = new WeakMap<PolicyRevision, string>();
  readonly #sockets: SocketChannel;
  readonly #admission: TokenBucket;
  readonly #maxParked: number;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const { tier, hubShards } = fleetConfig(env);
    // The tier is fleet-server's per-process limit; each of a policy's shards takes its share.
    this.#admission = new TokenBucket(tier.checkin.ratePerSec / hubShards, Math.max(1, tier.checkin.burst / hubShards));
    this.#maxParked = Math.ceil(tier.checkin.max / hubShards);
    // Keepalive pings are answered by the runtime: a socket's heartbeat never wakes the shard.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING, PONG));
    this.#sockets = new SocketChannel({
      ctx,
      env,
      targetFor: (agentId) => this.#targetFor(agentId),
      rosterUpsert: (summary) => this.#queue(summary),
      markSeen: (agentId) => this.#markSeen(agentId),
    });
  }

  /**
   * Answers at once when the agent is behind the revision it should run or an action arrived since
   * it looked; otherwise holds the call until one of those happens or `holdMs` passes.
   */
  async park(policyId: string, request: ParkRequest): Promise<ParkResult> {
    this.#policyId = policyId;
    if (request.summary) this.#queue(request.summary);
    this.#markSeen(request.agentId);
    // Admission before any waiting: a storm is refused at a sustainable rate, not queued.
    if (this.#waiters.size >= this.#maxParked && !this.#waiters.has(request.agentId)) {
      return { kind: "busy", error: "MaxLimit", retryAfterMs: 30_000 };
    }
    const admitted = this.#admission.take();
    if (!admitted.ok) return { kind: "busy", error: "RateLimit", retryAfterMs: admitted.retryAfterMs };
    await this.#ensureSnapshot(policyId);
    const target = this.#targetFor(request.agentId);
    const revision = effectiveRevision(request.claim, target?.policy_id ?? "", target?.revision ?? null);
    if (target && target.revision > revision) return this.#policyAnswer(target, request.known);
    const notified = this.#notified.get(request.agentId);
    if (notified && notified.seq > request.actionSeq) return { kind: "actions" };

    // One parked check-in per agent: a newer one supersedes a stale one (e.g. after a reconnect).
    this.#release(request.agentId, { kind: "timeout" });
    return new Promise<ParkResult>((resolve) => {
      const bucket = Math.ceil((Date.now() + request.holdMs) / DEADLINE_GRID_MS) * DEADLINE_GRID_MS;
      const waiter: Waiter = { agentId: request.agentId, revision, bucket, resolve, ...(request.known ? { known: request.known } : {}) };
      this.#waiters.set(request.agentId, waiter);
      let set = this.#buckets.get(bucket);
      if (!set) this.#buckets.set(bucket, (set = new Set()));
      set.add(waiter);
      this.#schedule(bucket);
    });
  }

  /** The policy changed (new revision, rollout step): wake and push to every agent now behind. */
  async deliver(snapshot: DeliverySnapshot): Promise<number> {
    this.#snapshot = snapshot;
    if (snapshot.latest) this.#policyId = snapshot.latest.policy_id;
    let woken = 0;
    for (const waiter of [...this.#waiters.values()]) {
      const target = this.#targetFor(waiter.agentId);
      if (target && waiter.revision < target.revision && this.#release(waiter.agentId, this.#policyAnswer(target, waiter.known))) woken++;
    }
    // Sockets are pushed to in the background: publishing never waits for a socket fan-out.
    this.ctx.waitUntil(
      this.#sockets.pushBehind().then(
        (pushed) => pushed > 0 && console.log(JSON.stringify({ event: "policy.pushed", policy_id: snapshot.latest?.policy_id, sockets: pushed })),
        (err: unknown) => console.error(JSON.stringify({ event: "policy.push_failed", error: (err as Error).message })),
      ),
    );
    return woken;
  }

  /** An action was stored for the agent: push it on the socket, release the parked check-in, or remember it. */
  async notifyActions(agentId: string, seq: number): Promise<boolean> {
    if (await this.#sockets.pushActions(agentId)) return true;
    this.#notified.set(agentId, { seq, at: Date.now() });
    return this.#release(agentId, { kind: "actions" });
  }

  /** The agent's client went away mid-poll: drop its waiter now rather than at its deadline. */
  async abandon(agentId: string): Promise<void> {
    this.#release(agentId, { kind: "timeout" });
  }

  /** The agent left this policy: its parked check-in ends (so it checks in again) and its queued roster changes go. */
  async release(agentId: string): Promise<void> {
    this.#upserts.delete(agentId);
    this.#seen.delete(agentId);
    this.#release(agentId, { kind: "timeout" });
  }

  /**
   * An agent's roster row changed outside a check-in (an ack moved its revision): batched to the hub
   * with the rest, so a fan-out's thousands of acks are not thousands of calls into one object.
   */
  async queueSummary(policyId: string, summary: AgentSummary): Promise<void> {
    this.#policyId = policyId;
    this.#queue(summary);
  }

  /** An HTTP check-in of the agent took delivery over from its socket `connection`: that socket closes. */
  async supersedeSocket(agentId: string, connection: string): Promise<void> {
    this.#sockets.close(agentId, CLOSE.superseded, "superseded by an HTTP check-in", connection);
  }

  /**
   * The agent was unenrolled, revoked or re-enrolled elsewhere: its socket closes, and a parked
   * check-in ends with nothing, so the next one meets the new state (a revoked key's 401) at once
   * instead of up to one long poll later.
   */
  async disconnect(agentId: string, code: number, reason: string): Promise<void> {
    this.#sockets.close(agentId, code, reason);
    this.#release(agentId, { kind: "timeout" });
  }

  /** Roster changes collected here, handed over (and forgotten) for the policy hub to apply. */
  async drainRoster(): Promise<RosterBatch> {
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    const batch = { upserts: [...this.#upserts.values()], seen: [...this.#seen.entries()] };
    this.#upserts = new Map();
    this.#seen = new Map();
    return batch;
  }

  /** Number of check-ins parked here (tests, benchmarks). */
  async parkedCount(): Promise<number> {
    return this.#waiters.size;
  }

  /** Takes over an agent's authenticated WebSocket upgrade (forwarded by the Worker). */
  override async fetch(request: Request): Promise<Response> {
    const agentId = request.headers.get("X-Fleet-Agent-Id");
    const connection = request.headers.get("X-Fleet-Connection");
    const policyId = request.headers.get("X-Fleet-Policy-Id");
    if (!agentId || !connection || !policyId || request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return new Response("hub shards accept only forwarded agent WebSockets", { status: 400 });
    }
    await this.#ensureSnapshot(policyId);
    // The socket replaces a parked long poll of the same agent.
    this.#release(agentId, { kind: "timeout" });
    return this.#sockets.accept(agentId, connection, request.headers.get("X-Fleet-Agent-Version") ?? "", policyId);
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    await this.#ensureSnapshot(this.#sockets.policyOf(ws));
    await this.#sockets.message(ws, message);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    // Complete the closing handshake, or the agent's client waits for it (1005/1006/1015 cannot be sent).
    try {
      ws.close(code === 1005 || code === 1006 || code === 1015 ? 1000 : code, reason);
    } catch {
      // already closed
    }
    await this.#sockets.closed(ws);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    await this.#sockets.closed(ws);
  }

  /** After a restart or hibernation the snapshot is gone: ask the policy hub once. */
  async #ensureSnapshot(policyId: string | null): Promise<void> {
    if (policyId) this.#policyId = policyId;
    if (this.#snapshot || !policyId) return;
    this.#snapshot = await policyHub(this.env, policyId).snapshot();
  }

  /** The revision this agent should run: the latest, unless a staged rollout has not reached it yet. */
  #targetFor(agentId: string): PolicyRevision | null {
    const snapshot = this.#snapshot;
    if (!snapshot) return null;
    const { rollout, previous } = snapshot;
    if (isSplitting(rollout) && previous && agentBucket(agentId) >= stageThreshold(rollout)) return previous;
    return snapshot.latest;
  }

  #queue(summary: AgentSummary): void {
    this.#upserts.set(summary.agent_id, summary);
    this.#scheduleFlush();
  }

  #markSeen(agentId: string): void {
    this.#seen.set(agentId, new Date().toISOString());
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    const policyId = this.#policyId;
    if (this.#flushTimer || !policyId) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = null;
      void this.drainRoster().then((batch) => policyHub(this.env, policyId).applyRoster(batch)).catch((err: unknown) =>
        console.error(JSON.stringify({ event: "roster.flush_failed", error: (err as Error).message })),
      );
    }, ROSTER_FLUSH_MS);
  }

  #policyAnswer(target: PolicyRevision, known: RevisionRef | undefined): ParkResult {
    const ref = refOf(target);
    if (sameRevision(known, ref)) return { kind: "policy", ref };
    let json = this.#serialized.get(target);
    if (json === undefined) this.#serialized.set(target, (json = JSON.stringify(target)));
    return { kind: "policy", ref, json };
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
