import { tierFor, type Tier } from "./limits/tiers";
import { parseGoDuration } from "./protocol/duration";

/** Bindings and vars from wrangler.toml (`[vars]`, secrets, Durable Object namespaces). */
export interface Env {
  // Untyped here; durable-stubs.ts gives each stub its class's method signatures.
  AGENT_STORES: DurableObjectNamespace;
  POLICY_HUBS: DurableObjectNamespace;
  DIRECTORY: DurableObjectNamespace;
  /** Upload state machines (one per upload id) and per-agent upload indexes (durable/uploads.ts). */
  UPLOADS: DurableObjectNamespace;
  /** Artifact bytes, upload chunks, files for delivery and the admin-set PGP key. */
  FILES: R2Bucket;
  /** The console's static files (public/, wrangler.toml [assets]); absent where no assets are bound. */
  ASSETS?: Fetcher;
  /** Armored PGP public key served on the upgrades route when no admin has uploaded one. */
  PGP_PUBLIC_KEY?: string;
  /** Where the PGP key is fetched from when neither is set (empty: never fetch). */
  PGP_UPSTREAM_URL?: string;
  /** "false" serves the PGP key over plain HTTP too (local development); default "true". */
  PGP_REQUIRE_TLS?: string;
  /** Largest file an agent may upload, in bytes; unset means no limit, "0" disables uploads. */
  UPLOAD_MAX_FILE_SIZE?: string;
  MIRROR_MONITORS: DurableObjectNamespace;
  INGEST: DurableObjectNamespace;
  BULK_JOBS: DurableObjectNamespace;
  HUB_SHARDS: DurableObjectNamespace;
  /** A large policy's roster beyond the hub's own part (durable/roster-shard.ts). */
  ROSTER_SHARDS: DurableObjectNamespace;
  /** The console's live overview (durable/console-feed.ts). */
  CONSOLE_FEED: DurableObjectNamespace;
  FLEET_ADMIN_TOKEN?: string;
  FLEET_SERVER_VERSION?: string;
  FLEET_SERVER_BUILD_HASH?: string;
  FLEET_SERVER_BUILD_TIME?: string;
  CHECKIN_LONG_POLL?: string;
  CHECKIN_JITTER?: string;
  CHECKIN_MIN_POLL?: string;
  CHECKIN_MAX_POLL?: string;
  ACTION_DEFAULT_EXPIRATION?: string;
  ES_URL?: string;
  ES_SERVICE_TOKEN?: string;
  ES_API_KEY?: string;
  ES_USERNAME?: string;
  ES_PASSWORD?: string;
  ES_MIRROR_FLUSH?: string;
  /** How long a store's heartbeat times and counts wait before going to the policies' hubs (default: AGENT_OFFLINE_AFTER ÷ 10, 1m). */
  CHECKIN_VIEW_LAG?: string;
  ES_INGEST_INTERVAL?: string;
  AGENT_OFFLINE_AFTER?: string;
  FLEET_MAX_AGENTS?: string;
  POLICY_HUB_SHARDS?: string;
  /** Roster rows per roster shard a new policy is laid out for (default 50000; docs/scale.md §2). */
  AGENTS_PER_ROSTER_SHARD?: string;
  POLICY_HUB_SHARDS_MAX?: string;
  POLICY_HUB_SHARD_AGENTS?: string;
  ROLLOUT_RATE?: string;
  /** Agents a quiet policy's new revision reaches at once before ROLLOUT_RATE paces the rest (default 16000). */
  ROLLOUT_BURST?: string;
  /** Comma-separated URLs agents reach this server at, written into policies as `fleet.hosts`. */
  FLEET_SERVER_HOSTS?: string;
  /** Structured log threshold: debug, info (default), warn or error (src/log.ts). */
  LOG_LEVEL?: string;
}

export interface ServerVersion {
  number: string;
  major: number;
  minor: number;
  buildHash: string;
  buildTime: string;
}

export interface CheckinTimings {
  /** Hold time of a check-in that carries no `poll_timeout` (fleet-server `checkin_long_poll`). */
  longPollMs: number;
  /** Upper bound of the random time subtracted from each hold, so a fleet's polls do not synchronise. */
  jitterMs: number;
  /** Floor and ceiling for a hold derived from the agent's `poll_timeout`. */
  minPollMs: number;
  maxPollMs: number;
}

