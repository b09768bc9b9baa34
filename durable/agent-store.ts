import { DurableObject } from "cloudflare:workers";
import { fleetConfig, type Env } from "../src/config";
import { AGENT_METHODS, type AgentMethod } from "../src/agents/agent-stores";
import { mirrorMonitorFor, type AgentCallResult } from "../src/durable-stubs";
import { Agent, type AgentHome } from "./agent";
import { AgentEffects, EFFECTS_SCHEMA } from "./agent-effects";
import { AlarmSchedule } from "./alarm-schedule";
import { CHECKIN_FLUSH_MS, CheckinJournal, CHECKIN_JOURNAL_SCHEMA } from "./checkin-journal";
import { CheckinTally } from "./checkin-tally";
import { EsOutbox, OUTBOX_SCHEMA } from "./es-outbox";
import { STATUS_HISTORY_SCHEMA } from "./status-history";
import { OUTPUT_KEYS_SCHEMA, OutputKeyRing } from "./output-key-ring";
import { ResidentSet } from "./resident-set";
import { migrateOnStart } from "./sql-schema";
import { log, useLogSettings } from "../src/log";

/** At most this many agents stay loaded in memory per store (least recently used idle ones are unloaded). */
const MAX_RESIDENT = 5_000;

const SCHEMA = [
  `CREATE TABLE agents (agent_id TEXT PRIMARY KEY, doc TEXT NOT NULL, access_key_hash TEXT);
   CREATE TABLE actions (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     agent_id TEXT NOT NULL,
     action_id TEXT NOT NULL,
     doc_id TEXT NOT NULL,
     type TEXT NOT NULL,
     expiration TEXT NOT NULL,
     body TEXT NOT NULL,
     UNIQUE (agent_id, action_id),
     UNIQUE (agent_id, doc_id));
   CREATE INDEX actions_by_agent ON actions (agent_id, seq);
   CREATE TABLE action_results (
     agent_id TEXT NOT NULL, action_id TEXT NOT NULL, created_at TEXT NOT NULL, body TEXT NOT NULL,
     PRIMARY KEY (agent_id, action_id));`,
  OUTBOX_SCHEMA,
  OUTPUT_KEYS_SCHEMA,
  // The one socket that delivers an agent's actions (its lease), while HTTP check-ins deliver none.
  `CREATE TABLE socket_lease (agent_id TEXT PRIMARY KEY, connection TEXT NOT NULL, until INTEGER NOT NULL);`,
  // A lease no longer expires: an HTTP check-in takes delivery over at once instead.
  `ALTER TABLE socket_lease DROP COLUMN until;`,
  EFFECTS_SCHEMA,
  STATUS_HISTORY_SCHEMA,
  CHECKIN_JOURNAL_SCHEMA,
];

/**
 * Many agents in one SQLite-backed object (DESIGN.md's "sharded agent store"): rows keyed by agent
 * id, one outbox and one alarm for all of them. One object per agent cost a SQLite database, an
 * object instance and an outbox alarm per agent; here those are shared, and each `Agent` is a plain
 * object loaded on first use. Calls for one agent still see that agent's state exactly as before:
 * they run on this object's single thread, and interleave only at their own awaits.
 */
