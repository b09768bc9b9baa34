import type { Agent } from "../durable/agent";
import type { BulkJob } from "../durable/bulk-job";
import type { ConsoleFeed } from "../durable/console-feed";
import type { Directory } from "../durable/directory";
import type { HubShard } from "../durable/hub-shard";
import type { IngestWatcher } from "../durable/ingest-watcher";
import type { MirrorMonitor } from "../durable/mirror-monitor";
import type { PolicyHub } from "../durable/policy-hub";
import type { RosterShard } from "../durable/roster-shard";
import type { Uploads } from "../durable/uploads";
import { AGENT_METHODS, agentStoreName, type AgentMethod } from "./agents/agent-stores";
import { revisionCache } from "./checkin/revision-cache";
import { fleetConfig, type Env } from "./config";
import { agentBucket } from "./policy/staged-rollout";
import { stableHash } from "./stable-hash";

/**
 * The RPC view of a Durable Object class: its methods as plain async calls. Our methods take and
 * return structured-clonable data only, so this replaces workers-types' deep `Rpc` mapping, which
 * gives up on recursive JSON types.
 */
type Remote<T> = {
  [K in keyof T as T[K] extends (...args: never[]) => unknown ? K : never]: T[K] extends (...args: infer A) => infer R
    ? (...args: A) => Promise<Awaited<R>>
    : never;
};

/** What an agent operation resolves to, as the store's `call` returns it. */
export type AgentCallResult<M extends AgentMethod> = Awaited<ReturnType<Agent[M]>>;

/** One agent's operations, as calls to the store that holds it. */
export type AgentHandle = { [M in AgentMethod]: (...args: Parameters<Agent[M]>) => Promise<AgentCallResult<M>> };

/** The store's single RPC, which `AgentHandle`'s methods call with the agent's id in front. */
interface AgentStoreStub {
  call(agentId: string, method: AgentMethod, args: unknown[]): Promise<unknown>;
}

/**
 * Ids of the objects every request names (agent stores, hubs and their shards, the directory), per
 * namespace: `idFromName` hashes the name on each call, ~4 µs and several calls per request. An id
 * is a plain value, usable by any request (a stub is not: stubs are made per call). Names of
 * per-operation objects (bulk jobs, uploads) are not kept; a map past ID_CACHE_LIMIT starts over.
 */
const ID_CACHE_LIMIT = 10_000;
const idCache = new WeakMap<DurableObjectNamespace, Map<string, DurableObjectId>>();

function idOf(namespace: DurableObjectNamespace, name: string): DurableObjectId {
  let ids = idCache.get(namespace);
  if (!ids) idCache.set(namespace, (ids = new Map<string, DurableObjectId>()));
  let id = ids.get(name);
  if (!id) {
    if (ids.size >= ID_CACHE_LIMIT) ids.clear();
    ids.set(name, (id = namespace.idFromName(name)));
  }
  return id;
}

/** A handle's methods live on one prototype, made once, instead of closures per handle. */
class AgentCaller {
  constructor(
    readonly store: AgentStoreStub,
    readonly agentId: string,
  ) {}
}
for (const method of AGENT_METHODS) {
  Object.defineProperty(AgentCaller.prototype, method, {
    value(this: AgentCaller, ...args: unknown[]) {
      return this.store.call(this.agentId, method, args);
    },
  });
}

/**
 * The agent `agentId`, wherever its store is. Ids derive from names, so every edge finds the same
 * object; each call is one RPC to the store.
 */
export function agentObject(env: Env, agentId: string): AgentHandle {
  const store = env.AGENT_STORES.get(idOf(env.AGENT_STORES, agentStoreName(agentId))) as unknown as AgentStoreStub;
  // The prototype carries exactly AGENT_METHODS, each forwarding its own arguments and result.
  return new AgentCaller(store, agentId) as unknown as AgentHandle;
}

export const policyHub = (env: Env, policyId: string) =>
  env.POLICY_HUBS.get(idOf(env.POLICY_HUBS, policyId)) as unknown as Remote<PolicyHub>;
