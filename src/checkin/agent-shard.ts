import type { Env } from "../config";
import { FleetError } from "../errors";
import { hubShard } from "../durable-stubs";
import { revisionCache } from "./revision-cache";
import { MOVED_STATUS, SHARDS_HEADER } from "./shard-contract";

type Shard = ReturnType<typeof hubShard>["shard"];

/**
 * Calls the fan-out shard that holds the agent, by the policy's shard count this isolate knows. A
 * shard that no longer holds it (the count changed: docs/scale.md §4) answers with the current
 * count (`movedTo`); the isolate learns it and the call goes once more, to the shard that count
 * picks. A second "moved" (the shards themselves are mid-change) is the caller's to answer.
 */
export async function callAgentShard<T>(
  env: Env,
  policyId: string,
  agentId: string,
  call: (shard: Shard, index: number) => Promise<T>,
  movedTo: (answer: T) => number | null,
): Promise<T> {
  const first = hubShard(env, policyId, agentId);
  const answer = await call(first.shard, first.index);
  const shards = movedTo(answer);
  if (shards === null) return answer;
  revisionCache.learnShards(policyId, shards);
  const second = hubShard(env, policyId, agentId);
  return second.index === first.index ? answer : call(second.shard, second.index);
}

/**
 * Hands an agent's authenticated WebSocket upgrade to its shard (`headers` say who it is), retried
 * once at the right shard when the one picked answers that it no longer holds the agent.
 */
export async function forwardSocket(env: Env, policyId: string, agentId: string, url: string, headers: Headers): Promise<Response> {
  const answer = await callAgentShard(
    env,
    policyId,
    agentId,
    (shard, index) => {
      headers.set("X-Fleet-Shard", String(index));
      return shard.fetch(new Request(url, { headers }));
    },
    (res) => (res.status === MOVED_STATUS ? Number(res.headers.get(SHARDS_HEADER)) : null),
  );
  // Moved twice: the policy's shards are changing right now; the agent reconnects after its back-off.
  if (answer.status === MOVED_STATUS) throw new FleetError("ShardsChanging", undefined, 1000);
  return answer;
}
