/**
 * A task that runs at most once at a time, where every request is answered by a run that starts
 * after the request was made; requests made while a run is in flight share the one run after it.
 * Made for sending "the current state": each run reads the state when it starts, so a receiver
 * sees states in the order they were made, and a burst of changes costs at most two sends.
 */
export class CoalescedRun<T> {
  readonly #task: () => Promise<T>;
  #running: Promise<T> | null = null;
  #next: Promise<T> | null = null;

  constructor(task: () => Promise<T>) {
    this.#task = task;
  }

  request(): Promise<T> {
    if (this.#next) return this.#next;
    if (!this.#running) return this.#start();
    const settled = this.#running.then(
      () => undefined,
      () => undefined,
    );
    this.#next = settled.then(() => {
      this.#next = null;
      return this.#start();
    });
    return this.#next;
  }

  #start(): Promise<T> {
    const run: Promise<T> = Promise.resolve()
      .then(this.#task)
      .finally(() => {
        if (this.#running === run) this.#running = null;
      });
    this.#running = run;
    return run;
  }
}
