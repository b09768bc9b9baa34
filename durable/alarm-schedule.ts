/**
 * One object's alarm, shared by every concern that needs a wake-up (held check-in times, effects
 * for other objects, the Elasticsearch outbox, key retirement, rollout evaluation, upload expiry).
 *
 * Two rules keep every wake-up that was asked for:
 * - A request never postpones an earlier one: it brings the alarm forward or leaves it.
 * - Requests made while the alarm handler runs are written when it ends. The runtime deletes a fired
 *   alarm that its handler did not set again, and during the run `getAlarm()` still answers the
 *   firing time, so "read, see an earlier alarm, skip" would lose them (a held heartbeat then waited
 *   for the next unrelated call: issue #15, measured at 6 min 50 s).
 * An alarm time already in the past is never trusted to fire later: it is set again to now.
 */
export class AlarmSchedule {
  readonly #storage: DurableObjectStorage;
  #running = false;
  /** The earliest wake-up asked for during the current run. */
  #wanted = Infinity;
  /** Writes in order: each reads the alarm before it writes. */
  #writes: Promise<void> = Promise.resolve();

  constructor(storage: DurableObjectStorage) {
    this.#storage = storage;
  }

  /** Wake the object no later than `at` (ms since the epoch). */
  request(at: number): Promise<void> {
    const when = Math.ceil(at);
    if (this.#running) {
      this.#wanted = Math.min(this.#wanted, when);
      return Promise.resolve();
    }
    const write = this.#writes.then(async () => {
      // Read at the time of writing: a run may have started since the request was made.
      if (this.#running) {
        this.#wanted = Math.min(this.#wanted, when);
        return;
      }
      const current = await this.#storage.getAlarm();
      if (this.#running) {
        this.#wanted = Math.min(this.#wanted, when);
        return;
      }
      const now = Date.now();
      if (current === null || current > when) await this.#storage.setAlarm(when);
      else if (current < now) await this.#storage.setAlarm(now);
    });
    this.#writes = write.catch(() => undefined);
    return write;
  }

  /** Runs the object's alarm handler; wake-ups asked for meanwhile are set before it returns. */
  async run(handler: () => Promise<void>): Promise<void> {
    this.#running = true;
    this.#wanted = Infinity;
    try {
      await handler();
    } finally {
      // Requests chained before the run began have recorded their time (or written it) by now.
      await this.#writes;
      let written = Infinity;
      // A request may arrive while the alarm is being written: loop until the earliest is set.
      while (this.#wanted < written) {
        written = this.#wanted;
        await this.#storage.setAlarm(written);
      }
      this.#running = false;
    }
  }
}
