/**
 * Whether two JSON values would serialise alike, key order aside (a key holding `undefined` counts
 * as absent, as in `JSON.stringify`). Walks both without building strings: the check-in path asks
 * this of every agent record, and serialising a record to compare it was ~5% of a check-in's
 * allocations.
 */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  return jsonObjectsEqual(a as Record<string, unknown>, b as Record<string, unknown>);
}

/** `jsonEqual` for two objects, not looking at the top-level keys in `ignored`. */
export function jsonObjectsEqual(a: Record<string, unknown>, b: Record<string, unknown>, ignored?: ReadonlySet<string>): boolean {
  let keys = 0;
  for (const key in a) {
    const value = a[key];
    if (value === undefined || ignored?.has(key)) continue;
    keys++;
    if (!Object.hasOwn(b, key) || !jsonEqual(value, b[key])) return false;
  }
  for (const key in b) if (b[key] !== undefined && !ignored?.has(key)) keys--;
  return keys === 0;
}
