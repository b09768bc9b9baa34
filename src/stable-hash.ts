/**
 * FNV-1a (32 bit) of a string: a stable, well-spread number for placing things (an agent's store,
 * rollout bucket or fan-out shard) that must never move between isolates, deploys or restarts.
 */
export function stableHash(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}
