import type { HubShardCount } from "../config";

/**
 * How many fan-out shards a policy of `agents` active agents has, given the count it has now
 * (docs/scale.md §4). It grows to `ceil(agents / agentsPerShard)` rounded up to a power of two as
 * soon as the roster needs it, and shrinks only once the roster fits in half the smaller count's
 * capacity, so a policy hovering at a boundary does not move its agents back and forth. Powers of two
 * halve or double: an agent moves only between shard `i` and `i + n`, never anywhere else.
 */
export function shardCountFor(config: HubShardCount, agents: number, current: number): number {
  if (config.fixed !== null) return config.fixed;
  const wanted = Math.min(config.max, powerOfTwoAtLeast(Math.ceil(agents / config.agentsPerShard)));
  if (wanted > current) return wanted;
  const shrinkTo = Math.min(config.max, powerOfTwoAtLeast(Math.ceil((2 * agents) / config.agentsPerShard)));
  return Math.min(shrinkTo, current);
}

function powerOfTwoAtLeast(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}
