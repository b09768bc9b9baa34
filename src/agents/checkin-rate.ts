/**
 * Check-ins per minute: counted where every check-in passes (the agent's store), carried to the
 * policy's hub with the store's flush of held check-in times, summed per policy there, and summed
 * over policies by the console's overview. Minutes are whole UTC minutes, in ms since the epoch.
 */

export const MINUTE_MS = 60_000;

/** Minutes a policy hub keeps (older counts are dropped, and so are deliveries for them). */
export const CHECKIN_MINUTES_KEPT = 60;

/** Minutes the overview shows (its sparkline), the current one included. */
export const CHECKIN_MINUTES_SHOWN = 30;

/** Pairs of [minute, check-ins]. */
export type CheckinMinutes = Array<[number, number]>;

/**
 * One store's counts for one policy, from one flush: the store (`source`) and its effect row's
 * sequence (`seq`, increasing per store) name it, so a redelivery counts once.
 */
export interface CheckinBatch {
  source: string;
  seq: number;
  minutes: CheckinMinutes;
}

/** The whole UTC minute `at` falls in. */
export const minuteOf = (at: number): number => Math.floor(at / MINUTE_MS) * MINUTE_MS;

/**
 * The last CHECKIN_MINUTES_SHOWN minutes up to `now`'s, oldest first, each with its check-ins
 * summed over `sources` (every policy's [minute, count] pairs).
 */
export function perMinute(sources: CheckinMinutes[], now: number): Array<{ minute: number; count: number }> {
  const current = minuteOf(now);
  const first = current - (CHECKIN_MINUTES_SHOWN - 1) * MINUTE_MS;
  const counts = new Map<number, number>();
  for (const source of sources) {
    for (const [minute, count] of source) if (minute >= first && minute <= current) counts.set(minute, (counts.get(minute) ?? 0) + count);
  }
  return Array.from({ length: CHECKIN_MINUTES_SHOWN }, (_, i) => {
    const minute = first + i * MINUTE_MS;
    return { minute, count: counts.get(minute) ?? 0 };
  });
}
