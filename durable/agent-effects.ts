import type { CheckinBatch, CheckinMinutes } from "../src/agents/checkin-rate";
import type { ActionResult, RosterChanges, ShardEffect } from "../src/agents/effects";
import type { AgentSummary } from "../src/agents/status";
import type { Env } from "../src/config";
import { revisionCache } from "../src/checkin/revision-cache";
import { bulkJob, hubShardAt, policyHub, rosterShard, rosterShardIndexOf, shardCountOf, shardIndexOf } from "../src/durable-stubs";
import { log } from "../src/log";

/** Schema step of the agent store: consequences of agent changes waiting for delivery. */
export const EFFECTS_SCHEMA = `
  CREATE TABLE effects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    body TEXT NOT NULL,
    coalesce_key TEXT UNIQUE,
    attempts INTEGER NOT NULL DEFAULT 0);`;

type Kind = "hub" | "shard" | "job" | "checkins";

/**
 * A hub's roster row of the agent, its removal, or only new check-in times: those of one flush of
 * held heartbeats share a row (agent id, time pairs), so a heartbeat costs no outbox row of its own.
 */
type RosterBody =
  | { type: "upsert"; summary: AgentSummary }
  | { type: "remove" }
  | { type: "touches"; times: Array<[string, string]> }
  /** One agent's time, as stores wrote it before shared rows: still in outboxes at the deploy that brings them. */
  | { type: "touch"; lastCheckin: string };

interface EffectRow extends Record<string, SqlStorageValue> {
  seq: number;
  kind: Kind;
  target: string;
  agent_id: string;
  body: string;
  attempts: number;
}

/** Effects delivered per alarm run; more wait for the next run, which is asked for at once. */
const BATCH = 1_000;
/**
 * Roster rows wait this long, so a burst of check-ins in one store reaches each hub as one call.
 * Socket closes, wake-ups and results go at once: an agent or an admin waits for them.
 */
const ROSTER_DELAY_MS = 500;
/**
 * An effect that goes at once and whose writer delivers it right away (an admin's change, an
 * enrollment) gets its alarm this much later: the alarm is then only the fallback for a delivery a
 * crash or an eviction cut short, and a burst of enrollments asks for one alarm a second instead of
 * one (and an alarm run) each.
 */
const IMMEDIATE_FALLBACK_MS = 1_000;
const MAX_BACKOFF_MS = 60_000;
/** Check-in times per effect row, so one row stays a modest RPC argument in a store of many agents. */
const TOUCHES_PER_ROW = 1_000;
/** Roster changes per call to a hub or roster shard (a call's arguments are cloned whole). */
const HUB_CALL_CHANGES = 5_000;

/** One roster shard's changes from a delivery, cut into calls of at most HUB_CALL_CHANGES. */
class RosterCalls {
  readonly calls: RosterChanges[] = [];
  #size = HUB_CALL_CHANGES;

  add<K extends keyof RosterChanges>(kind: K, change: RosterChanges[K][number]): void {
    if (this.#size >= HUB_CALL_CHANGES) {
      this.calls.push({ upserts: [], removes: [], touches: [] });
      this.#size = 0;
    }
    (this.calls.at(-1)![kind] as Array<RosterChanges[K][number]>).push(change);
    this.#size++;
  }
}

/**
 * The agent store's outbox of consequences for other objects: roster rows and check-in counts for
 * policy hubs, socket closes and wake-ups for hub shards, results for bulk jobs. Agents write them with the change that
 * causes them, in the same synchronous transaction (DESIGN.md "The owner writes the consequences"),
 * and the store's alarm delivers them in order, batched per receiver, retrying with back-off until
 * each receiver has them. A crash at any point loses none: undelivered rows are delivered after the
 * restart. Receivers apply them idempotently (roster rows carry a version, results are first-wins, check-in
 * counts a batch id).
 */
export class AgentEffects {
  readonly #sql: SqlStorage;
  readonly #env: Env;
  readonly #wake: (at: number) => Promise<void>;
  /** Names this store in check-in batches (with an effect's sequence, a batch id no other row has). */
  readonly #source: string;
  /** The earliest delivery already asked for (in memory: a restart's alarm delivers what is left). */
  #dueAt = Infinity;
  /** One delivery at a time, so a receiver sees one store's effects in order. */
  #delivering: Promise<void> = Promise.resolve();
  /**
   * Effects that go at once since the last synchronous write ended: "written" asks for the alarm at
   * once when the write is done; "delivering" means the writer delivers them itself (`deliverNow`),
   * so the alarm is only the fallback.
   */
  #atOnce: "none" | "written" | "delivering" = "none";
  /** Check-in times collected by `collectTouches`, per policy; null outside it. */
  #touches: Map<string, Map<string, string>> | null = null;
  /** Roster shard count per policy, as its hub answered. */
  readonly #rosterShardCounts = new Map<string, number>();

  constructor(sql: SqlStorage, env: Env, wake: (at: number) => Promise<void>, source: string) {
    this.#sql = sql;
    this.#env = env;
    this.#wake = wake;
    this.#source = source;
  }

