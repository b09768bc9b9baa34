import type { PolicyGlance } from "../src/admin/fleet-overview";
import type { Env } from "../src/config";
import { consoleFeed } from "../src/durable-stubs";
import { log } from "../src/log";

/** A hub pushes its glance to the console's feed at most once per this interval, however busy it is. */
export const FEED_PUSH_GAP_MS = 1_000;

/** What the watch uses of the policy hub that composes it. */
export interface WatchHost {
  policyId(): string | null;
  /** What the overview shows of this policy, as of now. */
  glance(): Promise<PolicyGlance>;
  /** When the clock alone next changes a status count (an agent going offline), or null. */
  nextStatusChange(now: number): number | null;
  /** Wake the hub (its alarm, shared with other concerns) no later than `at`. */
  wakeAt(at: number): Promise<void>;
}

/**
 * The policy hub's side of the console's live overview (durable/console-feed.ts). While the feed
 * watches this policy (it says until when, each time it reads the hub or takes a push) every
 * change the overview shows is pushed to it: the hub's glance, through the hub's alarm, at most once
 * per FEED_PUSH_GAP_MS, so a storm of check-ins costs one push a second. A status that changes
 * with time alone (online → offline after a silence) has no event: the watch wakes the hub when the
 * next one is due. Nothing is pushed while no console is open.
 *
 * Best effort, in memory: a push lost in a crash (or a restart that forgot the watch) is repaired
 * by the feed's own reading of every hub, every FEED_RESYNC_MS (docs/console.md).
 */
export class ConsoleWatch {
  readonly #env: Env;
  readonly #host: WatchHost;
  #watchedUntil = 0;
  #lastPushAt = 0;
  /** A push is owed at this time (null: none). */
  #pushAt: number | null = null;

  constructor(env: Env, host: WatchHost) {
    this.#env = env;
    this.#host = host;
  }

  /** The feed read this hub and watches it until `until`; arms the next status change. */
  async watched(until: number): Promise<void> {
    if (until <= this.#watchedUntil) return;
    this.#watchedUntil = until;
    await this.#armStatusChange(Date.now());
  }

  /** Something the overview shows may have changed: push it, coalesced, while watched. */
  async changed(): Promise<void> {
    const now = Date.now();
    if (now >= this.#watchedUntil) return;
    const at = Math.max(now, this.#lastPushAt + FEED_PUSH_GAP_MS);
    if (this.#pushAt !== null && this.#pushAt <= at) return;
    this.#pushAt = at;
    await this.#host.wakeAt(at);
  }

  /** The hub's alarm: pushes when a push is owed; asks again for one owed later. */
  async onAlarm(): Promise<void> {
    if (this.#pushAt === null) return;
    const now = Date.now();
    if (now < this.#pushAt) return this.#host.wakeAt(this.#pushAt);
    this.#pushAt = null;
    const policyId = this.#host.policyId();
    if (!policyId || now >= this.#watchedUntil) return;
    this.#lastPushAt = now;
    try {
      // The feed answers until when it still watches (0: no console is open any more).
      this.#watchedUntil = await consoleFeed(this.#env).hubChanged(policyId, await this.#host.glance());
    } catch (err) {
      // The feed's periodic reading of every hub repairs a lost push.
      log.warn("console_watch.push_failed", { policy_id: policyId, error: (err as Error).message });
    }
    await this.#armStatusChange(Date.now());
  }

  /** Owes a push when the next status change by the clock is due, if that falls while watched. */
  async #armStatusChange(now: number): Promise<void> {
    const at = this.#host.nextStatusChange(now);
    if (at === null || at >= this.#watchedUntil) return;
    if (this.#pushAt !== null && this.#pushAt <= at) return;
    this.#pushAt = at;
    await this.#host.wakeAt(at);
  }
}
