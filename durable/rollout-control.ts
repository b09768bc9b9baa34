import { contentHash } from "../src/policy/content-hash";
import type { Failure } from "../src/errors";
import { log } from "../src/log";
import type { PolicyRevision } from "../src/protocol/policy";
import { decide, isSplitting, stageThreshold, type RolloutCriteria, type RolloutSample, type RolloutState, type StageStats } from "../src/policy/staged-rollout";
import type { PolicyPut } from "./policy-hub";
import { RolloutSamples } from "./rollout-samples";

/** How often a running staged rollout is evaluated. */
const ROLLOUT_EVALUATION_MS = 10_000;

export type RolloutCommand = "pause" | "resume" | "promote" | "abort";
export type RolloutStart = PolicyPut & { stages: number[]; criteria: RolloutCriteria };
export type RolloutProgress = RolloutState & { current: { percent: number; members: number; acked: number; failed: number }; samples: RolloutSample[] };

/** What the rollout control uses of the policy hub that composes it. */
export interface RolloutHost {
  latest(): PolicyRevision | null;
  latestHash(): string | null;
  revision(revision: number): PolicyRevision | null;
  /** Stores `content` as the policy's next revision and has it delivered; returns it. */
  publish(content: PolicyPut, hash: string): PolicyRevision;
  /** Has the shards sent the current delivery snapshot once the running step ends. */
  redeliver(): void;
  /** Members, acks and failures of the active agents below `threshold`, summed over the roster's shards. */
  stageStats(threshold: number, target: number, since: string): Promise<StageStats>;
  /** Wake the hub (its alarm, shared with other concerns) no later than `at`. */
  wakeAt(at: number): Promise<void>;
}

/**
 * A policy's staged rollout: the state (one row of the hub's `rollout` table), the admin commands,
 * and the periodic evaluation that applies `staged-rollout.ts`'s decisions. The hub composes it and
 * runs every method that writes under its write lock, so a method may read, await and then write.
 */
export class RolloutControl {
  readonly #storage: DurableObjectStorage;
  readonly #hub: RolloutHost;
  /** The progress over time, for the rollout's chart. */
  readonly #samples: RolloutSamples;
  #state: RolloutState | null = null;
  /** The revision agents outside the current stage keep, while the rollout splits the fleet. */
  #previous: PolicyRevision | null = null;

  constructor(storage: DurableObjectStorage, hub: RolloutHost) {
    this.#storage = storage;
    this.#hub = hub;
    this.#samples = new RolloutSamples(storage.sql);
  }