/**
 * How many fan-out shards a policy has: `fixed` for every policy (`POLICY_HUB_SHARDS=<n>`), or
 * chosen by each policy's hub from its roster (`auto`): `ceil(agents / agentsPerShard)` rounded up
 * to a power of two, at most `max` (src/checkin/shard-count.ts).
 */
export interface HubShardCount {
  fixed: number | null;
  max: number;
  agentsPerShard: number;
}

export interface FleetConfig {
  version: ServerVersion;
  checkin: CheckinTimings;
  actionDefaultExpirationMs: number;
  /** Delay between a state change and the `_bulk` that mirrors it; writes within it coalesce. */
  mirrorFlushMs: number;
  /**
   * How long an agent store holds a flush's check-in times and counts for the policies' hubs, so each
   * hub gets one call per store per this span instead of one per flush window (durable/agent-effects.ts).
   */
  checkinViewLagMs: number;
  /** No check-in for this long makes an agent offline in admin views. */
  offlineAfterMs: number;
  /** Admission limits for the declared fleet size (src/limits/tiers.ts). */
  tier: Tier;
  /** Fan-out shards per policy: each holds the parked polls and sockets of the agents hashed to it. */
  hubShards: HubShardCount;
  /**
   * Roster shards a policy gets when its hub first lays out its roster: `ceil(FLEET_MAX_AGENTS /
   * AGENTS_PER_ROSTER_SHARD)`. A policy keeps its count for life (durable/sharded-roster.ts).
   */
  rosterShards: number;
  /** Agents per second a policy's revision is delivered to, split over its shards (docs/scale.md §3). */
  rolloutRate: number;
  rolloutBurst: number;
  /** `fleet.hosts` for policies published here that name none (src/policy/fleet-hosts.ts); empty: none added. */
  serverHosts: string[];
}

const cache = new WeakMap<Env, FleetConfig>();

/** Parses the vars once per env object; a malformed var fails loudly at the first request. */
export function fleetConfig(env: Env): FleetConfig {
  let config = cache.get(env);
  if (!config) {
    const offlineAfterMs = durationVar(env, "AGENT_OFFLINE_AFTER", "10m");
    config = {
      version: parseServerVersion(env),
      checkin: {
        longPollMs: durationVar(env, "CHECKIN_LONG_POLL", "5m"),
        jitterMs: durationVar(env, "CHECKIN_JITTER", "30s"),
        minPollMs: durationVar(env, "CHECKIN_MIN_POLL", "1m"),
        maxPollMs: durationVar(env, "CHECKIN_MAX_POLL", "1h"),
      },
      actionDefaultExpirationMs: durationVar(env, "ACTION_DEFAULT_EXPIRATION", "720h"),
      mirrorFlushMs: durationVar(env, "ES_MIRROR_FLUSH", "1s"),
      offlineAfterMs,
      tier: tierFor(maxAgentsVar(env)),
      hubShards: shardsVar(env),
      rosterShards: rosterShardsFor(maxAgentsVar(env), agentsPerRosterShardVar(env)),
      rolloutRate: rolloutRateVar(env),
      rolloutBurst: wholeVar(env, "ROLLOUT_BURST", "16000", 0, 10_000_000),
      serverHosts: serverHostsVar(env),
      checkinViewLagMs: checkinViewLagVar(env, offlineAfterMs),
    };
    cache.set(env, config);
  }
  return config;
}

function durationVar(env: Env, name: keyof Env, fallback: string): number {
  const raw = (env[name] as string | undefined) ?? fallback;
  const ms = parseGoDuration(raw);
  if (ms === null || ms < 0) throw new Error(`configuration: ${name}=${JSON.stringify(raw)} is not a duration like "5m" or "30s"`);
  return ms;
}

/** A tenth of AGENT_OFFLINE_AFTER unless set (1m by default); a lag that long or longer would show agents that check in as offline. */
function checkinViewLagVar(env: Env, offlineAfterMs: number): number {
  if (env.CHECKIN_VIEW_LAG === undefined) return Math.floor(offlineAfterMs / 10);
  const lag = durationVar(env, "CHECKIN_VIEW_LAG", "");
  if (lag >= offlineAfterMs) {
    throw new Error(`configuration: CHECKIN_VIEW_LAG=${JSON.stringify(env.CHECKIN_VIEW_LAG)} must be shorter than AGENT_OFFLINE_AFTER, or agents that check in look offline`);
  }
  return lag;
}

