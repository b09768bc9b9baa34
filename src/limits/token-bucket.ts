/**
 * A token bucket: `burst` tokens, refilled at `ratePerSec`. `take` answers at once (no queueing,
 * like Go's `rate.Limiter.Allow` that fleet-server uses) and, when refused, says how long until a
 * token is back.
 */
export class TokenBucket {
  #tokens: number;
  #last: number;

  constructor(
    readonly ratePerSec: number,
    readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.#tokens = burst;
    this.#last = now();
  }

  take(): { ok: true } | { ok: false; retryAfterMs: number } {
    const now = this.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) / 1000) * this.ratePerSec);
    this.#last = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.ceil(((1 - this.#tokens) / this.ratePerSec) * 1000) };
  }
}

/**
 * A `Retry-After` in whole seconds: the time until capacity returns, stretched by a random factor so
 * that a storm of refused agents does not come back in step.
 */
export function retryAfterSeconds(retryAfterMs: number, spreadSeconds = 30, random: () => number = Math.random): number {
  return Math.max(1, Math.ceil(retryAfterMs / 1000)) + Math.floor(random() * spreadSeconds);
}
