import { DurableObject } from "cloudflare:workers";
import type { ShardEffect } from "../src/agents/effects";
import { fleetConfig, type Env } from "../src/config";
import { hubShardAt, policyHub, shardIndexOf } from "../src/durable-stubs";
import type { RevisionClaim } from "../src/session/contract";
import { TokenBucket } from "../src/limits/token-bucket";
import { effectiveRevision } from "../src/policy/revision-claim";
import type { PolicyRevision } from "../src/protocol/policy";
import { PING, PONG } from "../src/protocol/socket";
import { refOf, sameRevision, type RevisionRef } from "../src/checkin/revision-cache";
import { MOVED_STATUS, SHARDS_HEADER, type DeliverySnapshot, type ParkRequest, type ParkResult } from "../src/checkin/shard-contract";
import { AlarmSchedule } from "./alarm-schedule";
import { SocketChannel } from "./socket-channel";
import { agentBucket, isSplitting, stageThreshold } from "../src/policy/staged-rollout";
import { log, useLogSettings } from "../src/log";

/** Parked check-ins expire in batches on this grid, so a shard runs one timer, not one per agent. */
const DEADLINE_GRID_MS = 250;
/** How long an action notification is remembered for a check-in that parks just after it. */
const NOTIFICATION_MEMORY_MS = 60_000;
/**
 * A delivery wakes its agents in batches at least this far apart, each batch the shard's share of
 * `ROLLOUT_RATE` for that time (docs/scale.md §3): short enough that a policy's agents do not all
 * arrive at their stores in one burst per second, long enough that a batch is not one agent.
 */
const PACE_INTERVAL_MS = 250;
/** Where the shard keeps which policy and index it is, so its alarm can resume a delivery after an eviction. */
const HOME_KEY = "home";

interface Home {
  policyId: string;
  index: number;
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
 * new delivery snapshot, or when an agent's store sends it an effect (a wake-up for a new action, a
 * disconnect). It keeps nothing durable but its own name: the hub owns revisions, the rollout and
 * the roster, and a shard that restarts asks the hub for the snapshot again.
 *
 * A delivery is paced (docs/scale.md §3): the shard wakes its waiters, oldest first, and pushes to
 * its sockets in batches of its share of `ROLLOUT_RATE`, one batch per alarm. What is left to do is
 * derived again from the waiters and the sockets' attachments on every batch, so a new revision
 * arriving mid-way is what the rest get, and an alarm after an eviction finishes the sockets (the
 * waiters went with the evicted object: their agents check in again and are answered at once).
 *
 * The policy's snapshot names its shard count (docs/scale.md §4). An agent that hashes to another
 * shard is answered "moved" (a poll or an upgrade, which the Worker retries there once), its waiter
 * released "moved" at a delivery, and its socket closed with `CLOSE.moved` as part of the paced work.
 */
