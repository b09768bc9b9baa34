/**
 * Admission limits modelled on fleet-server's tiers (`internal/pkg/config/defaults/*_limits.yml`,
 * copied as numbers): a token bucket (`ratePerSec` refill, `burst` size) and a cap on concurrent
 * requests (`max`), per route, chosen by the fleet size an operator declares (`FLEET_MAX_AGENTS`).
 * fleet-server applies one tier to its whole process; here each limit applies to the object that
 * would otherwise be overloaded: check-in limits to each policy hub (per policy), enrollment limits to
 * the Directory (fleet-wide), and a per-agent fairness limit to each agent's store.
 */
export interface RouteLimit {
  ratePerSec: number;
  burst: number;
  max: number;
}

export interface Tier {
  /** Largest fleet the tier is for; Infinity for fleet-server's "max" tier. */
  maxAgents: number;
  checkin: RouteLimit;
  enroll: RouteLimit;
  ack: RouteLimit;
}

const every = (intervalMs: number) => 1000 / intervalMs;

export const TIERS: readonly Tier[] = [
  { maxAgents: 500, checkin: { ratePerSec: every(5), burst: 100, max: 500 }, enroll: { ratePerSec: every(10), burst: 10, max: 20 }, ack: { ratePerSec: every(4), burst: 100, max: 200 } },
  { maxAgents: 1000, checkin: { ratePerSec: every(5), burst: 200, max: 1000 }, enroll: { ratePerSec: every(10), burst: 20, max: 40 }, ack: { ratePerSec: every(4), burst: 200, max: 400 } },
  { maxAgents: 2500, checkin: { ratePerSec: every(5), burst: 500, max: 2500 }, enroll: { ratePerSec: every(10), burst: 50, max: 100 }, ack: { ratePerSec: every(4), burst: 500, max: 1000 } },
  { maxAgents: 5000, checkin: { ratePerSec: every(2), burst: 1000, max: 5000 }, enroll: { ratePerSec: every(10), burst: 100, max: 200 }, ack: { ratePerSec: every(2), burst: 1000, max: 2000 } },
  { maxAgents: 10000, checkin: { ratePerSec: every(1), burst: 2000, max: 10000 }, enroll: { ratePerSec: every(10), burst: 100, max: 200 }, ack: { ratePerSec: every(1), burst: 2000, max: 4000 } },
  { maxAgents: 20000, checkin: { ratePerSec: every(0.5), burst: 4000, max: 20000 }, enroll: { ratePerSec: every(10), burst: 100, max: 200 }, ack: { ratePerSec: every(0.5), burst: 4000, max: 8000 } },
  { maxAgents: 40000, checkin: { ratePerSec: every(0.5), burst: 4000, max: 40000 }, enroll: { ratePerSec: every(10), burst: 100, max: 200 }, ack: { ratePerSec: every(0.5), burst: 4000, max: 8000 } },
  { maxAgents: Infinity, checkin: { ratePerSec: every(0.25), burst: 8000, max: 80000 }, enroll: { ratePerSec: every(10), burst: 200, max: 400 }, ack: { ratePerSec: every(0.25), burst: 8000, max: 16000 } },
];

/**
 * The smallest tier that holds `agents`, as fleet-server picks by `server.limits.max_agents`. A
 * declared fleet larger than the last tier's `max` (80,000 check-ins held by one fleet-server
 * process) is what fleet-server serves with several processes: its check-in and ack limits are the
 * last tier's times that many processes (for 1.25× the fleet), so a million agents can all hold a
 * poll (docs/scale.md).
 * Enrollment stays at the tier's: the Directory, one object, is what it protects.
 */
const SHARD_SPREAD_HEADROOM = 1.25;

export function tierFor(agents: number): Tier {
  const tier = TIERS.find((t) => agents <= t.maxAgents) ?? TIERS[TIERS.length - 1]!;
  if (!Number.isFinite(agents) || agents <= tier.checkin.max) return tier;
  // A quarter more than the fleet: each shard holds its share, and a hash spreads agents over
  // shards only about evenly (1M agents over 200 shards: the fullest holds ~5,200, not 5,000).
  const processes = Math.ceil((agents * SHARD_SPREAD_HEADROOM) / tier.checkin.max);
  const times = (limit: RouteLimit): RouteLimit => ({ ratePerSec: limit.ratePerSec * processes, burst: limit.burst * processes, max: limit.max * processes });
  return { ...tier, checkin: times(tier.checkin), ack: times(tier.ack) };
}

/**
 * Enrollment at the Directory: fleet-server's enroll tiers (10–200/s) pace Elasticsearch API-key
 * creation, which enrolling here does not do (an access key is a random secret and one SQLite row).
 * What needs protecting is the Directory object itself, which every enrollment passes, so its limit
 * is the larger of the tier and this floor, kept below the object's measured capacity.
 */
export const DIRECTORY_ENROLL_FLOOR: Pick<RouteLimit, "ratePerSec" | "burst"> = { ratePerSec: 500, burst: 1000 };

export function enrollAdmission(tier: Tier): Pick<RouteLimit, "ratePerSec" | "burst"> {
  return {
    ratePerSec: Math.max(tier.enroll.ratePerSec, DIRECTORY_ENROLL_FLOOR.ratePerSec),
    burst: Math.max(tier.enroll.burst, DIRECTORY_ENROLL_FLOOR.burst),
  };
}

/** Requests one agent may make per 10 s before it is told to back off (a healthy agent makes a few). */
export const PER_AGENT_REQUESTS_PER_10S = 30;