  /**
   * The agent's roster row in `policyId` changed; only the newest pending row is kept. An agent new
   * to the policy (enrolled, reassigned) is listed at once; changes to a listed agent are batched.
   */
  roster(policyId: string, summary: AgentSummary, joined: boolean): void {
    const delayMs = joined ? 0 : ROSTER_DELAY_MS;
    this.#add("hub", policyId, summary.agent_id, { type: "upsert", summary } satisfies RosterBody, `roster:${policyId}:${summary.agent_id}`, delayMs);
  }

  /** The agent left `policyId`: its roster row there goes (replacing a pending upsert). */
  leave(policyId: string, agentId: string): void {
    this.#add("hub", policyId, agentId, { type: "remove" } satisfies RosterBody, `roster:${policyId}:${agentId}`, 0);
  }

  /**
   * Only the agent's check-in time moved (its held heartbeat was written): the hub updates one
   * column. Inside `collectTouches` the time joins its policy's shared row; alone it gets a row.
   * The versions order times and rows at the hub, so a pending older time needs no removal.
   */
  touch(policyId: string, agentId: string, lastCheckin: string): void {
    if (!this.#touches) return this.#addTouches(policyId, [[agentId, lastCheckin]]);
    let times = this.#touches.get(policyId);
    if (!times) this.#touches.set(policyId, (times = new Map<string, string>()));
    times.set(agentId, lastCheckin);
  }

  /**
   * Runs `write` (synchronous: one transaction with what it writes) and records the check-in times
   * it touches as one effect row per policy (per TOUCHES_PER_ROW agents) instead of one per agent.
   */
  collectTouches(write: () => void): void {
    const touches = new Map<string, Map<string, string>>();
    this.#touches = touches;
    try {
      write();
    } finally {
      // Times already written to agents' rows are sent even if a later agent's write threw.
      this.#touches = null;
      for (const [policyId, times] of touches) {
        const all = [...times];
        for (let i = 0; i < all.length; i += TOUCHES_PER_ROW) this.#addTouches(policyId, all.slice(i, i + TOUCHES_PER_ROW));
      }
    }
  }

  #addTouches(policyId: string, times: Array<[string, string]>): void {
    // A shared row names no single agent; agent_id routes only shard effects.
    this.#add("hub", policyId, "", { type: "touches", times } satisfies RosterBody, null, ROSTER_DELAY_MS);
  }

  /** Check-ins counted per minute for `policyId` since the last flush (durable/checkin-tally.ts). */
  checkins(policyId: string, minutes: CheckinMinutes): void {
    this.#add("checkins", policyId, "", { minutes }, null, ROSTER_DELAY_MS);
  }

  /** Work for the agent's fan-out shard of `policyId`. A newer wake-up replaces a pending one. */
  shard(policyId: string, effect: ShardEffect): void {
    this.#add("shard", policyId, effect.agentId, effect, effect.kind === "wake" ? `wake:${policyId}:${effect.agentId}` : null, 0);
  }

  /** The agent's first answer to action `actionId`, for the action's progress. */
  result(actionId: string, result: ActionResult): void {
    this.#add("job", actionId, result.agentId, result, null, 0);
  }

  /** Effects not yet delivered (tests, observability). */
  pending(): number {
    return this.#sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM effects").one().n;
  }

