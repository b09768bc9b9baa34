/**
 * Files an admin publishes for given agents (fleet-server's `.fleet-fileds-tohost-*`, fleet-protocol.md
 * §2.8). R2 layout: the bytes at `deliveries/<fileId>/data` with the metadata (name, mime type, size,
 * sha256) in its custom metadata, and one empty marker object per target agent at
 * `deliveries/<fileId>/agents/<agentId>`, so authorizing a download is one `head`, whatever the number
 * of targets (custom metadata is limited to 2 KiB, too small for a target list).
 */
export const deliveryDataKey = (fileId: string): string => `deliveries/${fileId}/data`;
export const deliveryTargetPrefix = (fileId: string): string => `deliveries/${fileId}/agents/`;
export const deliveryTargetKey = (fileId: string, agentId: string): string => `${deliveryTargetPrefix(fileId)}${encodeURIComponent(agentId)}`;

export interface DeliveryMeta {
  id: string;
  name: string;
  mime_type: string;
  size: number;
  sha256: string;
  created: string;
}

export function deliveryMeta(fileId: string, custom: Record<string, string> | undefined, size: number): DeliveryMeta {
  return {
    id: fileId,
    name: custom?.name ?? fileId,
    mime_type: custom?.mime_type ?? "",
    size,
    sha256: custom?.sha256 ?? "",
    created: custom?.created ?? "",
  };
}

/** Every key under a prefix (R2 lists 1000 at a time). */
export async function listKeys(bucket: R2Bucket, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix, ...(cursor ? { cursor } : {}) });
    keys.push(...page.objects.map((object) => object.key));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return keys;
}

/** R2 deletes at most 1000 keys per call. */
export async function deleteKeys(bucket: R2Bucket, keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) await bucket.delete(keys.slice(i, i + 1000));
}
