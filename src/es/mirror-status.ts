import type { Env } from "../config";
import { MIRROR_MONITOR_SHARDS, mirrorMonitorShard } from "../durable-stubs";
import { esConfig } from "./config";

export interface MirrorStatus {
  mode: "standalone" | "elasticsearch";
  /** Objects whose outbox is failing to deliver right now. */
  failing_objects: number;
  /** Records waiting in those outboxes. */
  pending: number;
  oldest_pending_at: string | null;
  /** Seconds since the oldest undelivered record was written: the mirror's lag. */
  lag_seconds: number;
  last_error: string | null;
}

/** The mirror's health for admins: sums the monitor shards (a handful of small reads). */
export async function mirrorStatus(env: Env): Promise<MirrorStatus> {
  if (!esConfig(env)) return { mode: "standalone", failing_objects: 0, pending: 0, oldest_pending_at: null, lag_seconds: 0, last_error: null };
  const shards = await Promise.all(Array.from({ length: MIRROR_MONITOR_SHARDS }, (_, i) => mirrorMonitorShard(env, i).summary()));
  let oldest: string | null = null;
  let lastError: string | null = null;
  let failing = 0;
  let pending = 0;
  for (const shard of shards) {
    failing += shard.failing_objects;
    pending += shard.pending;
    if (shard.oldest_pending_at && (!oldest || shard.oldest_pending_at < oldest)) oldest = shard.oldest_pending_at;
    lastError ??= shard.last_error;
  }
  const lag = oldest ? Math.max(0, Math.round((Date.now() - Date.parse(oldest)) / 1000)) : 0;
  return { mode: "elasticsearch", failing_objects: failing, pending, oldest_pending_at: oldest, lag_seconds: lag, last_error: lastError };
}