  /** Delivers what is pending now: an admin's change calls this right after its write, so the admin reads what they wrote. */
  deliverNow(): Promise<void> {
    if (this.#atOnce === "written") this.#atOnce = "delivering";
    return this.deliver();
  }

  /**
   * Delivers one batch, grouped per receiver; a receiver that fails keeps its rows for a retry.
   * Called by the store's alarm and by `deliverNow`; never throws.
   */
  deliver(): Promise<void> {
    const run = this.#delivering.then(() => this.#deliverBatch());
    this.#delivering = run.catch(() => undefined);
    return run;
  }

  async #deliverBatch(): Promise<void> {
    this.#dueAt = Infinity;
    const rows = this.#sql.exec<EffectRow>("SELECT seq, kind, target, agent_id, body, attempts FROM effects ORDER BY seq LIMIT ?", BATCH).toArray();
    if (rows.length === 0) return;
    const groups = new Map<string, EffectRow[]>();
    for (const row of rows) {
      const key = row.kind === "shard" ? `shard:${row.target}#${shardIndexOf(row.agent_id, shardCountOf(this.#env, row.target))}` : `${row.kind}:${row.target}`;
      let group = groups.get(key);
      if (!group) groups.set(key, (group = []));
      group.push(row);
    }
    let retryAfter = 0;
    await Promise.all(
      [...groups.values()].map(async (group) => {
        try {
          await this.#send(group);
          for (const row of group) this.#sql.exec("DELETE FROM effects WHERE seq = ?", row.seq);
        } catch (err) {
          const attempts = group.reduce((most, row) => Math.max(most, row.attempts), 0) + 1;
          for (const row of group) this.#sql.exec("UPDATE effects SET attempts = ? WHERE seq = ?", attempts, row.seq);
          retryAfter = Math.max(retryAfter, Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(attempts, 10)));
          const first = group[0]!;
          log.error("agent_effects.delivery_failed", { kind: first.kind, target: first.target, count: group.length, attempts, error: (err as Error).message });
        }
      }),
    );
    if (retryAfter > 0) await this.#schedule(Date.now() + retryAfter);
    else if (rows.length === BATCH) await this.#schedule(Date.now());
  }

  async #send(group: EffectRow[]): Promise<void> {
    const { kind, target } = group[0]!;
    switch (kind) {
      case "hub": {
        // Each agent's changes go to its roster shard (0 is the hub), in order, at most
        // HUB_CALL_CHANGES per call: rows held back by a long outage can carry many flushes' times
        // each. A retry after a partial failure repeats calls already applied, which the versions
        // make harmless.
        const count = await this.#rosterShards(target);
        // Only the parts this batch touches (a policy laid out for 1M agents has 20; an enrollment touches one).
        const parts = new Map<number, RosterCalls>();
        const part = (agentId: string): RosterCalls => {
          const index = rosterShardIndexOf(agentId, count);
          let calls = parts.get(index);
          if (!calls) parts.set(index, (calls = new RosterCalls()));
          return calls;
        };
        for (const row of group) {
          const body = JSON.parse(row.body) as RosterBody;
          if (body.type === "upsert") part(row.agent_id).add("upserts", { summary: body.summary, version: row.seq });
          else if (body.type === "touches") for (const [agentId, lastCheckin] of body.times) part(agentId).add("touches", { agentId, lastCheckin, version: row.seq });
          else if (body.type === "touch") part(row.agent_id).add("touches", { agentId: row.agent_id, lastCheckin: body.lastCheckin, version: row.seq });
          else part(row.agent_id).add("removes", { agentId: row.agent_id, version: row.seq });
        }
        const sent = await Promise.allSettled(
          [...parts].map(async ([index, calls]) => {
            for (const changes of calls.calls) {
              if (index === 0) await policyHub(this.#env, target).applyRoster(target, changes);
              else await rosterShard(this.#env, target, index).applyRoster(changes);
            }
          }),
        );
        const failed = sent.find((outcome) => outcome.status === "rejected");
        if (failed) throw failed.reason;
        return;
      }
      case "shard": {
        // The shard forwards effects of agents it no longer holds and names the policy's shard count, learned for the next batch.
        const index = shardIndexOf(group[0]!.agent_id, shardCountOf(this.#env, target));
        const shards = await hubShardAt(this.#env, target, index).apply(target, group.map((row) => JSON.parse(row.body) as ShardEffect), index);
        revisionCache.learnShards(target, shards);
        return;
      }
      case "checkins":
        // The store's id and the row's sequence name the batch: the hub counts a redelivered one once.
        return policyHub(this.#env, target).countCheckins(
          group.map((row): CheckinBatch => ({ batch: `${this.#source}:${row.seq}`, minutes: (JSON.parse(row.body) as { minutes: CheckinMinutes }).minutes })),
        );
      case "job":
        return bulkJob(this.#env, target).recordResults(group.map((row) => JSON.parse(row.body) as ActionResult));
    }
  }

  /** A policy's roster shard count, asked of its hub once (it never changes for a policy). */
  async #rosterShards(policyId: string): Promise<number> {
    let count = this.#rosterShardCounts.get(policyId);
    if (count === undefined) this.#rosterShardCounts.set(policyId, (count = await policyHub(this.#env, policyId).rosterShards(policyId)));
    return count;
  }

  #add(kind: Kind, target: string, agentId: string, body: object, coalesceKey: string | null, delayMs: number): void {
    // REPLACE drops the pending row of the same coalesce key, and the new row takes a new sequence (AUTOINCREMENT): it goes in its turn.
    this.#sql.exec("INSERT OR REPLACE INTO effects (kind, target, agent_id, body, coalesce_key) VALUES (?, ?, ?, ?, ?)", kind, target, agentId, JSON.stringify(body), coalesceKey);
    if (delayMs > 0) return this.#wakeBy(Date.now() + delayMs);
    if (this.#atOnce !== "none") return;
    this.#atOnce = "written";
    // Once the write (and a `deliverNow` right after it) is done: a microtask later.
    queueMicrotask(() => {
      const fallback = this.#atOnce === "delivering";
      this.#atOnce = "none";
      this.#wakeBy(Date.now() + (fallback ? IMMEDIATE_FALLBACK_MS : 0));
    });
  }

  #wakeBy(at: number): void {
    if (at >= this.#dueAt) return;
    this.#schedule(at).catch((err: unknown) => log.error("agent_effects.schedule_failed", { error: (err as Error).message }));
  }

  #schedule(at: number): Promise<void> {
    this.#dueAt = Math.min(this.#dueAt, at);
    return this.#wake(at);
  }
}
