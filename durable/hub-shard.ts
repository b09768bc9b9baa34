import { DurableObject } from "cloudflare:workers";
import type { ShardEffect } from "../src/agents/effects";
import { fleetConfig, type Env } from "../src/config";
import { policyHub } from "../src/durable-stubs";
import type { RevisionClaim } from "../src/session/contract";
import { TokenBucket } from "../src/limits/token-bucket";
import { effectiveRevision } from "../src/policy/revision-claim";
import type { PolicyRevision } from "../src/protocol/policy";
import { PING, PONG } from "../src/protocol/socket";
import { refOf, sameRevision, type RevisionRef } from "../src/checkin/revision-cache";
import type { DeliverySnapshot, ParkRequest, ParkResult } from "../src/checkin/shard-contract";
import { SocketChannel } from "./socket-channel";
import { agentBucket, isSplitting, stageThreshold } from "../src/policy/staged-rollout";
import { log, useLogSettings } from "../src/log";

/** Parked check-ins expire in batches on this grid, so a shard runs one timer, not one per agent. */
const DEADLINE_GRID_MS = 250;
/** How long an action notification is remembered for a check-in that parks just after it. */
const NOTIFICATION_MEMORY_MS = 60_000;

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
 * disconnect). It keeps nothing durable: the hub owns revisions, the rollout and the roster, and a
 * shard that restarts asks the hub for the snapshot again.
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
  readonly #admission: TokenBucket;
  readonly #maxParked: number;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    useLogSettings(env);
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
      pendingPolicy: (agentId, claim) => this.#pendingPolicy(agentId, claim),
    });
  }

  /**
   * Answers at once when the agent is behind the revision it should run or an action arrived since
   * it looked; otherwise holds the call until one of those happens or `holdMs` passes.
   */
  async park(policyId: string, request: ParkRequest): Promise<ParkResult> {
    // Admission before any waiting: a storm is refused at a sustainable rate, not queued.
    if (this.#waiters.size >= this.#maxParked && !this.#waiters.has(request.agentId)) {
      return { kind: "busy", error: "MaxLimit", retryAfterMs: 30_000 };
    }
    const admitted = this.#admission.take();
    if (!admitted.ok) return { kind: "busy", error: "RateLimit", retryAfterMs: admitted.retryAfterMs };
    await this.#ensureSnapshot(policyId);
    const { behind, revision } = this.#pendingPolicy(request.agentId, request.claim);
    if (behind) return this.#policyAnswer(behind, request.known);
    const notified = this.#notified.get(request.agentId);
    if (notified && notified.seq > request.actionSeq) return { kind: "actions" };
    // A caller that only asks (an OpAMP poll, which the protocol never holds) is answered now.
    if (request.holdMs <= 0) return { kind: "timeout" };

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
    let woken = 0;
    for (const waiter of [...this.#waiters.values()]) {
      const target = this.#targetFor(waiter.agentId);
      if (target && waiter.revision < target.revision && this.#release(waiter.agentId, this.#policyAnswer(target, waiter.known))) woken++;
    }
    // Sockets are pushed to in the background: publishing never waits for a socket fan-out.
    this.ctx.waitUntil(
      this.#sockets.pushBehind().then(
        (pushed) => pushed > 0 && log.info("policy.pushed", { policy_id: snapshot.latest?.policy_id, sockets: pushed }),
        (err: unknown) => log.error("policy.push_failed", { error: (err as Error).message }),
      ),
    );
    return woken;
  }

  /** Effects of agent changes, from the agents' stores (durable/agent-effects.ts), in the order they happened. */
  async apply(policyId: string, effects: ShardEffect[]): Promise<void> {
    await this.#ensureSnapshot(policyId);
    for (const effect of effects) {
      if (effect.kind === "wake") await this.#wake(effect.agentId, effect.seq);
      else this.#disconnect(effect.agentId, effect.code, effect.reason, effect.connection);
    }
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
    if (!agentId || !connection || !policyId || request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return new Response("hub shards accept only forwarded agent WebSockets", { status: 400 });
    }
    await this.#ensureSnapshot(policyId);
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
