/**
 * Runs an object's read-await-write steps one at a time, in call order. A Durable Object handles
 * one event at a time but interleaves events at every `await` on I/O (an RPC, a fetch), so a step
 * that reads state, awaits, then writes from what it read must not overlap another such step. A
 * failed step does not block the ones after it. Not reentrant: a step that runs another step of
 * the same lock waits for itself forever.
 */
export class WriteLock {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(step: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(step);
    this.#tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
