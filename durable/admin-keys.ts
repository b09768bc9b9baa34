import { ADMIN_KEY_PREFIX, parseAdminKey } from "../src/auth/admin-key";
import { constantTimeEqual, randomToken, sha256Hex } from "../src/auth/secrets";
import type { AdminKeyRecord } from "../src/admin/directory-records";
import type { Failure } from "../src/errors";

/**
 * Admin API keys (the `admin_keys` table of the Directory): `Authorization: Bearer <api_key>` on
 * admin routes. Only the hash of a key's secret is kept; revoking keeps the row for the listing.
 */
export class AdminKeys {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  async create(name: string): Promise<AdminKeyRecord> {
    const id = randomToken(12);
    const secret = randomToken(32);
    const created_at = new Date().toISOString();
    const hash = await sha256Hex(secret);
    this.#sql.exec("INSERT INTO admin_keys (id, name, secret_hash, created_at) VALUES (?, ?, ?, ?)", id, name, hash, created_at);
    return { id, name, created_at, api_key: `${ADMIN_KEY_PREFIX}${id}.${secret}` };
  }

  list(): AdminKeyRecord[] {
    return this.#sql
      .exec<{ id: string; name: string; created_at: string; revoked_at: string | null }>("SELECT id, name, created_at, revoked_at FROM admin_keys ORDER BY created_at")
      .toArray()
      .map((row) => ({ id: row.id, name: row.name, created_at: row.created_at, ...(row.revoked_at ? { revoked_at: row.revoked_at } : {}) }));
  }

  revoke(id: string): AdminKeyRecord | Failure {
    const now = new Date().toISOString();
    const row = this.#sql.exec<{ name: string; created_at: string }>("SELECT name, created_at FROM admin_keys WHERE id = ?", id).toArray()[0];
    if (!row) return { error: "NotFound", detail: `admin API key ${id} not found` };
    this.#sql.exec("UPDATE admin_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?", now, id);
    return { id, name: row.name, created_at: row.created_at, revoked_at: now };
  }

  /**
   * Whether key `id` is live and its secret hashes to `secretHash`: a check again of a key verified
   * earlier by someone who kept only the hash (the console's live channels).
   */
  stillValid(id: string, secretHash: string): boolean {
    const row = this.#sql.exec<{ secret_hash: string; revoked_at: string | null }>("SELECT secret_hash, revoked_at FROM admin_keys WHERE id = ?", id).toArray()[0];
    return !!row && !row.revoked_at && constantTimeEqual(secretHash, row.secret_hash);
  }

  /** The name of the admin key `token` belongs to, or null when it is not a live admin key. */
  async verify(token: string): Promise<string | null> {
    const key = parseAdminKey(token);
    if (!key) return null;
    const { id, secret } = key;
    const row = this.#sql
      .exec<{ name: string; secret_hash: string; revoked_at: string | null }>("SELECT name, secret_hash, revoked_at FROM admin_keys WHERE id = ?", id)
      .toArray()[0];
    const hash = await sha256Hex(secret);
    if (!row || row.revoked_at || !constantTimeEqual(hash, row.secret_hash)) return null;
    return row.name;
  }
}
