import type { AgentStatus } from "../agents/status";
import { minuteOf, MINUTE_MS, perMinute, type CheckinMinutes } from "../agents/checkin-rate";
import { fleetConfig, type Env, type FleetConfig } from "../config";
import { directory, policyHub } from "../durable-stubs";
import { mirrorStatus, type MirrorStatus } from "../es/mirror-status";
import type { RolloutStatus } from "../policy/staged-rollout";
import type { PolicySummary } from "./directory-records";

/** The overview reads at most this many policies (Kibana pages policies; fleets have far fewer). */
export const OVERVIEW_MAX_POLICIES = 1_000;

export type StatusCountsOf = Record<AgentStatus, number> & { total: number };

/** What one policy hub answers for the overview (durable/policy-hub.ts `glance`), and pushes to the console's feed. */
export interface PolicyGlance {
  /** The hub's latest revision (0 when it has none: a deleted policy). */
  revision: number;
  counts: StatusCountsOf;
  versions: Array<{ version: string; agents: number }>;
  /** Check-ins per minute, the counted minutes of the last CHECKIN_MINUTES_SHOWN. */
  checkins: CheckinMinutes;
  rollout: { status: RolloutStatus; stage: number; target: number } | null;
}

export interface FleetOverviewData {
  server: { version: string; build_hash: string; build_time: string };
  results: StatusCountsOf & { active: number };
  by_policy: Array<
    StatusCountsOf & {
      policy_id: string;
      name: string;
      revision: number;
      active: number;
      checkins_last_minute: number;
      checkins_this_minute: number;
      rollout: PolicyGlance["rollout"];
    }
  >;
  by_version: Array<{ version: string; agents: number }>;
  /** Check-ins in the last whole minute (the one before the current minute). */
  checkins_last_minute: number;
  /** Check-ins so far in the current minute. */
  checkins_this_minute: number;
  /** The last CHECKIN_MINUTES_SHOWN minutes, oldest first, the current one last. */
  checkins_per_minute: Array<{ minute: string; count: number }>;
  mirror: MirrorStatus;
  policies_omitted: number;
}

/** Everything the overview is made of: the policy catalogue's page, each policy's glance, the mirror. */
export interface OverviewParts {
  policies: PolicySummary[];
  total: number;
  glances: Map<string, PolicyGlance>;
  mirror: MirrorStatus;
}

const ZERO: StatusCountsOf = { online: 0, offline: 0, degraded: 0, error: 0, updating: 0, enrolling: 0, unenrolling: 0, unenrolled: 0, total: 0 };

/**
 * Reads the overview's parts: one read of the policy catalogue, then one call per policy hub (each
 * an aggregate over its roster in SQLite) and the mirror's monitors. No agent's store is touched.
 * `watchUntil` (ms): the console's feed asks the hubs to push their changes to it until then.
 */
export async function overviewParts(env: Env, watchUntil = 0): Promise<OverviewParts> {
  const [{ items: policies, total }, mirror] = await Promise.all([directory(env).listPolicies(OVERVIEW_MAX_POLICIES, 0), mirrorStatus(env)]);
  const glances = await Promise.all(policies.map((policy) => policyHub(env, policy.id).glance(policy.id, watchUntil)));
  return { policies, total, glances: new Map(policies.map((policy, i) => [policy.id, glances[i]!])), mirror };
}

/** The console's overview, read now. */
export async function fleetOverview(env: Env): Promise<FleetOverviewData> {
  return composeOverview(fleetConfig(env), await overviewParts(env), Date.now());
}

/** The overview from its parts, as of `now` (which minute is the current one). */
export function composeOverview(config: FleetConfig, parts: OverviewParts, now: number): FleetOverviewData {
  const results = { ...ZERO, active: 0 };
  const versions = new Map<string, number>();
  const current = minuteOf(now);
  const minuteCount = (checkins: CheckinMinutes, minute: number) => checkins.find(([m]) => m === minute)?.[1] ?? 0;
  const byPolicy = parts.policies.flatMap((policy) => {
    const glance = parts.glances.get(policy.id);
    if (!glance) return [];
    const { counts, versions: policyVersions, checkins, rollout } = glance;
    for (const key of Object.keys(ZERO) as Array<keyof StatusCountsOf>) results[key] += counts[key];
    for (const { version, agents } of policyVersions) versions.set(version, (versions.get(version) ?? 0) + agents);
    return [
      {
        policy_id: policy.id,
        name: policy.name,
        // The hub's own number is the newer one while the catalogue catches up with a publish.
        revision: Math.max(policy.revision, glance.revision),
        ...counts,
        active: counts.total - counts.unenrolled,
        checkins_last_minute: minuteCount(checkins, current - MINUTE_MS),
        checkins_this_minute: minuteCount(checkins, current),
        rollout,
      },
    ];
  });
  results.active = results.total - results.unenrolled;
  const minutes = perMinute(
    parts.policies.map((policy) => parts.glances.get(policy.id)?.checkins ?? []),
    now,
  );
  return {
    server: { version: config.version.number, build_hash: config.version.buildHash, build_time: config.version.buildTime },
    results,
    by_policy: byPolicy,
    by_version: [...versions].map(([version, agents]) => ({ version, agents })).sort((a, b) => b.agents - a.agents || a.version.localeCompare(b.version)),
    checkins_last_minute: minutes[minutes.length - 2]?.count ?? 0,
    checkins_this_minute: minutes[minutes.length - 1]?.count ?? 0,
    checkins_per_minute: minutes.map(({ minute, count }) => ({ minute: new Date(minute).toISOString(), count })),
    mirror: parts.mirror,
    policies_omitted: Math.max(0, parts.total - parts.policies.length),
  };
}
