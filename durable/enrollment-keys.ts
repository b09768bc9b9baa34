import type { ApiKey } from "../src/auth/api-key";
import { constantTimeEqual, randomToken, sha256Hex } from "../src/auth/secrets";
import { enrollmentKeyDocument } from "../src/es/documents";
import { INDEX } from "../src/es/indices";
import type { Failure } from "../src/errors";
import type { EnrollmentKeyRecord } from "../src/admin/directory-records";
import type { EsOutbox } from "./es-outbox";

/** A key Kibana created, as read from `.fleet-enrollment-api-keys` (the secret in clear, hashed on arrival). */
export interface ExternalEnrollmentKey {
  id: string;
  apiKeyId: string;
  secret: string;
  policyId: string;
  name: string;
  active: boolean;
  createdAt: string;
  expireAt?: string;
}

interface KeyRow extends Record<string, SqlStorageValue> {
  id: string;
  api_key_id: string;
  secret_hash: string;
  name: string;
  policy_id: string;
  active: number;
  created_at: string;
  expire_at: string | null;
}

/** Keys kept in memory for enrollment; past this many the memory starts over (a fleet has a few per policy). */
const RESOLVED_KEYS_KEPT = 10_000;

/**
 * Enrollment keys (the `enrollment_keys` table of the Directory): the secret is stored as a SHA-256
 * hash, and every change this server makes is mirrored to `.fleet-enrollment-api-keys`.
 */
export class EnrollmentKeys {
  readonly #sql: SqlStorage;
  readonly #outbox: EsOutbox;
  /**
   * Rows found by `resolve`, by API key id: every enrollment of the fleet passes this one object,
   * and a mass enrollment presents the same few keys thousands of times. A write to a key (rare:
   * a revocation, a key adopted from Kibana) empties it, so the change holds from the next
   * enrollment on. Unknown ids are not kept (a caller could fill memory with them).
   */
  readonly #resolved = new Map<string, KeyRow>();

  constructor(sql: SqlStorage, outbox: EsOutbox) {
    this.#sql = sql;
    this.#outbox = outbox;
  }

  list(limit: number, offset: number, policyId?: string): { items: EnrollmentKeyRecord[]; total: number } {
    const where = policyId ? "WHERE policy_id = ?" : "";
    const params = policyId ? [policyId] : [];
    const total = this.#sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM enrollment_keys ${where}`, ...params).one().n;
    const items = this.#sql
      .exec<KeyRow>(`SELECT * FROM enrollment_keys ${where} ORDER BY created_at DESC, id LIMIT ? OFFSET ?`, ...params, limit, offset)
      .toArray()
      .map(toRecord);
    return { items, total };
  }

  get(id: string): EnrollmentKeyRecord | Failure {
    const row = this.#row("id", id);
    return row ? toRecord(row) : { error: "NotFound", detail: `enrollment key ${id} not found` };
  }

  /** The ids of a policy's active keys. */
  activeFor(policyId: string): string[] {
    return this.#sql.exec<{ id: string }>("SELECT id FROM enrollment_keys WHERE policy_id = ? AND active = 1", policyId).toArray().map((row) => row.id);
  }

  /** Creates a key for `policyId` (the caller checked the policy exists); the answer carries the secret once. */
  async create(input: { policyId: string; name?: string; expireAt?: string }): Promise<EnrollmentKeyRecord> {
    const id = crypto.randomUUID();
    const apiKeyId = randomToken(15);
    const secret = randomToken(32);
    const record: EnrollmentKeyRecord = {
      id,
      api_key_id: apiKeyId,
      api_key: btoa(`${apiKeyId}:${secret}`),
      name: input.name ? `${input.name} (${id})` : id,
      policy_id: input.policyId,
      active: true,
      created_at: new Date().toISOString(),
      ...(input.expireAt ? { expire_at: input.expireAt } : {}),
    };
    const hash = await sha256Hex(secret);
    this.#sql.exec(
      "INSERT INTO enrollment_keys (id, api_key_id, secret_hash, name, policy_id, active, created_at, expire_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?)",
      id,
      apiKeyId,
      hash,
      record.name,
      record.policy_id,
      record.created_at,
      input.expireAt ?? null,
    );
    this.#outbox.add({ index: INDEX.enrollmentKeys, id, op: "index", body: enrollmentKeyDocument(record, record.created_at) });
    return record;
  }

  /**
   * Adopts an enrollment key Kibana created (from `.fleet-enrollment-api-keys`): only the hash of its
   * secret is kept. Not mirrored back: Elasticsearch already has it.
   */
  async adopt(key: ExternalEnrollmentKey): Promise<void> {
    const hash = await sha256Hex(key.secret);
    this.#resolved.clear();
    this.#sql.exec(
      `INSERT INTO enrollment_keys (id, api_key_id, secret_hash, name, policy_id, active, created_at, expire_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET secret_hash = excluded.secret_hash, name = excluded.name, policy_id = excluded.policy_id,
         active = excluded.active, expire_at = excluded.expire_at`,
      key.id,
      key.apiKeyId,
      hash,
      key.name,
      key.policyId,
      key.active ? 1 : 0,
      key.createdAt,
      key.expireAt ?? null,
    );
  }

  /** Revokes a key at once: the next enrollment with it fails. */
  revoke(id: string): EnrollmentKeyRecord | Failure {
    const row = this.#row("id", id);
    if (!row) return { error: "NotFound", detail: `enrollment key ${id} not found` };
    const revoked = toRecord({ ...row, active: 0 });
    this.#resolved.clear();
    this.#sql.exec("UPDATE enrollment_keys SET active = 0 WHERE id = ?", id);
    this.#outbox.add({ index: INDEX.enrollmentKeys, id, op: "index", body: enrollmentKeyDocument(revoked, new Date().toISOString()) });
    return revoked;
  }

  /** The policy a key enrolls into, if the key is genuine, active and unexpired. */
  async resolve(key: ApiKey): Promise<{ policyId: string; namespaces: string[] } | Failure> {
    const row = this.#resolvedRow(key.id);
    const hash = await sha256Hex(key.secret);
    if (!row || !constantTimeEqual(hash, row.secret_hash) || row.active !== 1) return { error: "Unauthorized" };
    if (row.expire_at && Date.parse(row.expire_at) <= Date.now()) return { error: "Unauthorized" };
    return { policyId: row.policy_id, namespaces: [] };
  }

  #resolvedRow(apiKeyId: string): KeyRow | undefined {
    const kept = this.#resolved.get(apiKeyId);
    if (kept) return kept;
    const row = this.#row("api_key_id", apiKeyId);
    if (!row) return undefined;
    if (this.#resolved.size >= RESOLVED_KEYS_KEPT) this.#resolved.clear();
    this.#resolved.set(apiKeyId, row);
    return row;
  }

  #row(column: "id" | "api_key_id", value: string): KeyRow | undefined {
    return this.#sql.exec<KeyRow>(`SELECT * FROM enrollment_keys WHERE ${column} = ?`, value).toArray()[0];
  }
}

function toRecord(row: KeyRow): EnrollmentKeyRecord {
  return {
    id: row.id,
    api_key_id: row.api_key_id,
    name: row.name,
    policy_id: row.policy_id,
    active: row.active === 1,
    created_at: row.created_at,
    ...(row.expire_at ? { expire_at: row.expire_at } : {}),
  };
}
