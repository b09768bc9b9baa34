import type { CheckinTimings } from "../config";

/**
 * How long a check-in may be held, as fleet-server's `calcPollDuration`:
 * the configured long poll, or `max(min(poll_timeout − 2m, max), min)` when the agent sent
 * `poll_timeout`; minus the time already spent on the request; minus a random jitter (when it is
 * smaller than the hold) so that a fleet's polls spread out instead of returning together.
 */
export function pollDuration(
  timings: CheckinTimings,
  pollTimeoutMs: number | undefined,
  elapsedMs: number,
  random: () => number = Math.random,
): number {
  let hold = timings.longPollMs;
  if (pollTimeoutMs !== undefined) {
    hold = Math.max(Math.min(pollTimeoutMs - 120_000, timings.maxPollMs), timings.minPollMs);
  }
  if (elapsedMs >= hold) return 1;
  hold -= elapsedMs;
  const jitter = Math.floor(random() * timings.jitterMs);
  if (jitter < hold) hold -= jitter;
  return hold;
}
