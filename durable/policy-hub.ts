import { DurableObject } from "cloudflare:workers";
import type { Env } from "../src/config";
import { contentHash } from "../src/policy/content-hash";
import { effectiveRevision } from "../src/policy/revision-claim";
import type { PolicyContent, PolicyRevision } from "../src/protocol/policy";
import type { RevisionClaim } from "./agent";
import { migrateSchema } from "./sql-schema";

const SCHEMA = [
  `CREATE TABLE revisions (
     revision INTEGER PRIMARY KEY,
     created_at TEXT NOT NULL,
     content_hash TEXT NOT NULL,
     body TEXT NOT NULL);`,
];

/** Parked check-ins expire in batches on this grid, so the hub runs one timer, not one per agent. */
const DEADLINE_GRID_MS = 250;
/** How long an action notification is remembered for a check-in that parks just after it. */
const NOTIFICATION_MEMORY_MS = 60_000;

export type ParkResult = { kind: "policy"; revision: PolicyRevision } | { kind: "actions" } | { kind: "timeout" };

export interface ParkRequest {
  agentId: string;
  claim: RevisionClaim;
  /** Highest action sequence number the agent's object had when the check-in read it. */
  actionSeq: number;
  holdMs: number;
}

export interface PolicyPut {
  policyId: string;
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
  #waiters = new Map<string, Waiter>();
  #buckets = new Map<number, Set<Waiter>>();
  #timer: ReturnType<typeof setTimeout> | null = null;
  #timerAt = Infinity;
  #notified = new Map<string, { seq: number; at: number }>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      migrateSchema(ctx.storage, SCHEMA);
      const row = ctx.storage.sql
        .exec<{ body: string; content_hash: string }>("SELECT body, content_hash FROM revisions ORDER BY revision DESC LIMIT 1")
        .toArray()[0];
      this.#latest = row ? (JSON.parse(row.body) as PolicyRevision) : null;
      this.#latestHash = row?.content_hash ?? null;
    });
  }

  /** Stores a new revision when the content differs from the latest; otherwise returns the latest. */
  async put(input: PolicyPut): Promise<{ revision: PolicyRevision; changed: boolean }> {
    const hash = await contentHash(input);
    const latest = this.#latest;
    if (latest && hash === this.#latestHash) return { revision: latest, changed: false };
    const revision: PolicyRevision = {
      policy_id: input.policyId,
      revision: (latest?.revision ?? 0) + 1,
      name: input.name,
      namespace: input.namespace,
      ...(input.description !== undefined ? { description: input.description } : {}),
      created_at: new Date().toISOString(),
      policy: input.policy,
    };
    this.ctx.storage.sql.exec(
      "INSERT INTO revisions (revision, created_at, content_hash, body) VALUES (?, ?, ?, ?)",
      revision.revision,
      revision.created_at,
      hash,
      JSON.stringify(revision),
    );
    this.#latest = revision;
    this.#latestHash = hash;
    const woken = this.#wakeBehind(revision);
    console.log(JSON.stringify({ event: "policy.revision", policy_id: input.policyId, revision: revision.revision, woken }));
    return { revision, changed: true };
  }

  async latest(): Promise<PolicyRevision | null> {
    return this.#latest;
  }

  /**
   * Answers at once when the agent is behind the latest revision or an action arrived since it
   * looked; otherwise holds the call until one of those happens or `holdMs` passes.
   */
  async park(request: ParkRequest): Promise<ParkResult> {
    const latest = this.#latest;
    const revision = effectiveRevision(request.claim, latest?.policy_id ?? "", latest?.revision ?? null);
    if (latest && latest.revision > revision) return { kind: "policy", revision: latest };
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
    this.#notified.set(agentId, { seq, at: Date.now() });
    return this.#release(agentId, { kind: "actions" });
  }

  /** Number of check-ins parked here (for tests and the admin overview). */
  async parkedCount(): Promise<number> {
    return this.#waiters.size;
  }

  #wakeBehind(revision: PolicyRevision): number {
    let woken = 0;
    for (const waiter of [...this.#waiters.values()]) {
      if (waiter.revision < revision.revision && this.#release(waiter.agentId, { kind: "policy", revision })) woken++;
    }
    return woken;
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
