import type { AgentStatus } from "../agents/status";
import { fleetConfig, type Env } from "../config";
import { directory, policyHub } from "../durable-stubs";
import { mirrorStatus, type MirrorStatus } from "../es/mirror-status";
import type { RolloutStatus } from "../policy/staged-rollout";

/** The window of "check-ins per minute": agents whose latest check-in falls within it. */
export const CHECKIN_WINDOW_MS = 60_000;

/** The overview reads at most this many policies (Kibana pages policies; fleets have far fewer). */
export const OVERVIEW_MAX_POLICIES = 1_000;

export type StatusCountsOf = Record<AgentStatus, number> & { total: number };

/** What one policy hub answers for the overview (durable/policy-hub.ts `glance`). */
export interface PolicyGlance {
  counts: StatusCountsOf;
  versions: Array<{ version: string; agents: number }>;
  checkedIn: number;
  rollout: { status: RolloutStatus; stage: number; target: number } | null;
}

export interface FleetOverviewData {
  server: { version: string; build_hash: string; build_time: string };
  results: StatusCountsOf & { active: number };
  by_policy: Array<StatusCountsOf & { policy_id: string; name: string; revision: number; active: number; checkins_last_minute: number; rollout: PolicyGlance["rollout"] }>;
  by_version: Array<{ version: string; agents: number }>;
  checkins_last_minute: number;
  mirror: MirrorStatus;
  policies_omitted: number;
}

const ZERO: StatusCountsOf = { online: 0, offline: 0, degraded: 0, error: 0, updating: 0, enrolling: 0, unenrolling: 0, unenrolled: 0, total: 0 };

/**
 * The console's overview: one read of the policy catalogue, then one call per policy hub (each an
 * aggregate over its roster in SQLite) and the mirror's monitors. No agent's store is touched.
 */
export async function fleetOverview(env: Env): Promise<FleetOverviewData> {
  const config = fleetConfig(env);
  const [{ items: policies, total }, mirror] = await Promise.all([directory(env).listPolicies(OVERVIEW_MAX_POLICIES, 0), mirrorStatus(env)]);
  const glances = await Promise.all(policies.map((policy) => policyHub(env, policy.id).glance(policy.id, config.offlineAfterMs, CHECKIN_WINDOW_MS)));
  const results = { ...ZERO, active: 0 };
  const versions = new Map<string, number>();
  let checkins = 0;
  const byPolicy = policies.map((policy, i) => {
    const { counts, versions: policyVersions, checkedIn, rollout } = glances[i]!;
    for (const key of Object.keys(ZERO) as Array<keyof StatusCountsOf>) results[key] += counts[key];
    for (const { version, agents } of policyVersions) versions.set(version, (versions.get(version) ?? 0) + agents);
    checkins += checkedIn;
    return { policy_id: policy.id, name: policy.name, revision: policy.revision, ...counts, active: counts.total - counts.unenrolled, checkins_last_minute: checkedIn, rollout };
  });
  results.active = results.total - results.unenrolled;
  return {
    server: { version: config.version.number, build_hash: config.version.buildHash, build_time: config.version.buildTime },
    results,
    by_policy: byPolicy,
    by_version: [...versions].map(([version, agents]) => ({ version, agents })).sort((a, b) => b.agents - a.agents || a.version.localeCompare(b.version)),
    checkins_last_minute: checkins,
    mirror,
    policies_omitted: Math.max(0, total - policies.length),
  };
}