  /** Reads the stored rollout; called once the hub's schema and revisions are in place. */
  load(): void {
    const row = this.#storage.sql.exec<{ body: string }>("SELECT body FROM rollout WHERE k = 1").toArray()[0];
    this.#state = row ? (JSON.parse(row.body) as RolloutState) : null;
    if (isSplitting(this.#state)) this.#previous = this.#hub.revision(this.#state.previous);
  }

  get state(): RolloutState | null {
    return this.#state;
  }

  /** The revision agents outside the current stage run, or null when the rollout no longer splits. */
  get previous(): PolicyRevision | null {
    return isSplitting(this.#state) ? this.#previous : null;
  }

  /** The reason a plain publish must wait, or null when no rollout splits the fleet. */
  blocksPublish(): Failure | null {
    if (!isSplitting(this.#state)) return null;
    return { error: "Conflict", detail: `a staged rollout of revision ${this.#state.target} is in progress: promote, wait for it, or abort it first` };
  }

  /**
   * Publishes a new revision to the first stage only. Later stages follow as the evaluation
   * (every 10 s, or an admin's `promote`) finds each stage acked and healthy.
   */
  async start(input: RolloutStart): Promise<RolloutProgress | Failure> {
    const latest = this.#hub.latest();
    if (!latest) return { error: "NotFound", detail: `agent policy ${input.policyId} has no revision to roll out from` };
    if (isSplitting(this.#state)) return { error: "Conflict", detail: `a staged rollout of revision ${this.#state.target} is already in progress` };
    const hash = await contentHash(input);
    if (hash === this.#hub.latestHash()) return { error: "Conflict", detail: "the content equals the latest revision: nothing to roll out" };
    const now = new Date().toISOString();
    this.#previous = latest;
    this.#save({
      target: latest.revision + 1,
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
    this.#hub.publish(input, hash);
    this.#samples.begin(this.#state!.target);
    await this.#sample(this.#state!, true);
    await this.#hub.wakeAt(Date.now() + ROLLOUT_EVALUATION_MS);
    return this.#progressOf(this.#state!);
  }

  /** The rollout with the current stage's counts, or null when the policy never had one. */
  async progress(): Promise<RolloutProgress | null> {
    return this.#state ? this.#progressOf(this.#state) : null;
  }

  /**
   * pause, resume, promote (skip the wait), or abort (everyone back to the previous content, as a new
   * revision). Answers with the progress as the command left it, read in the same write step: an
   * evaluation that runs right after (a resume asks for one at once) does not show through.
   */
  async command(command: RolloutCommand, by: string): Promise<RolloutProgress | Failure> {
    const rollout = this.#state;
    if (!isSplitting(rollout)) return { error: "Conflict", detail: "no staged rollout is in progress" };
    if (command !== "promote") await this.#sample(rollout, false);
    switch (command) {
      case "pause":
        this.#save({ ...rollout, status: "paused", reason: `paused by ${by}` });
        break;
      case "resume":
        this.#save({ ...rollout, status: "running", stage_started_at: new Date().toISOString(), reason: `resumed by ${by}` });
        await this.#hub.wakeAt(Date.now());
        break;
      case "promote":
        await this.#advance(rollout, `promoted by ${by}`);
        break;
      case "abort": {
        const previous = this.#previous ?? this.#hub.revision(rollout.previous);
        this.#save({ ...rollout, status: "aborted", reason: `aborted by ${by}` });
        if (previous) {
          const content = {
            policyId: previous.policy_id,
            createdBy: by,
            name: previous.name,
            namespace: previous.namespace,
            ...(previous.description !== undefined ? { description: previous.description } : {}),
            policy: previous.policy,
          };
          this.#hub.publish(content, await contentHash(content));
        }
        break;
      }
    }
    return this.#progressOf(this.#state!);
  }

  /** One evaluation of a running rollout: promote, complete, hold, or wait. */
  async evaluate(): Promise<RolloutState | null> {
    const rollout = this.#state;
    if (!rollout || rollout.status !== "running") return rollout;
    const stats = await this.#stageStats(rollout);
    this.#samples.record(rollout.target, rollout.stage, stats, new Date().toISOString(), false);
    const decision = decide(rollout, stats, Date.now());
    if (decision.action === "promote" || decision.action === "complete") await this.#advance(rollout, "criteria met");
    if (decision.action === "hold") {
      this.#save({ ...rollout, status: "held", reason: decision.reason });
      log.warn("rollout.held", { policy_id: this.#hub.latest()?.policy_id, reason: decision.reason });
    }
    return this.#state;
  }

  /** The evaluation alarm: evaluates a running rollout and, while it keeps running, schedules the next. */
  async onAlarm(): Promise<void> {
    if (this.#state?.status !== "running") return;
    await this.evaluate();
    if (this.#state?.status === "running") await this.#hub.wakeAt(Date.now() + ROLLOUT_EVALUATION_MS);
  }

  /** A revision published elsewhere (Kibana) replaces whatever was being rolled out. */
  supersede(reason: string): void {
    if (isSplitting(this.#state)) this.#save({ ...this.#state, status: "superseded", reason });
  }

  async #progressOf(rollout: RolloutState): Promise<RolloutProgress> {
    return { ...rollout, current: { percent: rollout.stages[rollout.stage] ?? 100, ...(await this.#stageStats(rollout)) }, samples: this.#samples.list(rollout.target) };
  }

  /** Samples the current stage's counts now (see RolloutSamples). */
  async #sample(rollout: RolloutState, always: boolean): Promise<void> {
    this.#samples.record(rollout.target, rollout.stage, await this.#stageStats(rollout), new Date().toISOString(), always);
  }

  #stageStats(rollout: RolloutState): Promise<StageStats> {
    return this.#hub.stageStats(stageThreshold(rollout), rollout.target, rollout.stage_started_at);
  }

  /** Closes the current stage and opens the next (or completes), delivering to the agents it adds. */
  async #advance(rollout: RolloutState, outcome: string): Promise<void> {
    const now = new Date().toISOString();
    const stats = await this.#stageStats(rollout);
    // The stage's last point, then (below) the next stage's first: the chart shows each stage whole.
    this.#samples.record(rollout.target, rollout.stage, stats, now, false);
    const history = [
      ...rollout.history,
      { stage: rollout.stage, percent: rollout.stages[rollout.stage] ?? 100, started_at: rollout.stage_started_at, ended_at: now, ...stats, outcome },
    ];
    const last = rollout.stage >= rollout.stages.length - 1;
    this.#save(
      last
        ? { ...rollout, status: "completed", history, reason: outcome }
        : { ...rollout, stage: rollout.stage + 1, status: "running", stage_started_at: now, history, reason: outcome },
    );
    log.info(last ? "rollout.completed" : "rollout.promoted", { policy_id: this.#hub.latest()?.policy_id, stage: this.#state!.stage });
    if (!last) await this.#sample(this.#state!, true);
    // A promote by hand may come while paused or held, when no evaluation alarm is pending.
    if (!last) await this.#hub.wakeAt(Date.now() + ROLLOUT_EVALUATION_MS);
    this.#hub.redeliver();
  }

  #save(rollout: RolloutState): void {
    this.#storage.sql.exec("INSERT INTO rollout (k, body) VALUES (1, ?) ON CONFLICT (k) DO UPDATE SET body = excluded.body", JSON.stringify(rollout));
    this.#state = rollout;
    if (!isSplitting(rollout)) this.#previous = null;
  }
}