/**
 * How many fan-out shards the policy has, as far as this isolate knows: the fixed count, or the one
 * the policy's shards last answered with (src/checkin/revision-cache.ts), or 1 before any answer.
 * A guess that is wrong costs one "moved" answer naming the right count (`callShard`).
 */
export const shardCountOf = (env: Env, policyId: string): number => fleetConfig(env).hubShards.fixed ?? revisionCache.shardsOf(policyId) ?? 1;

/** Which of a policy's `shards` fan-out shards holds this agent's parked polls and socket (a stable hash of its id). */
export const shardIndexOf = (agentId: string, shards: number): number => agentBucket(agentId) % shards;

/** The fan-out shard of a policy that holds this agent's parked polls and socket, and its index. */
export const hubShard = (env: Env, policyId: string, agentId: string) => {
  const index = shardIndexOf(agentId, shardCountOf(env, policyId));
  return { index, shard: hubShardAt(env, policyId, index) };
};

/** The first `count` fan-out shards of a policy. */
export const hubShards = (env: Env, policyId: string, count: number) => Array.from({ length: count }, (_, i) => hubShardAt(env, policyId, i));

export const hubShardAt = (env: Env, policyId: string, index: number) =>
  env.HUB_SHARDS.get(idOf(env.HUB_SHARDS, `${policyId}#${index}`)) as unknown as Remote<HubShard>;

/**
 * Which of a policy's `count` roster shards keeps this agent's roster row: the stable hash its
 * fan-out shard uses, so a store's batch for a policy splits by index. Shard 0 is the hub itself.
 */
export const rosterShardIndexOf = (agentId: string, count: number): number => agentBucket(agentId) % count;

/** Roster shard `index` (1 or more) of a policy; index 0 lives in the policy's hub (`policyHub`). */
export const rosterShard = (env: Env, policyId: string, index: number) =>
  env.ROSTER_SHARDS.get(idOf(env.ROSTER_SHARDS, `${policyId}#roster-${index}`)) as unknown as Remote<RosterShard>;

export const directory = (env: Env) => env.DIRECTORY.get(idOf(env.DIRECTORY, "fleet")) as unknown as Remote<Directory>;

/** The single watcher that follows Kibana's writes in Elasticsearch. */
export const ingestWatcher = (env: Env) => env.INGEST.get(env.INGEST.idFromName("kibana")) as unknown as Remote<IngestWatcher>;

/** The console's live overview: one object holds every open console's channel (durable/console-feed.ts). */
export const consoleFeed = (env: Env) => env.CONSOLE_FEED.get(env.CONSOLE_FEED.idFromName("console")) as unknown as Remote<ConsoleFeed>;

/** One object per bulk operation, named by its action (or job) id. */
export const bulkJob = (env: Env, id: string) => env.BULK_JOBS.get(env.BULK_JOBS.idFromName(id)) as unknown as Remote<BulkJob>;

/** Mirror backlog reports are spread over this many monitor objects. */
export const MIRROR_MONITOR_SHARDS = 16;

export const mirrorMonitorShard = (env: Env, shard: number) =>
  env.MIRROR_MONITORS.get(idOf(env.MIRROR_MONITORS, `mirror-${shard}`)) as unknown as Remote<MirrorMonitor>;

/** The monitor shard an object reports to, by a stable hash of its name. */
export const mirrorMonitorFor = (env: Env, owner: string) => mirrorMonitorShard(env, stableHash(owner) % MIRROR_MONITOR_SHARDS);
/** One object per upload (`upload:<uploadId>`) and one upload index per agent (`agent:<agentId>`). */
export const uploadObject = (env: Env, uploadId: string) =>
  env.UPLOADS.get(env.UPLOADS.idFromName(`upload:${uploadId}`)) as unknown as Remote<Uploads>;
export const agentUploadIndex = (env: Env, agentId: string) =>
  env.UPLOADS.get(env.UPLOADS.idFromName(`agent:${agentId}`)) as unknown as Remote<Uploads>;