export class AgentStore extends DurableObject<Env> {
  readonly #alarms: AlarmSchedule;
  readonly #outbox: EsOutbox;
  readonly #effects: AgentEffects;
  readonly #keys: OutputKeyRing;
  readonly #home: AgentHome;
  readonly #journal: CheckinJournal;
  readonly #resident = new ResidentSet<Agent>(MAX_RESIDENT, (agent) => agent.unsaved);
  /** Agents holding check-in times not yet written, and when they are due. */
  readonly #unsaved = new Set<Agent>();
  /** Check-ins counted per policy and minute, written to the effects with the held times. */
  readonly #tally = new CheckinTally();
  #flushDue: number | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    useLogSettings(env);
    const owner = `agent-store:${ctx.id.toString()}`;
    this.#alarms = new AlarmSchedule(ctx.storage);
    const wake = (at: number) => this.#alarms.request(at);
    this.#outbox = new EsOutbox(ctx, env, {
      flushDelayMs: fleetConfig(env).mirrorFlushMs,
      report: (backlog) => mirrorMonitorFor(env, owner).report(owner, backlog),
      wake,
    });
    this.#effects = new AgentEffects(ctx.storage, env, wake, ctx.id.toString());
    this.#keys = new OutputKeyRing(ctx, env, wake);
    this.#journal = new CheckinJournal(ctx.storage.sql);
    this.#home = {
      storage: ctx.storage,
      outbox: this.#outbox,
      effects: this.#effects,
      keys: this.#keys,
      change: (write) => this.#effects.change(write),
      deferSave: (agent) => this.#deferSave(agent),
      journaledCheckin: (agentId) => this.#journal.timeOf(agentId),
      countCheckin: (policyId) => {
        this.#tally.count(policyId, Date.now());
        this.#flushSoon();
      },
    };
    migrateOnStart(ctx, SCHEMA, () => this.#effects.resume());
  }

  /** Runs one agent operation (the store's whole RPC surface; `agentObject` gives it a typed face). */
  async call<M extends AgentMethod>(agentId: string, method: M, args: Parameters<Agent[M]>): Promise<AgentCallResult<M>> {
    if (!AGENT_METHODS.includes(method)) throw new TypeError(`AgentStore: unknown operation ${String(method)}`);
    // A busy store writes due check-in times as it goes; the alarm covers a store that went quiet.
    if (this.#flushDue !== null && Date.now() >= this.#flushDue) this.#saveCheckins();
    const agent = this.#resident.enter(agentId, () => new Agent(this.#home, agentId));
    try {
      // The method is one of AGENT_METHODS and args were typed against it by the caller.
      const operation = agent[method] as (...a: Parameters<Agent[M]>) => Promise<AgentCallResult<M>>;
      return await operation.apply(agent, args);
    } finally {
      // Ids that name no agent (failed lookups) are not kept.
      this.#resident.leave(agentId, agent.enrolled);
    }
  }

  /** Effects not yet delivered to other objects (tests and observability; the Worker never asks). */
  pendingEffects(): number {
    return this.#effects.pending();
  }

  /**
   * Writes held check-in times, delivers effects to other objects and the Elasticsearch outbox, and
   * invalidates retired output keys. Check-ins held while this runs get their flush asked for as
   * usual: the schedule sets it when the run ends (see AlarmSchedule).
   */
  override async alarm(): Promise<void> {
    await this.#alarms.run(async () => {
      // Queued first: it reads the effects when it starts, so the rows the flush below writes go with
      // it instead of asking for another alarm run.
      const delivered = this.#effects.deliver();
      try {
        // The alarm also fires for effects and the outbox: held times are written when due, not at
        // every run, or a busy store would write every heartbeat.
        if (this.#flushDue !== null) {
          if (Date.now() >= this.#flushDue) this.#saveCheckins();
          else await this.#alarms.request(this.#flushDue);
        }
      } finally {
        // Awaited even when the flush throws: a queued delivery is never left running unobserved.
        await delivered;
      }
      await this.#outbox.drain();
      await this.#keys.invalidateRetired();
    });
  }

  #deferSave(agent: Agent): void {
    this.#unsaved.add(agent);
    this.#flushSoon();
  }

  /** Held check-in times or counts are written within CHECKIN_FLUSH_MS. */
  #flushSoon(): void {
    if (this.#flushDue !== null) return;
    this.#flushDue = Date.now() + CHECKIN_FLUSH_MS;
    this.#alarms.request(this.#flushDue).catch((err: unknown) =>
      log.error("agent_store.alarm_failed", { error: (err as Error).message }),
    );
  }

  /**
   * One journal row for the window's times, all in the calling event's implicit transaction; each
   * policy's roster learns the new times and its check-in counts from the flush's one effect row
   * (one hub call per policy). Windows an hour old leave the journal, their quiet agents' times
   * moving into the records (durable/checkin-journal.ts).
   */
  #saveCheckins(): void {
    const now = Date.now();
    this.#effects.collectTouches(this.#tally.take(), () => {
      const times = new Map<string, string>();
      for (const agent of this.#unsaved) {
        const at = agent.journalCheckin();
        if (at) times.set(agent.id, at);
      }
      this.#journal.write(times, now);
    });
    this.#journal.expire(now, (agentId, at) =>
      this.ctx.storage.sql.exec(
        "UPDATE agents SET doc = json_set(doc, '$.last_checkin', ?1, '$.updated_at', max(json_extract(doc, '$.updated_at'), ?1)) WHERE agent_id = ?2 AND json_extract(doc, '$.last_checkin') < ?1",
        at,
        agentId,
      ),
    );
    this.#unsaved.clear();
    this.#flushDue = null;
  }
}
