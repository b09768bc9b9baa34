import { DurableObject } from "cloudflare:workers";
import { ADMIN_KEY_PREFIX, parseAdminKey } from "../src/auth/admin-key";
import type { ApiKey } from "../src/auth/api-key";
import { constantTimeEqual, randomToken, sha256Hex } from "../src/auth/secrets";
import { fleetConfig, type Env } from "../src/config";
import { mirrorMonitorFor } from "../src/durable-stubs";
import { enrollmentKeyDocument } from "../src/es/documents";
import { INDEX } from "../src/es/indices";
import type { Failure } from "../src/errors";
import { AlarmSchedule } from "./alarm-schedule";
import { EsOutbox, OUTBOX_SCHEMA } from "./es-outbox";
import { enrollAdmission } from "../src/limits/tiers";
import { TokenBucket } from "../src/limits/token-bucket";
import { migrateSchema } from "./sql-schema";

const SCHEMA = [
  `CREATE TABLE policies (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     namespace TEXT NOT NULL,
     revision INTEGER NOT NULL,
     updated_at TEXT NOT NULL);
   CREATE TABLE enrollment_keys (
     id TEXT PRIMARY KEY,
     api_key_id TEXT NOT NULL UNIQUE,
     secret_hash TEXT NOT NULL,
     name TEXT NOT NULL,
     policy_id TEXT NOT NULL,
     active INTEGER NOT NULL,
     created_at TEXT NOT NULL,
     expire_at TEXT);
   CREATE TABLE enrollment_ids (enrollment_id TEXT PRIMARY KEY, agent_id TEXT NOT NULL);`,
  OUTBOX_SCHEMA,
  `CREATE TABLE admin_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_hash TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT);
   CREATE TABLE jobs (id TEXT PRIMARY KEY, type TEXT NOT NULL, created_at TEXT NOT NULL, created_by TEXT NOT NULL);
   CREATE INDEX jobs_created_at ON jobs (created_at);`,
];

/** An admin API key as listed; the secret is shown once, at creation. */
export interface AdminKeyRecord {
  id: string;
  name: string;
  created_at: string;
  revoked_at?: string;
  api_key?: string;
}

export interface PolicySummary {
  id: string;
  name: string;
  namespace: string;
  revision: number;
  updated_at: string;
}

/** An enrollment key as admins see it; `api_key` (the secret) only in the answer that creates it. */
export interface EnrollmentKeyRecord {
  id: string;
  api_key_id: string;
  api_key?: string;
  name: string;
  policy_id: string;
  active: boolean;
  created_at: string;
  expire_at?: string;
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

/**
 * The fleet's small, read-mostly catalogue: agent policies (id, name, latest revision), enrollment
 * keys (secret stored as a SHA-256 hash) and enrollment-id claims. One instance, named "fleet".
 * Enrollment is the only agent path that reaches it, so it is never on the check-in hot path.
 */
export class Directory extends DurableObject<Env> {
  readonly #outbox: EsOutbox;
  /** Enrollments pass here: fleet-server's enroll limiter, fleet-wide. */
  readonly #enrollments: TokenBucket;