export class HubShard extends DurableObject<Env> {
  #snapshot: DeliverySnapshot | null = null;
  #waiters = new Map<string, Waiter>();
  #buckets = new Map<number, Set<Waiter>>();
  #timer: ReturnType<typeof setTimeout> | null = null;
  #timerAt = Infinity;
  #notified = new Map<string, { seq: number; at: number }>();
  /** Each revision serialised once, not once per answer: an RPC clones a string far more cheaply than an object tree. */
  #serialized = new WeakMap<PolicyRevision, string>();
  readonly #sockets: SocketChannel;
  #admission: { shards: number; bucket: TokenBucket; maxParked: number } | null = null;
  #home: Home | null = null;
  readonly #alarms: AlarmSchedule;
  /** Sockets the current delivery still has work for (SocketChannel.due); null: derive them again. */
  #socketQueue: WebSocket[] | null = null;
  /** The current pacing interval: when it began and how many agents it has served (or reserved). */
  #window = { startedAt: -Infinity, served: 0 };
  #batching: Promise<number> | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    useLogSettings(env);
    this.#alarms = new AlarmSchedule(ctx.storage);
    // Keepalive pings are answered by the runtime: a socket's heartbeat never wakes the shard.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING, PONG));
    this.#sockets = new SocketChannel({
      ctx,
      env,
      targetFor: (agentId) => this.#targetFor(agentId),
      pendingPolicy: (agentId, claim) => this.#pendingPolicy(agentId, claim),
    });
  }

  /**
   * Answers at once when the agent is behind the revision it should run or an action arrived since
   * it looked; otherwise holds the call until one of those happens or `holdMs` passes.
   */
  async park(policyId: string, request: ParkRequest): Promise<ParkResult> {
    this.#settle(policyId, request.shard);
    await this.#ensureSnapshot(policyId);
    if (!this.#owns(request.agentId)) return { kind: "moved", shards: this.#shardCount() };
    // Admission before any waiting: a storm is refused at a sustainable rate, not queued.
    const admission = this.#admissionNow();
    if (this.#waiters.size >= admission.maxParked && !this.#waiters.has(request.agentId)) {
      return { kind: "busy", error: "MaxLimit", retryAfterMs: 30_000 };
    }
    const admitted = admission.bucket.take();
    if (!admitted.ok) return { kind: "busy", error: "RateLimit", retryAfterMs: admitted.retryAfterMs };
    // One parked check-in per agent: a newer one supersedes a stale one (e.g. after a reconnect),
    // also when it is answered at once, so a paced delivery does not spend a wake-up on the stale one.
    this.#release(request.agentId, { kind: "timeout" });
    // Behind is answered at once, also while a delivery is being paced: pacing only spreads the
    // wake-ups of agents already waiting, never holds one that asks.
    const { behind, revision } = this.#pendingPolicy(request.agentId, request.claim);
    if (behind) return this.#policyAnswer(behind, request.known);
    const notified = this.#notified.get(request.agentId);
    if (notified && notified.seq > request.actionSeq) return { kind: "actions" };
    // A caller that only asks (an OpAMP poll, which the protocol never holds) is answered now.
    if (request.holdMs <= 0) return { kind: "timeout" };

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

  /**
   * The policy changed (new revision, rollout step, shard count): wake and push to every agent now
   * behind, paced; release the waiters of agents that now belong to another shard. Returns how many
   * polls woke at once (the first batch).
   */
  async deliver(policyId: string, snapshot: DeliverySnapshot, index: number): Promise<number> {
    this.#settle(policyId, index);
    this.#snapshot = snapshot;
    this.#socketQueue = null;
    for (const waiter of [...this.#waiters.values()]) {
      if (!this.#owns(waiter.agentId)) this.#release(waiter.agentId, { kind: "moved", shards: snapshot.shards });
    }
    const { batch, intervalMs } = this.#pace();
    const fresh = Date.now() - this.#window.startedAt >= intervalMs;
    if (this.#batching || (!fresh && this.#window.served >= batch)) {
      // This interval's share is spent (or a batch runs now): the next, due on the alarm, serves this snapshot.
      await this.#alarms.request(this.#window.startedAt + intervalMs);
      return 0;
    }
    return this.#batch(false, fresh);
  }

  /** Effects of agent changes, from the agents' stores (durable/agent-effects.ts), in the order they happened. Returns the policy's shard count. */
  async apply(policyId: string, effects: ShardEffect[], index: number, forwarded = false): Promise<number> {
    this.#settle(policyId, index);
    await this.#ensureSnapshot(policyId);
    const shards = this.#shardCount();
    // Effects of agents held elsewhere now go to their shard, unless the agent is still here (a
    // socket not moved yet): the store's guess of the shard count was stale. Forwarded ones stop here.
    const elsewhere = new Map<number, ShardEffect[]>();
    for (const effect of effects) {
      if (!forwarded && !this.#owns(effect.agentId) && !this.#holds(effect.agentId)) {
        const to = shardIndexOf(effect.agentId, shards);
        let batch = elsewhere.get(to);
        if (!batch) elsewhere.set(to, (batch = []));
        batch.push(effect);
      } else if (effect.kind === "wake") await this.#wake(effect.agentId, effect.seq);
      else this.#disconnect(effect.agentId, effect.code, effect.reason, effect.connection);
    }
    await Promise.all([...elsewhere].map(([to, batch]) => hubShardAt(this.env, policyId, to).apply(policyId, batch, to, true)));
    return shards;
  }

  /** Runs the next batch of a paced delivery (after an eviction too: the shard's name is stored). */
  override async alarm(): Promise<void> {
    await this.#alarms.run(async () => {
      this.#home ??= (await this.ctx.storage.get<Home>(HOME_KEY)) ?? null;
      if (!this.#home) return;
      await this.#ensureSnapshot(this.#home.policyId);
      if (this.#batching) await this.#batching;
      await this.#batch(true, true);
    });
  }

  /** The agent's client went away mid-poll: drop its waiter now rather than at its deadline. */
  async abandon(agentId: string): Promise<void> {
    this.#release(agentId, { kind: "timeout" });
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
    const index = Number(request.headers.get("X-Fleet-Shard") ?? NaN);
    if (!agentId || !connection || !policyId || !Number.isInteger(index) || request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return new Response("hub shards accept only forwarded agent WebSockets", { status: 400 });
    }
    this.#settle(policyId, index);
    await this.#ensureSnapshot(policyId);
    if (!this.#owns(agentId)) return new Response(null, { status: MOVED_STATUS, headers: { [SHARDS_HEADER]: String(this.#shardCount()) } });
    // The socket replaces a parked long poll of the same agent.
    this.#release(agentId, { kind: "timeout" });
    const protocol = request.headers.get("X-Fleet-Protocol") === "opamp" ? "opamp" : undefined;
    return this.#sockets.accept(agentId, connection, request.headers.get("X-Fleet-Agent-Version") ?? "", policyId, protocol);
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

  /**
   * One batch of the current delivery: what is left of the interval's share of the rollout rate
   * (all of it in a `fresh` interval), behind waiters oldest first, then the sockets due. Another
   * batch follows on the alarm while work is left. Sockets are served in the background when
   * `awaitSockets` is false: a publish never waits for them.
   */
  #batch(awaitSockets: boolean, fresh: boolean): Promise<number> {
    const run = (async () => {
      const { batch, burst, intervalMs } = this.#pace();
      let allowance = batch;
      if (fresh) {
        // A delivery to a shard that paced nothing for as long as its burst takes to earn back (its
        // share of ROLLOUT_BURST at its share of the rate) may start with the burst: a 10,000-agent
        // policy gets its revision at once; a 1M one its first 16,000, then 16,000 a second.
        const now = Date.now();
        if (now - this.#window.startedAt >= (burst / Math.max(1, batch)) * intervalMs) allowance = Math.max(batch, burst);
        this.#window = { startedAt: now, served: 0 };
      }
      const window = this.#window;
      let budget = Math.max(0, allowance - window.served);
      let woken = 0;
      for (const waiter of [...this.#waiters.values()]) {
        if (budget === 0) break;
        const target = this.#targetFor(waiter.agentId);
        if (target && waiter.revision < target.revision && this.#release(waiter.agentId, this.#policyAnswer(target, waiter.known))) {
          woken++;
          budget--;
        }
      }
      const owns = (agentId: string) => this.#owns(agentId);
      const queue = (this.#socketQueue ??= this.#sockets.due(owns));
      // The sockets' budget is reserved now, and what was not used given back when they are done.
      window.served += woken + budget;
      const sockets = budget > 0 ? this.#sockets.serve(queue, budget, owns) : Promise.resolve(0);
      const more = () => queue.length > 0 || [...this.#waiters.values()].some((w) => (this.#targetFor(w.agentId)?.revision ?? -1) > w.revision);
      const finish = sockets.then(async (pushed) => {
        window.served -= budget - pushed;
        // Debug: four lines a second per shard while a large rollout is paced.
        if (woken + pushed > 0) log.debug("policy.paced", { policy_id: this.#home?.policyId, shard: this.#home?.index, woken, pushed, left: queue.length });
        if (more()) await this.#alarms.request(window.startedAt + intervalMs);
      });
      if (awaitSockets) await finish;
      else this.ctx.waitUntil(finish.catch((err: unknown) => log.error("policy.push_failed", { error: (err as Error).message })));
      return woken;
    })();
    this.#batching = run;
    void run.finally(() => {
      if (this.#batching === run) this.#batching = null;
    });
    return run;
  }

  /** This shard's share of `ROLLOUT_RATE` as a batch size and the time between batches, and its share of `ROLLOUT_BURST`. */
  #pace(): { batch: number; burst: number; intervalMs: number } {
    const { rolloutRate, rolloutBurst } = fleetConfig(this.env);
    const shards = this.#shardCount();
    const share = rolloutRate / shards;
    // A share below one agent per interval becomes one agent per 1/share seconds.
    const intervalMs = Math.max(PACE_INTERVAL_MS, 1000 / share);
    return { batch: Math.max(1, Math.round((share * intervalMs) / 1000)), burst: Math.floor(rolloutBurst / shards), intervalMs };
  }

  #shardCount(): number {
    return this.#snapshot?.shards ?? 1;
  }

  /** Whether the agent belongs to this shard under the policy's current shard count. */
  #owns(agentId: string): boolean {
    return !this.#home || !this.#snapshot || shardIndexOf(agentId, this.#snapshot.shards) === this.#home.index;
  }

  #holds(agentId: string): boolean {
    return this.#waiters.has(agentId) || this.#sockets.holds(agentId);
  }

  /** The tier is fleet-server's per-process limit; each of a policy's shards takes its share. */
  #admissionNow(): { bucket: TokenBucket; maxParked: number } {
    const shards = this.#shardCount();
    if (this.#admission?.shards !== shards) {
      const { tier } = fleetConfig(this.env);
      this.#admission = {
        shards,
        bucket: new TokenBucket(tier.checkin.ratePerSec / shards, Math.max(1, tier.checkin.burst / shards)),
        maxParked: Math.ceil(tier.checkin.max / shards),
      };
    }
    return this.#admission;
  }

  /** Learns which policy and index this shard is (every caller says), stored once for the alarm. */
  #settle(policyId: string, index: number): void {
    if (this.#home?.policyId === policyId && this.#home.index === index) return;
    this.#home = { policyId, index };
    void this.ctx.storage.put(HOME_KEY, this.#home);
  }

  /** After a restart or hibernation the snapshot is gone: ask the policy hub once. */
  async #ensureSnapshot(policyId: string | null): Promise<void> {
    if (this.#snapshot || !policyId) return;
    this.#snapshot = await policyHub(this.env, policyId).snapshot();
  }

  /** An action was stored for the agent: push it on the socket, release the parked check-in, or remember it. */
  async #wake(agentId: string, seq: number): Promise<void> {
    if (await this.#sockets.pushActions(agentId)) return;
    this.#notified.set(agentId, { seq, at: Date.now() });
    this.#release(agentId, { kind: "actions" });
  }

  /**
   * The agent was unenrolled, revoked, reassigned or re-enrolled, or polls over HTTP now: its socket
   * closes (only `connection`'s, when given), and a parked check-in ends with nothing, so the next
   * one meets the new state (a revoked key's 401) at once instead of up to one long poll later.
   */
  #disconnect(agentId: string, code: number, reason: string, connection?: string): void {
    this.#sockets.close(agentId, code, reason, connection);
    if (connection === undefined) this.#release(agentId, { kind: "timeout" });
  }

  /**
   * The one rule of what an agent is behind (fleet-protocol.md §4.2), for polls and sockets alike:
   * the revision it should run when that is newer than the one it runs, and the one it runs.
   */
  #pendingPolicy(agentId: string, claim: RevisionClaim): { behind: PolicyRevision | null; revision: number } {
    const target = this.#targetFor(agentId);
    const revision = effectiveRevision(claim, target?.policy_id ?? "", target?.revision ?? null);
    return { behind: target && target.revision > revision ? target : null, revision };
  }

  /** The revision this agent should run: the latest, unless a staged rollout has not reached it yet. */
  #targetFor(agentId: string): PolicyRevision | null {
    const snapshot = this.#snapshot;
    if (!snapshot) return null;
    const { rollout, previous } = snapshot;
    if (isSplitting(rollout) && previous && agentBucket(agentId) >= stageThreshold(rollout)) return previous;
    return snapshot.latest;
  }

  #policyAnswer(target: PolicyRevision, known: RevisionRef | undefined): ParkResult {
    const ref = refOf(target);
    const shards = this.#shardCount();
    if (sameRevision(known, ref)) return { kind: "policy", ref, shards };
    let json = this.#serialized.get(target);
    if (json === undefined) this.#serialized.set(target, (json = JSON.stringify(target)));
    return { kind: "policy", ref, json, shards };
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
