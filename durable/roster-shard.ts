import { DurableObject } from "cloudflare:workers";
import type { AgentQuery, ListedAgent } from "../src/admin/agent-query";
import type { RosterChanges } from "../src/agents/effects";
import type { StatusContext } from "../src/agents/status";
import type { Env } from "../src/config";
import { useLogSettings } from "../src/log";
import type { StageStats } from "../src/policy/staged-rollout";
import { AgentRoster, ROSTER_SCHEMA_STEPS, type RosterOverview, type StatusCounts } from "./agent-roster";
import { migrateSchema } from "./sql-schema";

/**
 * One part (`<policy>#roster-<n>`, n ≥ 1) of a large policy's roster: the rows of the agents whose
 * id hashes to it, with their counters (durable/agent-roster.ts). Part 0 lives in the policy's hub.
 * Agent stores write here (`applyRoster`, as effects); the hub reads (counts, stage counts,
 * listings) and sums or merges the parts (durable/sharded-roster.ts). It knows nothing of revisions:
 * the hub passes what a status needs (the latest revision, the time) with each read.
 */
export class RosterShard extends DurableObject<Env> {
  #roster!: AgentRoster;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    useLogSettings(env);
    void ctx.blockConcurrencyWhile(async () => {
      migrateSchema(ctx.storage, ROSTER_SCHEMA_STEPS);
      this.#roster = new AgentRoster(ctx.storage.sql);
      this.#roster.prepare();
    });
  }

  /** Roster rows from an agent store's effects: one transaction, idempotent (versions). */
  async applyRoster(changes: RosterChanges): Promise<void> {
    this.ctx.storage.transactionSync(() => this.#roster.apply(changes));
  }

  async list(policyId: string, query: AgentQuery, context: StatusContext): Promise<{ items: ListedAgent[]; total: number }> {
    return this.#roster.list(policyId, query, context);
  }

  async counts(context: StatusContext): Promise<StatusCounts> {
    return this.#roster.counts(context);
  }

  async stageStats(threshold: number, target: number, since: string): Promise<StageStats> {
    return this.#roster.stageStats(threshold, target, since);
  }

  async overview(context: StatusContext): Promise<RosterOverview> {
    return this.#roster.overview(context);
  }

  async activeCount(): Promise<number> {
    return this.#roster.activeCount();
  }

  async revisions(): Promise<Array<{ revision: number; agents: number }>> {
    return this.#roster.revisions();
  }

  async failing(revision: number, limit: number): Promise<ListedAgent[]> {
    return this.#roster.failing(revision, limit);
  }

  /** The policy is being deleted: its inactive rows go. */
  async dropInactive(): Promise<void> {
    this.ctx.storage.transactionSync(() => this.#roster.dropInactive());
  }
}
