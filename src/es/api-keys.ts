import type { EsConfig } from "./config";
import { esRequest } from "./client";

export interface CreatedApiKey {
  id: string;
  api_key: string;
}

/** `POST /_security/api_key` with the given role descriptors; never expires (fleet-server's choice). */
export async function createApiKey(
  config: EsConfig,
  request: { name: string; roleDescriptors: unknown; metadata: Record<string, unknown> },
): Promise<CreatedApiKey> {
  const { body } = await esRequest<CreatedApiKey>(config, {
    method: "POST",
    path: "/_security/api_key?refresh=false",
    body: { name: request.name, role_descriptors: request.roleDescriptors, metadata: request.metadata },
  });
  return { id: body.id, api_key: body.api_key };
}

/** Replaces a key's role descriptors in place (`PUT /_security/api_key/{id}`), so agents keep their key. */
export async function updateApiKeyRoles(config: EsConfig, id: string, roleDescriptors: unknown): Promise<void> {
  await esRequest(config, { method: "PUT", path: `/_security/api_key/${encodeURIComponent(id)}`, body: { role_descriptors: roleDescriptors } });
}

/**
 * Invalidates keys this server created. Returns the ids Elasticsearch confirmed invalid (now or
 * before). A key created a moment ago (`refresh=false`) may not be searchable yet: its id is simply
 * not confirmed, and the caller tries again later, as fleet-server polls before invalidating.
 */
export async function invalidateApiKeys(config: EsConfig, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const { body } = await esRequest<{ invalidated_api_keys?: string[]; previously_invalidated_api_keys?: string[] }>(config, {
    method: "DELETE",
    path: "/_security/api_key",
    body: { ids, owner: true },
  });
  return new Set([...(body.invalidated_api_keys ?? []), ...(body.previously_invalidated_api_keys ?? [])]);
}
