/**
 * Objects loaded in memory, in least-recently-used order (a Map iterates in insertion order). An
 * entry with a call in progress is never unloaded, so one id never has two live copies: a call that
 * awaits keeps its entry, and the next call for that id finds the same object. Nor is a pinned one
 * (state not yet written), so that state is never read back stale from storage.
 */
export class ResidentSet<T> {
  readonly #entries = new Map<string, { value: T; calls: number }>();
  readonly #capacity: number;
  readonly #pinned: (value: T) => boolean;

  constructor(capacity: number, pinned: (value: T) => boolean = () => false) {
    this.#capacity = capacity;
    this.#pinned = pinned;
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

  /**
   * The call ends. `keep: false` forgets the object once idle; then idle, unpinned objects past
   * capacity go, oldest first.
   */
  leave(id: string, keep: boolean): void {
    const entry = this.#entries.get(id);
    if (entry) {
      entry.calls--;
      if (!keep && entry.calls === 0 && !this.#pinned(entry.value)) this.#entries.delete(id);
    }
    if (this.#entries.size <= this.#capacity) return;
    for (const [other, { value, calls }] of this.#entries) {
      if (this.#entries.size <= this.#capacity) break;
      if (calls === 0 && !this.#pinned(value)) this.#entries.delete(other);
    }
  }
}
