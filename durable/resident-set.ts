/**
 * Objects loaded in memory, in least-recently-used order (a Map iterates in insertion order). An
 * entry with a call in progress is never unloaded, so one id never has two live copies: a call that
 * awaits keeps its entry, and the next call for that id finds the same object.
 */
export class ResidentSet<T> {
  readonly #entries = new Map<string, { value: T; calls: number }>();
  readonly #capacity: number;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** A call on `id` starts: its object, loaded if it was not, and marked most recently used. */
  enter(id: string, load: () => T): T {
    let entry = this.#entries.get(id);
    if (entry) this.#entries.delete(id);
    else entry = { value: load(), calls: 0 };
    entry.calls++;
    this.#entries.set(id, entry);
    return entry.value;
  }

  /** The call ends. `keep: false` forgets the object once idle; then idle objects past capacity go, oldest first. */
  leave(id: string, keep: boolean): void {
    const entry = this.#entries.get(id);
    if (entry) {
      entry.calls--;
      if (!keep && entry.calls === 0) this.#entries.delete(id);
    }
    if (this.#entries.size <= this.#capacity) return;
    for (const [other, { calls }] of this.#entries) {
      if (this.#entries.size <= this.#capacity) break;
      if (calls === 0) this.#entries.delete(other);
    }
  }
}
