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
