import type { CheckinBatch, CheckinMinutes } from "../src/agents/checkin-rate";
import type { ActionResult, RosterChanges, ShardEffect } from "../src/agents/effects";
import type { AgentSummary } from "../src/agents/status";
import { fleetConfig, type Env } from "../src/config";
import { revisionCache } from "../src/checkin/revision-cache";
import { bulkJob, hubShardAt, policyHub, rosterShard, rosterShardIndexOf, shardCountOf, shardIndexOf } from "../src/durable-stubs";
import { log } from "../src/log";
import { CHECKIN_FLUSH_MS } from "./checkin-journal";

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

type Kind = "hub" | "shard" | "job" | "checkins" | "flush";

/**
 * A hub's roster row of the agent, its removal, or only new check-in times with the check-ins
 * counted per minute: what one flush of held heartbeats sends a policy (a part of a `FlushBody`).
 */
type RosterBody =
  | { type: "upsert"; summary: AgentSummary }
  | { type: "remove" }
  | { type: "touches"; times: Array<[string, string]>; minutes?: CheckinMinutes }
  /** One agent's time, as stores wrote it before shared rows: still in outboxes at the deploy that brings them. */
  | { type: "touch"; lastCheckin: string };

/** What a policy's hub gets from one flush of held heartbeats. */
type FlushPart = { times: Array<[string, string]>; minutes?: CheckinMinutes };

/**
 * One flush of held heartbeats for every policy it touches (kind "flush"): one row per flush (per
 * TOUCHES_PER_ROW times), not one per policy, so a store whose flush holds 400 policies (1,000
 * policies of 1,000 agents) writes one row, not 400. Delivered as a "hub" row to each policy; the
 * policies whose call failed stay in the row for the retry.
 */
type FlushBody = { policies: Array<[string, FlushPart]> };

interface EffectRow extends Record<string, SqlStorageValue> {
  seq: number;
  kind: Kind;
  target: string;
  agent_id: string;
  body: string;
  attempts: number;
}

/** A row written inside `change`, kept in memory so its delivery need not read it back. */
interface FreshRow extends EffectRow {
  coalesceKey: string | null;
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
/** How long after a check-in its store has flushed it: the store's flush window and 2 s for its alarm to run. */
export const FLUSHED_BY_MS = CHECKIN_FLUSH_MS + 2_000;
/** Check-in times per effect row, so one row stays a modest RPC argument in a store of many agents. */
const TOUCHES_PER_ROW = 1_000;
/** Roster changes per call to a hub or roster shard (a call's arguments are cloned whole). */
const HUB_CALL_CHANGES = 5_000;

/** One roster shard's changes from a delivery, cut into calls of at most HUB_CALL_CHANGES. */
class RosterCalls {
  readonly calls: RosterChanges[] = [];
  #size = HUB_CALL_CHANGES;