  readonly #alarms: AlarmSchedule;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#alarms = new AlarmSchedule(ctx.storage);
    this.#outbox = new EsOutbox(ctx, env, {
      flushDelayMs: fleetConfig(env).mirrorFlushMs,
      report: (backlog) => mirrorMonitorFor(env, "directory").report("directory", backlog),
      wake: (at) => this.#alarms.request(at),
    });
    const enroll = enrollAdmission(fleetConfig(env).tier);
    this.#enrollments = new TokenBucket(enroll.ratePerSec, enroll.burst);
    ctx.blockConcurrencyWhile(async () => migrateSchema(ctx.storage, SCHEMA));
  }

  async registerPolicy(policy: PolicySummary): Promise<void> {
    this.ctx.storage.sql.exec(
      `INSERT INTO policies (id, name, namespace, revision, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET name = excluded.name, namespace = excluded.namespace,
         revision = MAX(revision, excluded.revision), updated_at = excluded.updated_at`,
      policy.id,
      policy.name,
      policy.namespace,
      policy.revision,
      policy.updated_at,
    );
  }

  async getPolicy(id: string): Promise<PolicySummary | null> {
    return this.ctx.storage.sql.exec<PolicySummary & Record<string, SqlStorageValue>>("SELECT * FROM policies WHERE id = ?", id).toArray()[0] ?? null;
  }

  async listPolicies(limit: number, offset: number): Promise<{ items: PolicySummary[]; total: number }> {
    const sql = this.ctx.storage.sql;
    const total = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM policies").one().n;
    const items = sql
      .exec<PolicySummary & Record<string, SqlStorageValue>>("SELECT * FROM policies ORDER BY name, id LIMIT ? OFFSET ?", limit, offset)
      .toArray();
    return { items, total };
  }

  /** Every policy id (the fleet has at most about a thousand policies). */
  async policyIds(): Promise<string[]> {
    return this.ctx.storage.sql.exec<{ id: string }>("SELECT id FROM policies ORDER BY id").toArray().map((row) => row.id);
  }

  /** Forgets a deleted policy and revokes its enrollment keys. */
  async removePolicy(id: string): Promise<void> {
    const keys = this.ctx.storage.sql.exec<KeyRow>("SELECT * FROM enrollment_keys WHERE policy_id = ? AND active = 1", id).toArray();
    this.ctx.storage.sql.exec("DELETE FROM policies WHERE id = ?", id);
    for (const key of keys) await this.revokeEnrollmentKey(key.id);
  }

  async listEnrollmentKeys(limit: number, offset: number, policyId?: string): Promise<{ items: EnrollmentKeyRecord[]; total: number }> {
    const sql = this.ctx.storage.sql;
    const where = policyId ? "WHERE policy_id = ?" : "";
    const params = policyId ? [policyId] : [];
    const total = sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM enrollment_keys ${where}`, ...params).one().n;
    const items = sql
      .exec<KeyRow>(`SELECT * FROM enrollment_keys ${where} ORDER BY created_at DESC, id LIMIT ? OFFSET ?`, ...params, limit, offset)
      .toArray()
      .map(toRecord);
    return { items, total };
  }

  async getEnrollmentKey(id: string): Promise<EnrollmentKeyRecord | Failure> {
    const row = this.#keyRow("id", id);
    return row ? toRecord(row) : { error: "NotFound", detail: `enrollment key ${id} not found` };
  }

  /** Creates an admin API key: `Authorization: Bearer <api_key>` on admin routes. Only its hash is kept. */
  async createAdminKey(name: string): Promise<AdminKeyRecord> {
    const id = randomToken(12);
    const secret = randomToken(32);
    const created_at = new Date().toISOString();
    this.ctx.storage.sql.exec(
      "INSERT INTO admin_keys (id, name, secret_hash, created_at) VALUES (?, ?, ?, ?)",
      id,
      name,
      await sha256Hex(secret),
      created_at,
    );
    return { id, name, created_at, api_key: `${ADMIN_KEY_PREFIX}${id}.${secret}` };
  }

  async listAdminKeys(): Promise<AdminKeyRecord[]> {
    return this.ctx.storage.sql
      .exec<{ id: string; name: string; created_at: string; revoked_at: string | null }>("SELECT id, name, created_at, revoked_at FROM admin_keys ORDER BY created_at")
      .toArray()
      .map((row) => ({ id: row.id, name: row.name, created_at: row.created_at, ...(row.revoked_at ? { revoked_at: row.revoked_at } : {}) }));
  }

  async revokeAdminKey(id: string): Promise<AdminKeyRecord | Failure> {
    const now = new Date().toISOString();
    const row = this.ctx.storage.sql.exec<{ name: string; created_at: string }>("SELECT name, created_at FROM admin_keys WHERE id = ?", id).toArray()[0];
    if (!row) return { error: "NotFound", detail: `admin API key ${id} not found` };
    this.ctx.storage.sql.exec("UPDATE admin_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?", now, id);
    return { id, name: row.name, created_at: row.created_at, revoked_at: now };
  }

  /** The name of the admin key `token` belongs to, or null when it is not a live admin key. */
  async verifyAdminKey(token: string): Promise<string | null> {
    const key = parseAdminKey(token);
    if (!key) return null;
    const { id, secret } = key;
    const row = this.ctx.storage.sql
      .exec<{ name: string; secret_hash: string; revoked_at: string | null }>("SELECT name, secret_hash, revoked_at FROM admin_keys WHERE id = ?", id)
      .toArray()[0];
    const hash = await sha256Hex(secret);
    if (!row || row.revoked_at || !constantTimeEqual(hash, row.secret_hash)) return null;
    return row.name;
  }

  async registerJob(job: { id: string; type: string; created_at: string; created_by: string }): Promise<void> {
    this.ctx.storage.sql.exec("INSERT OR IGNORE INTO jobs (id, type, created_at, created_by) VALUES (?, ?, ?, ?)", job.id, job.type, job.created_at, job.created_by);
  }

  async listJobs(limit: number, offset: number): Promise<{ items: Array<{ id: string; type: string; created_at: string; created_by: string }>; total: number }> {
    const sql = this.ctx.storage.sql;
    const total = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM jobs").one().n;
    const items = sql
      .exec<{ id: string; type: string; created_at: string; created_by: string }>("SELECT * FROM jobs ORDER BY created_at DESC, id LIMIT ? OFFSET ?", limit, offset)
      .toArray();
    return { items, total };
  }

  async createEnrollmentKey(input: { policyId: string; name?: string; expireAt?: string }): Promise<EnrollmentKeyRecord | Failure> {
    const policy = await this.getPolicy(input.policyId);
    if (!policy) return { error: "NotFound", detail: `agent policy ${input.policyId} not found` };
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
    this.ctx.storage.sql.exec(
      "INSERT INTO enrollment_keys (id, api_key_id, secret_hash, name, policy_id, active, created_at, expire_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?)",
      id,
      apiKeyId,
      await sha256Hex(secret),
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
  async upsertExternalEnrollmentKey(key: {
    id: string;
    apiKeyId: string;
    secret: string;
    policyId: string;
    name: string;
    active: boolean;
    createdAt: string;
    expireAt?: string;
  }): Promise<void> {
    this.ctx.storage.sql.exec(
      `INSERT INTO enrollment_keys (id, api_key_id, secret_hash, name, policy_id, active, created_at, expire_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET secret_hash = excluded.secret_hash, name = excluded.name, policy_id = excluded.policy_id,
         active = excluded.active, expire_at = excluded.expire_at`,
      key.id,
      key.apiKeyId,
      await sha256Hex(key.secret),
      key.name,
      key.policyId,
      key.active ? 1 : 0,
      key.createdAt,
      key.expireAt ?? null,
    );
  }

  /** Revokes a key at once: the next enrollment with it fails. */
  async revokeEnrollmentKey(id: string): Promise<EnrollmentKeyRecord | Failure> {
    const row = this.#keyRow("id", id);
    if (!row) return { error: "NotFound", detail: `enrollment key ${id} not found` };
    const revoked = toRecord({ ...row, active: 0 });
    this.ctx.storage.sql.exec("UPDATE enrollment_keys SET active = 0 WHERE id = ?", id);
    this.#outbox.add({ index: INDEX.enrollmentKeys, id, op: "index", body: enrollmentKeyDocument(revoked, new Date().toISOString()) });
    return revoked;
  }

  /** The policy an enrollment key enrolls into, if the key is genuine, active and unexpired. */
  async resolveEnrollmentKey(key: ApiKey, admit = false): Promise<{ policyId: string; namespaces: string[] } | Failure> {
    if (admit) {
      const admitted = this.#enrollments.take();
      if (!admitted.ok) return { error: "RateLimit", retryAfterMs: admitted.retryAfterMs };
    }
    const row = this.#keyRow("api_key_id", key.id);
    const hash = await sha256Hex(key.secret);
    if (!row || !constantTimeEqual(hash, row.secret_hash) || row.active !== 1) return { error: "Unauthorized" };
    if (row.expire_at && Date.parse(row.expire_at) <= Date.now()) return { error: "Unauthorized" };
    return { policyId: row.policy_id, namespaces: [] };
  }

  /**
   * Records that `enrollmentId` now belongs to `agentId` and returns the agent that held it before
   * (fleet-protocol.md §2.2 step 5), so the caller can retire it.
   */
  async claimEnrollmentId(enrollmentId: string, agentId: string): Promise<string | null> {
    const previous = this.ctx.storage.sql
      .exec<{ agent_id: string }>("SELECT agent_id FROM enrollment_ids WHERE enrollment_id = ?", enrollmentId)
      .toArray()[0];
    this.ctx.storage.sql.exec(
      "INSERT INTO enrollment_ids (enrollment_id, agent_id) VALUES (?, ?) ON CONFLICT (enrollment_id) DO UPDATE SET agent_id = excluded.agent_id",
      enrollmentId,
      agentId,
    );
    return previous && previous.agent_id !== agentId ? previous.agent_id : null;
  }

  /** Delivers the Elasticsearch outbox. */
  override async alarm(): Promise<void> {
    await this.#alarms.run(() => this.#outbox.drain());
  }

  #keyRow(column: "id" | "api_key_id", value: string): KeyRow | undefined {
    return this.ctx.storage.sql.exec<KeyRow>(`SELECT * FROM enrollment_keys WHERE ${column} = ?`, value).toArray()[0];
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
