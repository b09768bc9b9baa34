import { minuteOf, type CheckinMinutes } from "../src/agents/checkin-rate";

/**
 * Check-ins counted per policy and minute in an agent store's memory: every check-in (an HTTP
 * poll, a socket check-in, an OpAMP message) adds one. The store writes the counts to its effects
 * with its next flush of held check-in times (within CHECKIN_FLUSH_MS), so a check-in costs no
 * write of its own; a crash loses at most one flush interval's counts, as it loses held times.
 */
export class CheckinTally {
  /** policy id → minute (ms since the epoch, a whole UTC minute) → check-ins. */
  #counts = new Map<string, Map<number, number>>();

  get empty(): boolean {
    return this.#counts.size === 0;
  }

  count(policyId: string, at: number): void {
    let minutes = this.#counts.get(policyId);
    if (!minutes) this.#counts.set(policyId, (minutes = new Map<number, number>()));
    const minute = minuteOf(at);
    minutes.set(minute, (minutes.get(minute) ?? 0) + 1);
  }

  /** The counts so far, per policy; the tally starts again from zero. */
  take(): Map<string, CheckinMinutes> {
    const taken = new Map([...this.#counts].map(([policyId, minutes]): [string, CheckinMinutes] => [policyId, [...minutes]]));
    this.#counts = new Map();
    return taken;
  }
}
