/**
 * Ids from clients become R2 keys (≤ 1,024 bytes), Elasticsearch document ids (≤ 512 bytes),
 * SQLite values and Durable Object names. One rule for all of them (docs/hardening.md): 1 to 256
 * bytes of UTF-8, no `/` (it would reach into another R2 key's prefix) and no control characters.
 */
export const MAX_ID_BYTES = 256;

const utf8 = new TextEncoder();

export function isUsableId(id: string): boolean {
  if (id === "" || id.length > MAX_ID_BYTES) return false;
  // eslint-disable-next-line no-control-regex -- control characters are what this rejects
  if (/[\u0000-\u001f\u007f/]/.test(id)) return false;
  // At most 3 UTF-8 bytes per UTF-16 unit: most ids are decided without encoding them.
  return id.length * 3 <= MAX_ID_BYTES || utf8.encode(id).byteLength <= MAX_ID_BYTES;
}