  add<K extends keyof RosterChanges>(kind: K, change: RosterChanges[K][number]): void {
    if (this.#size >= HUB_CALL_CHANGES) this.#next();
    (this.calls.at(-1)![kind] as Array<RosterChanges[K][number]>).push(change);
    this.#size++;
  }

  /** With no change yet, one empty call (it carries the hub's check-in counts). */
  atLeastOne(): this {
    if (this.calls.length === 0) this.#next();
    return this;
  }

  #next(): void {
    this.calls.push({ upserts: [], removes: [], touches: [] });
    this.#size = 0;
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
  readonly #storage: DurableObjectStorage;
  readonly #sql: SqlStorage;
  readonly #env: Env;
  readonly #wake: (at: number) => Promise<void>;
  /** Names this store in check-in batches (with an effect's sequence, a batch id no other row has). */
  readonly #source: string;
  /**
   * The earliest alarm already asked for and not yet run (in memory: a restart's alarm delivers what
   * is left). A delivery made by a writer leaves it standing, so a burst of writes asks once.
   */
  #dueAt = Infinity;
  /** One delivery at a time, so a receiver sees one store's effects in order. */
  #delivering: Promise<void> = Promise.resolve();
  /** A delivery waiting for the one before it: later callers join it, as it reads the rows when it starts. */
  #queued: Promise<void> | null = null;
  /**
   * Rows a writer's delivery delivered, not yet deleted: the fallback alarm deletes them, at most
   * about a second later, all in one statement. A delete of their own when the receiver answers was
   * a write transaction per enrollment (~0.25 ms measured locally, most of its outbox cost). A crash
   * in between delivers them again, which receivers ignore.
   */
  #delivered: number[] = [];
  /** Rows written by the `change` under way (committed only if its transaction is); null outside one. */
  #writing: FreshRow[] | null = null;
  /** Committed rows of `change`s, not yet taken by a delivery, oldest first. */
  #fresh: FreshRow[] = [];
  /**
   * Every undelivered row of the table is in `#fresh` (but flush rows held for the store's next send,
   * which the alarm reads from the table), so a delivery takes them from memory instead of reading
   * the table (~0.05 ms per read in local workerd, BENCHMARKS.md). False after a restart, a failed
   * delivery, a rolled-back change or a row written outside `change`, until a read finds them all.
   */
  #inMemory = false;
  /** An effect that goes at once was written outside `change`: the alarm is asked for once the write is done. */
  #atOnce = false;
  /**
   * Until when flush rows (heartbeat times and counts) wait for the next flushes, so each policy's
   * hub gets one call per `checkinViewLagMs` from this store, not one per flush window in which any
   * of its agents checked in (in a fleet of small policies nearly every heartbeat was a window of its
   * own: a call and 1.5 rows at the hub, docs/cost.md). Set by the first flush row after a delivery
   * of flush rows; 0 while none wait. In memory: a restarted store asks for its alarm at once
   * (`resume`). The rows are written with the journal, so holding them loses nothing.
   */
  #flushesHeldUntil = 0;
  /** Check-in times collected by `collectTouches`, per policy; null outside it. */
  #touches: Map<string, Map<string, string>> | null = null;
  /** Roster shard count per policy, as its hub answered. */
  readonly #rosterShardCounts = new Map<string, number>();

  constructor(storage: DurableObjectStorage, env: Env, wake: (at: number) => Promise<void>, source: string) {
    this.#storage = storage;
    this.#sql = storage.sql;
    this.#env = env;
    this.#wake = wake;
    this.#source = source;
  }

  /**
   * The agent's roster row in `policyId` changed; only the newest pending row is kept. An agent new
   * to the policy (enrolled, reassigned) is listed at once; changes to a listed agent are batched.
   */
  roster(policyId: string, summary: AgentSummary, joined: boolean, summaryJson = JSON.stringify(summary)): void {
    const delayMs = joined ? 0 : ROSTER_DELAY_MS;
    // A RosterBody "upsert" around the row's JSON, which the caller built already to compare rows.
    const body = `{"type":"upsert","summary":${summaryJson}}`;
    this.#add("hub", policyId, summary.agent_id, body, `roster:${policyId}:${summary.agent_id}`, delayMs);
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
   * it touches, with each policy's check-ins counted per minute since the last flush (`counts`,
   * durable/checkin-tally.ts), as one effect row for the whole flush (per TOUCHES_PER_ROW times)
   * instead of one per agent or per policy; each policy then gets one call.
   */
  collectTouches(counts: ReadonlyMap<string, CheckinMinutes>, write: () => void): void {
    const touches = new Map<string, Map<string, string>>();
    this.#touches = touches;
    try {
      write();
    } finally {
      // Times already written to agents' rows are sent even if a later agent's write threw.
      this.#touches = null;
      const delayMs = this.#holdFlushes();
      let row: Array<[string, FlushPart]> = [];
      let size = 0;
      const add = (policyId: string, part: FlushPart) => {
        if (size > 0 && size + part.times.length > TOUCHES_PER_ROW) {
          this.#add("flush", "", "", { policies: row } satisfies FlushBody, null, delayMs);
          row = [];
          size = 0;
        }
        row.push([policyId, part]);
        size += part.times.length;
      };
      for (const policyId of new Set([...touches.keys(), ...counts.keys()])) {
        const all = [...(touches.get(policyId) ?? [])];
        const minutes = counts.get(policyId);
        add(policyId, { times: all.slice(0, TOUCHES_PER_ROW), ...(minutes ? { minutes } : {}) });
        for (let i = TOUCHES_PER_ROW; i < all.length; i += TOUCHES_PER_ROW) add(policyId, { times: all.slice(i, i + TOUCHES_PER_ROW) });
      }
      if (row.length > 0) this.#add("flush", "", "", { policies: row } satisfies FlushBody, null, delayMs);
    }
  }

  /** Starts a hold of flush rows unless one runs; how long from now it lasts (at least ROSTER_DELAY_MS). */
  #holdFlushes(): number {
    const now = Date.now();
    if (this.#flushesHeldUntil === 0) {
      this.#flushesHeldUntil = holdEnd(now, fleetConfig(this.#env).checkinViewLagMs);
      // Asked for here, not by the rows: a row joins a delivery already queued without asking, and that one leaves it.
      if (this.#flushesHeldUntil > now) this.#wakeBy(this.#flushesHeldUntil);
    }
    return Math.max(ROSTER_DELAY_MS, this.#flushesHeldUntil - now);
  }

  /** Flush rows wait (see `#flushesHeldUntil`). */
  #holding(): boolean {
    return Date.now() < this.#flushesHeldUntil;
  }

  #addTouches(policyId: string, times: Array<[string, string]>): void {
    // A shared row names no single agent; agent_id routes only shard effects.
    this.#add("hub", policyId, "", { type: "touches", times } satisfies RosterBody, null, ROSTER_DELAY_MS);
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
    return this.#sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM effects WHERE seq NOT IN (SELECT value FROM json_each(?))", JSON.stringify(this.#delivered)).one().n;
  }

