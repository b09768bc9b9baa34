import { sha256Hex } from "../auth/secrets";

/**
 * SHA-256 of a policy's admin-visible content in canonical JSON (keys sorted at every level), so a
 * PUT of equal content in another key order does not publish a new revision.
 */
export function contentHash(content: { name: string; namespace: string; description?: string; policy: unknown }): Promise<string> {
  return sha256Hex(
    canonicalJson({ name: content.name, namespace: content.namespace, description: content.description ?? null, policy: content.policy }),
  );
}

export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== "object") return value;
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) sorted[key] = sortKeys((value as Record<string, unknown>)[key]);
  return sorted;
}
