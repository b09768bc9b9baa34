/**
 * How many leaf values differ between two policies (added, removed or changed), a size of the
 * change that admins can read in the revision history without downloading both revisions.
 */
export function changedPaths(before: unknown, after: unknown): number {
  if (before === after) return 0;
  const bothObjects =
    typeof before === "object" && before !== null && typeof after === "object" && after !== null && Array.isArray(before) === Array.isArray(after);
  if (!bothObjects) return Math.max(leaves(before), leaves(after), 1);
  const a = before as Record<string, unknown>;
  const b = after as Record<string, unknown>;
  let changed = 0;
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (!(key in a)) changed += leaves(b[key]);
    else if (!(key in b)) changed += leaves(a[key]);
    else changed += changedPaths(a[key], b[key]);
  }
  return changed;
}

function leaves(value: unknown): number {
  if (typeof value !== "object" || value === null) return 1;
  const children = Object.values(value);
  return children.length === 0 ? 1 : children.reduce<number>((sum, child) => sum + leaves(child), 0);
}

/** One leaf that differs between two revisions; a missing side was absent (added or removed). */
export interface PathChange {
  /** Dotted path from the policy's root; array elements are `[i]`, keys that need it are quoted. */
  path: string;
  before?: unknown;
  after?: unknown;
}

/**
 * The leaves that differ between two policies, in document order, at most `limit` of them (the
 * console shows a revision's changes; a rewrite of a large policy is summarised, not shipped whole).
 * Added and removed subtrees are listed leaf by leaf; a value replaced by one of another shape (an
 * object by a string, a list by an object) is one change carrying both whole values.
 */
export function pathChanges(before: unknown, after: unknown, limit: number): { changes: PathChange[]; omitted: number } {
  const changes: PathChange[] = [];
  let omitted = 0;
  const emit = (path: string, change: Omit<PathChange, "path">) => {
    if (changes.length < limit) changes.push({ path: path || "(root)", ...change });
    else omitted++;
  };
  const leavesOf = (path: string, value: unknown, side: "before" | "after") => {
    if (typeof value !== "object" || value === null || Object.keys(value).length === 0) return emit(path, { [side]: value });
    for (const [key, child] of Object.entries(value)) leavesOf(childPath(path, key, Array.isArray(value)), child, side);
  };
  const walk = (path: string, a: unknown, b: unknown) => {
    if (a === b) return;
    const bothObjects = typeof a === "object" && a !== null && typeof b === "object" && b !== null && Array.isArray(a) === Array.isArray(b);
    if (!bothObjects) return emit(path, { before: a, after: b });
    const left = a as Record<string, unknown>;
    const right = b as Record<string, unknown>;
    for (const key of new Set([...Object.keys(left), ...Object.keys(right)])) {
      const child = childPath(path, key, Array.isArray(a));
      if (!(key in left)) leavesOf(child, right[key], "after");
      else if (!(key in right)) leavesOf(child, left[key], "before");
      else walk(child, left[key], right[key]);
    }
  };
  walk("", before, after);
  return { changes, omitted };
}

function childPath(parent: string, key: string, inArray: boolean): string {
  if (inArray) return `${parent}[${key}]`;
  const name = /^[A-Za-z_$][\w$-]*$/.test(key) ? key : JSON.stringify(key);
  return parent ? `${parent}.${name}` : name;
}