  /**
   * Runs `write` in one transaction and delivers the effects it wrote before returning, so an admin
   * (or an enrolling agent) reads what they changed; the alarm, a second later, is only the fallback
   * for a delivery a crash or an eviction cut short. A failed delivery is logged and left to it.
   */
  async change<T>(write: () => T): Promise<T> {
    if (this.#writing) throw new Error("AgentEffects.change: a change cannot run inside another");
    const rows: FreshRow[] = [];
    this.#writing = rows;
    let result: T;
    try {
      result = this.#storage.transactionSync(write);
    } catch (err) {
      // The rows went with the transaction, and a row it replaced came back: read the table next time.
      this.#inMemory = false;
      throw err;
    } finally {
      this.#writing = null;
    }
    if (rows.length === 0) return result;
    this.#fresh.push(...rows);
    this.#wakeBy(Date.now() + IMMEDIATE_FALLBACK_MS);
    await this.#deliver(true).catch((err: unknown) => log.error("agent_effects.deliver_failed", { error: (err as Error).message }));
    return result;
  }

  /**
   * At the store's start: rows the last instance left (held for the send it would have made, or cut
   * short by a crash) go within a second rather than at whatever alarm it had asked for, up to a
   * minute away for a hold. One indexed read per start.
   */
  resume(): void {
    if (this.#sql.exec("SELECT 1 FROM effects LIMIT 1").toArray().length > 0) this.#wakeBy(Date.now() + IMMEDIATE_FALLBACK_MS);
  }

  /** The store's alarm: delivers one batch, and the alarm asked for has run. Never throws. */
  deliver(): Promise<void> {
    this.#dueAt = Infinity;
    // Held flush rows are not this run's: the end of their hold is asked for again.
    if (this.#holding()) this.#wakeBy(this.#flushesHeldUntil);
    return this.#deliver(false);
  }

  /**
   * Delivers one batch, grouped per receiver; a receiver that fails keeps its rows for a retry.
   * `byWriter`: a change waits for it, and more are likely to follow (see `#delivered`).
   */
  #deliver(byWriter: boolean): Promise<void> {
    if (this.#queued) return this.#queued;
    const run = this.#delivering.then(() => {
      this.#queued = null;
      return this.#deliverBatch(byWriter);
    });
    this.#queued = run;
    this.#delivering = run.catch(() => undefined);
    return run;
  }

  async #deliverBatch(byWriter: boolean): Promise<void> {
    // The alarm runs alone: it deletes what writers' deliveries left, and what it delivers, at once.
    if (!byWriter) this.#forgetDelivered();
    const rows = this.#take(byWriter);
    if (rows.length === 0) return;
    // These flush rows go now: the next flush starts a new hold.
    if (rows.some((row) => row.kind === "flush")) this.#flushesHeldUntil = 0;
    // A flush row goes to each of its policies as a "hub" row of the same sequence; the policies
    // whose call fails are what the row keeps.
    const flushes = new Map<number, { row: EffectRow; parts: Map<string, FlushPart>; failed: Set<string> }>();
    const sends: EffectRow[] = [];
    for (const row of rows) {
      if (row.kind !== "flush") {
        sends.push(row);
        continue;
      }
      const parts = new Map((JSON.parse(row.body) as FlushBody).policies);
      flushes.set(row.seq, { row, parts, failed: new Set() });
      for (const [policyId, part] of parts) sends.push({ ...row, kind: "hub", target: policyId, body: JSON.stringify({ type: "touches", ...part } satisfies RosterBody) });
    }
    const groups = new Map<string, EffectRow[]>();
    for (const row of sends) {
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
          for (const row of group) if (!flushes.has(row.seq)) this.#delivered.push(row.seq);
        } catch (err) {
          for (const row of group) flushes.get(row.seq)?.failed.add(row.target);
          const attempts = group.reduce((most, row) => Math.max(most, row.attempts), 0) + 1;
          this.#sql.exec("UPDATE effects SET attempts = ? WHERE seq IN (SELECT value FROM json_each(?))", attempts, JSON.stringify(group.map((row) => row.seq)));
          retryAfter = Math.max(retryAfter, Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(attempts, 10)));
          // The failed rows stay in the table only.
          this.#inMemory = false;
          const first = group[0]!;
          log.error("agent_effects.delivery_failed", { kind: first.kind, target: first.target, count: group.length, attempts, error: (err as Error).message });
        }
      }),
    );
    for (const [seq, { row, parts, failed }] of flushes) {
      if (failed.size === 0) this.#delivered.push(seq);
      else if (failed.size < parts.size) {
        const kept: FlushBody = { policies: [...parts].filter(([policyId]) => failed.has(policyId)) };
        this.#sql.exec("UPDATE effects SET body = ? WHERE seq = ?", JSON.stringify(kept), row.seq);
      }
    }
    if (retryAfter > 0) await this.#schedule(Date.now() + retryAfter);
    else if (rows.length === BATCH) await this.#schedule(Date.now());
    // A writer's delivered rows wait for the alarm (see `#delivered`), asked for unless one is due sooner.
    if (!byWriter) this.#forgetDelivered();
    else if (this.#delivered.length > 0 && Date.now() + IMMEDIATE_FALLBACK_MS < this.#dueAt) await this.#schedule(Date.now() + IMMEDIATE_FALLBACK_MS);
  }

  /**
   * The next batch: a writer's delivery takes it from memory when every undelivered row is there;
   * otherwise, and always for the alarm (the safety net), it is read from the table.
   */
  #take(byWriter: boolean): EffectRow[] {
    if (byWriter && this.#inMemory) return this.#fresh.splice(0, BATCH);
    const holding = this.#holding();
    const rows = this.#sql
      .exec<EffectRow>(
        "SELECT seq, kind, target, agent_id, body, attempts FROM effects WHERE seq NOT IN (SELECT value FROM json_each(?1)) AND (?2 = 0 OR kind <> 'flush') ORDER BY seq LIMIT ?3",
        JSON.stringify(this.#delivered),
        holding ? 1 : 0,
        BATCH,
      )
      .toArray();
    // Every committed row is in the table: the read holds the fresh ones too, or a later read will.
    this.#fresh = [];
    // Held flush rows were left out of the read: they are not memory's to hold (see `#add`).
    this.#inMemory = rows.length < BATCH;
    return rows;
  }

  #forgetDelivered(): void {
    if (this.#delivered.length === 0) return;
    this.#sql.exec("DELETE FROM effects WHERE seq IN (SELECT value FROM json_each(?))", JSON.stringify(this.#delivered));
    this.#delivered = [];
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
        // Check-in counts go to the hub (part 0) with its first call; the store's id and the row's
        // sequence name each batch, so the hub counts a redelivered one once.
        const counted: CheckinBatch[] = [];
        const part = (agentId: string): RosterCalls => {
          const index = rosterShardIndexOf(agentId, count);
          let calls = parts.get(index);
          if (!calls) parts.set(index, (calls = new RosterCalls()));
          return calls;
        };
        for (const row of group) {
          const body = JSON.parse(row.body) as RosterBody;
          if (body.type === "upsert") part(row.agent_id).add("upserts", { summary: body.summary, version: row.seq });
          else if (body.type === "touches") {
            for (const [agentId, lastCheckin] of body.times) part(agentId).add("touches", { agentId, lastCheckin, version: row.seq });
            if (body.minutes) counted.push({ source: this.#source, seq: row.seq, minutes: body.minutes });
          }
          else if (body.type === "touch") part(row.agent_id).add("touches", { agentId: row.agent_id, lastCheckin: body.lastCheckin, version: row.seq });
          else part(row.agent_id).add("removes", { agentId: row.agent_id, version: row.seq });
        }
        if (counted.length > 0 && !parts.has(0)) parts.set(0, new RosterCalls().atLeastOne());
        const sent = await Promise.allSettled(
          [...parts].map(async ([index, calls]) => {
            for (const [n, changes] of calls.calls.entries()) {
              if (index === 0) await policyHub(this.#env, target).applyRoster(target, changes, n === 0 ? counted : []);
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
        // Counts on a row of their own, as stores wrote them before they rode the roster's row: still
        // in outboxes at the deploy that brings that.
        return policyHub(this.#env, target).countCheckins(
          group.map((row): CheckinBatch => ({ source: this.#source, seq: row.seq, minutes: (JSON.parse(row.body) as { minutes: CheckinMinutes }).minutes })),
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

  #add(kind: Kind, target: string, agentId: string, body: object | string, coalesceKey: string | null, delayMs: number): void {
    const text = typeof body === "string" ? body : JSON.stringify(body);
    // REPLACE drops the pending row of the same coalesce key, and the new row takes a new sequence (AUTOINCREMENT): it goes in its turn.
    const { seq } = this.#sql
      .exec<{ seq: number }>("INSERT OR REPLACE INTO effects (kind, target, agent_id, body, coalesce_key) VALUES (?, ?, ?, ?, ?) RETURNING seq", kind, target, agentId, text, coalesceKey)
      .one();
    if (coalesceKey !== null) {
      dropKey(this.#fresh, coalesceKey);
      if (this.#writing) dropKey(this.#writing, coalesceKey);
    }
    if (this.#writing) {
      this.#writing.push({ seq, kind, target, agent_id: agentId, body: text, attempts: 0, coalesceKey });
      return;
    }
    // A row held for the store's next send goes with the alarm that ends the hold (asked for when
    // the hold began), which reads the table: writers' deliveries from memory have nothing to take.
    if (kind === "flush" && this.#holding()) return;
    this.#inMemory = false;
    // A delivery queued and not yet started reads the table when it starts (this row cleared
    // #inMemory), so it takes the row: the store's alarm queues its delivery before its flush writes
    // the window's rows, and needs no second run for them.
    if (this.#queued) return;
    if (delayMs > 0) return this.#wakeBy(Date.now() + delayMs);
    if (this.#atOnce) return;
    this.#atOnce = true;
    // Once the write is done: a microtask later.
    queueMicrotask(() => {
      this.#atOnce = false;
      if (!this.#queued) this.#wakeBy(Date.now());
    });
  }

  #wakeBy(at: number): void {
    // A wake-up already due is not trusted to come: its alarm may have gone (deleted, or a failed write).
    if (at >= this.#dueAt && this.#dueAt > Date.now()) return;
    this.#schedule(at).catch((err: unknown) => log.error("agent_effects.schedule_failed", { error: (err as Error).message }));
  }

  #schedule(at: number): Promise<void> {
    this.#dueAt = Math.min(this.#dueAt, at);
    return this.#wake(at);
  }
}

/**
 * A hold ends FLUSHED_BY_MS past a multiple of `lagMs` (a minute by default): every check-in of the
 * span before it has been flushed by then, so a minute's count reaches the hub whole, about 12 s
 * after the minute ends, as without a hold. A lag of 0: no hold (it ends now).
 */
export function holdEnd(now: number, lagMs: number): number {
  if (lagMs <= 0) return now;
  return Math.floor((now - FLUSHED_BY_MS) / lagMs) * lagMs + lagMs + FLUSHED_BY_MS;
}

/** Removes the row of `key` that REPLACE just dropped from the table (at most one). */
function dropKey(rows: FreshRow[], key: string): void {
  const at = rows.findIndex((row) => row.coalesceKey === key);
  if (at >= 0) rows.splice(at, 1);
}
