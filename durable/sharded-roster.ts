import { MERGED_PAGE_WINDOW, mergePages, partQuery, type AgentQuery, type ListedAgent } from "../src/admin/agent-query";
import type { StatusContext } from "../src/agents/status";
import { fleetConfig, type Env } from "../src/config";
import { rosterShard } from "../src/durable-stubs";
import type { Failure } from "../src/errors";
import type { StageStats } from "../src/policy/staged-rollout";
import type { AgentRoster, RosterOverview, StatusCounts } from "./agent-roster";

/**
 * Schema step of the hub (after the roster's counters): a hub that already holds roster rows keeps
 * them all, one roster shard; a new hub takes its count from the configuration when first asked.
 */
export const ROSTER_LAYOUT_SCHEMA = `INSERT INTO roster_meta (k, v) SELECT 'shards', 1 WHERE EXISTS (SELECT 1 FROM roster);`;

/**
 * A policy's whole roster as its hub reads it: part 0 in the hub's own SQLite, parts 1 … R-1 in
 * `RosterShard` objects (`<policy>#roster-<n>`), an agent in part `rosterShardIndexOf(id, R)`.
 * Counts and stage counts ask every part for its counters and sum them; a listing asks every part
 * for the same filtered, sorted page and merges. With R = 1 nothing leaves the hub.
 *
 * R is fixed when the hub first lays out its roster (`ceil(FLEET_MAX_AGENTS /
 * AGENTS_PER_ROSTER_SHARD)` at that time) and kept for the policy's life: agent stores learn it once
 * per policy and never see it change, so no row ever sits in a part that does not own it.
 */
export class ShardedRoster {
  readonly #sql: SqlStorage;
  readonly #env: Env;
  readonly #local: AgentRoster;
  #count: number | null = null;

  constructor(sql: SqlStorage, env: Env, local: AgentRoster) {
    this.#sql = sql;
    this.#env = env;
    this.#local = local;
  }

  /** How many parts this policy's roster has; the first call fixes it. */
  count(): number {
    if (this.#count !== null) return this.#count;
    const stored = this.#sql.exec<{ v: number }>("SELECT v FROM roster_meta WHERE k = 'shards'").toArray()[0];
    if (stored) return (this.#count = stored.v);
    const count = fleetConfig(this.#env).rosterShards;
    this.#sql.exec("INSERT INTO roster_meta (k, v) VALUES ('shards', ?)", count);
    return (this.#count = count);
  }

  async counts(policyId: string | null, context: StatusContext): Promise<StatusCounts> {
    const parts = await Promise.all(this.#parts(policyId).map((part) => part.counts(context)));
    return parts.reduce(addCounts, this.#local.counts(context));
  }

  async stageStats(policyId: string | null, threshold: number, target: number, since: string): Promise<StageStats> {
    const parts = await Promise.all(this.#parts(policyId).map((part) => part.stageStats(threshold, target, since)));
    return parts.reduce(
      (sum, part) => ({ members: sum.members + part.members, acked: sum.acked + part.acked, failed: sum.failed + part.failed }),
      this.#local.stageStats(threshold, target, since),
    );
  }

  async overview(policyId: string | null, context: StatusContext): Promise<RosterOverview> {
    const parts = await Promise.all(this.#parts(policyId).map((part) => part.overview(context)));
    const local = this.#local.overview(context);
    if (parts.length === 0) return local;
    const versions = new Map<string, number>();
    for (const { version, agents } of [local, ...parts].flatMap((part) => part.versions)) versions.set(version, (versions.get(version) ?? 0) + agents);
    return {
      counts: parts.reduce((sum, part) => addCounts(sum, part.counts), local.counts),
      versions: [...versions].map(([version, agents]) => ({ version, agents })).sort((a, b) => b.agents - a.agents || (a.version < b.version ? -1 : 1)),
    };
  }

  async activeCount(policyId: string | null): Promise<number> {
    const parts = await Promise.all(this.#parts(policyId).map((part) => part.activeCount()));
    return parts.reduce((sum, n) => sum + n, this.#local.activeCount());
  }

  /** Active agents per acked revision (newest first) and up to `limit` agents in trouble behind `revision`. */
  async progress(policyId: string | null, revision: number, limit: number): Promise<{ revisions: Array<{ revision: number; agents: number }>; failing: ListedAgent[] }> {
    const parts = await Promise.all(this.#parts(policyId).map(async (part) => ({ revisions: await part.revisions(), failing: await part.failing(revision, limit) })));
    const local = { revisions: this.#local.revisions(), failing: this.#local.failing(revision, limit) };
    if (parts.length === 0) return local;
    const agents = new Map<number, number>();
    for (const row of [local, ...parts].flatMap((part) => part.revisions)) agents.set(row.revision, (agents.get(row.revision) ?? 0) + row.agents);
    const failing = [local, ...parts]
      .flatMap((part) => part.failing)
      .sort((a, b) => ((b.last_checkin ?? "") < (a.last_checkin ?? "") ? -1 : (b.last_checkin ?? "") > (a.last_checkin ?? "") ? 1 : 0))
      .slice(0, limit);
    return { revisions: [...agents].map(([rev, n]) => ({ revision: rev, agents: n })).sort((a, b) => b.revision - a.revision), failing };
  }

  /**
   * A page of the policy's agents. With several parts each answers its first `offset + limit` rows
   * (or its first `limit` after the cursor) and the pages merge, so offset paging stops at
   * `MERGED_PAGE_WINDOW` as it does across policies.
   */
  async list(policyId: string, query: AgentQuery, context: StatusContext): Promise<{ items: ListedAgent[]; total: number } | Failure> {
    if (this.count() === 1) return this.#local.list(policyId, query, context);
    if (query.offset + query.limit > MERGED_PAGE_WINDOW) {
      return {
        error: "AdminBadRequest",
        detail: `page * perPage may not exceed ${MERGED_PAGE_WINDOW} in a policy whose roster is sharded; page with searchAfter (each page's nextSearchAfter) to go deeper`,
      };
    }
    const part = partQuery(query);
    const pages = await Promise.all(this.#parts(policyId).map((shard) => shard.list(policyId, part, context)));
    return mergePages([this.#local.list(policyId, part, context), ...pages], query);
  }

  /** Every part's inactive rows go (the policy is being deleted, no active agent being left). */
  async dropInactive(policyId: string | null): Promise<void> {
    await Promise.all(this.#parts(policyId).map((part) => part.dropInactive()));
    this.#local.dropInactive();
  }

  /** The remote parts (1 … R-1). */
  #parts(policyId: string | null) {
    const count = this.count();
    if (count === 1) return [];
    if (policyId === null) throw new Error("roster shards: the hub does not know its policy id yet");
    return Array.from({ length: count - 1 }, (_, i) => rosterShard(this.#env, policyId, i + 1));
  }
}

function addCounts(sum: StatusCounts, part: StatusCounts): StatusCounts {
  const total = { ...sum };
  for (const key of Object.keys(part) as Array<keyof StatusCounts>) total[key] += part[key];
  return total;
}