function maxAgentsVar(env: Env): number {
  const raw = env.FLEET_MAX_AGENTS ?? "10000";
  if (raw === "max") return Infinity;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`configuration: FLEET_MAX_AGENTS=${JSON.stringify(raw)} is not a positive whole number or "max"`);
  return n;
}

function shardsVar(env: Env): HubShardCount {
  const raw = env.POLICY_HUB_SHARDS ?? "auto";
  const max = wholeVar(env, "POLICY_HUB_SHARDS_MAX", "256", 1, 256);
  if ((max & (max - 1)) !== 0) throw new Error(`configuration: POLICY_HUB_SHARDS_MAX=${JSON.stringify(env.POLICY_HUB_SHARDS_MAX)} must be a power of two from 1 to 256`);
  const agentsPerShard = wholeVar(env, "POLICY_HUB_SHARD_AGENTS", "5000", 1, 32_768);
  if (raw === "auto") return { fixed: null, max, agentsPerShard };
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new Error(`configuration: POLICY_HUB_SHARDS=${JSON.stringify(raw)} must be "auto" or a whole number from 1 to 256`);
  return { fixed: n, max: n, agentsPerShard };
}

function wholeVar(env: Env, name: keyof Env, fallback: string, min: number, max: number): number {
  const raw = (env[name] as string | undefined) ?? fallback;
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isInteger(n) || n < min || n > max) throw new Error(`configuration: ${name}=${JSON.stringify(raw)} must be a whole number from ${min} to ${max}`);
  return n;
}

/** Agents per second; fractions allowed (a slow rollout of a few agents a second, or tests that step it). */
function rolloutRateVar(env: Env): number {
  const raw = env.ROLLOUT_RATE ?? "16000";
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(n) || n < 0.01 || n > 10_000_000) {
    throw new Error(`configuration: ROLLOUT_RATE=${JSON.stringify(raw)} must be a number of agents per second from 0.01 to 10000000`);
  }
  return n;
}

/**
 * The fleet size roster shards are laid out for, per policy, since one policy may hold the whole
 * fleet. A `max` fleet is laid out for a million agents (docs/scale.md). At most 256, as fan-out shards.
 */
export function rosterShardsFor(maxAgents: number, perShard: number): number {
  const fleet = Number.isFinite(maxAgents) ? maxAgents : MAX_FLEET_LAYOUT;
  return Math.min(256, Math.max(1, Math.ceil(fleet / perShard)));
}

/** What a `FLEET_MAX_AGENTS=max` fleet's rosters are laid out for. */
const MAX_FLEET_LAYOUT = 1_000_000;

function agentsPerRosterShardVar(env: Env): number {
  const raw = env.AGENTS_PER_ROSTER_SHARD ?? "50000";
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`configuration: AGENTS_PER_ROSTER_SHARD=${JSON.stringify(raw)} is not a positive whole number`);
  return n;
}

function serverHostsVar(env: Env): string[] {
  const hosts = (env.FLEET_SERVER_HOSTS ?? "").split(",").map((host) => host.trim()).filter((host) => host !== "");
  for (const host of hosts) {
    if (!/^https?:$/.test(urlOrNull(host)?.protocol ?? "")) {
      throw new Error(`configuration: FLEET_SERVER_HOSTS has ${JSON.stringify(host)}, which is not an http(s) URL`);
    }
  }
  return hosts;
}

function urlOrNull(text: string): URL | null {
  try {
    return new URL(text);
  } catch {
    return null;
  }
}

function parseServerVersion(env: Env): ServerVersion {
  const number = env.FLEET_SERVER_VERSION ?? "9.6.0";
  const match = /^(\d+)\.(\d+)\.(\d+)$/.exec(number);
  if (!match) throw new Error(`configuration: FLEET_SERVER_VERSION=${JSON.stringify(number)} is not X.Y.Z`);
  return {
    number,
    major: Number(match[1]),
    minor: Number(match[2]),
    buildHash: env.FLEET_SERVER_BUILD_HASH ?? "edge",
    buildTime: env.FLEET_SERVER_BUILD_TIME ?? "2026-11-28T00:00:00Z",
  };
}

/** Hono's type parameter for every route and middleware. */
export interface AppEnv {
  Bindings: Env;
  /** `admin`: who made an admin request (the admin key's name, or "admin-token"). */
  Variables: { requestId: string; admin: string; /** The error table name of a refusal, for the request log. */ errorCode?: string };
}
