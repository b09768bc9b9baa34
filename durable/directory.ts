import { DurableObject } from "cloudflare:workers";
import { useLogSettings } from "../src/log";
import type { ApiKey } from "../src/auth/api-key";
import { fleetConfig, type Env } from "../src/config";
import { mirrorMonitorFor } from "../src/durable-stubs";
import type { Failure } from "../src/errors";
import type { AdminKeyRecord, EnrollmentKeyRecord, PolicySummary } from "../src/admin/directory-records";
import { enrollAdmission } from "../src/limits/tiers";
import { TokenBucket } from "../src/limits/token-bucket";
import { AdminKeys } from "./admin-keys";
import { AlarmSchedule } from "./alarm-schedule";
import { EnrollmentClaims } from "./enrollment-claims";
import { EnrollmentKeys, type ExternalEnrollmentKey } from "./enrollment-keys";
import { EsOutbox, OUTBOX_SCHEMA } from "./es-outbox";
import { JobRegistry, type JobEntry } from "./job-registry";
import { PolicyCatalogue } from "./policy-catalogue";
import { migrateOnStart } from "./sql-schema";

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

/**
 * The fleet's small, read-mostly records, one instance named "fleet": the policy catalogue,
 * enrollment keys, enrollment-id claims, admin API keys and the bulk-job registry, each a class of
 * its own over one table of this object's SQLite (the schema steps stay here, in order). The object
 * adds what spans them (a policy's removal revokes its keys) and fleet-server's enroll limiter.
 * Enrollment is the only agent path that reaches it, so it is never on the check-in hot path.
 */
export class Directory extends DurableObject<Env> {
  readonly #outbox: EsOutbox;
  /** Enrollments pass here: fleet-server's enroll limiter, fleet-wide. */
  readonly #enrollments: TokenBucket;
  readonly #alarms: AlarmSchedule;
  readonly #policies: PolicyCatalogue;
  readonly #enrollmentKeys: EnrollmentKeys;
  readonly #claims: EnrollmentClaims;
  readonly #adminKeys: AdminKeys;
  readonly #jobs: JobRegistry;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    useLogSettings(env);
    this.#alarms = new AlarmSchedule(ctx.storage);
    this.#outbox = new EsOutbox(ctx, env, {
      flushDelayMs: fleetConfig(env).mirrorFlushMs,
      report: (backlog) => mirrorMonitorFor(env, "directory").report("directory", backlog),
      wake: (at) => this.#alarms.request(at),
    });
    const enroll = enrollAdmission(fleetConfig(env).tier);
    this.#enrollments = new TokenBucket(enroll.ratePerSec, enroll.burst);
    const sql = ctx.storage.sql;
    this.#policies = new PolicyCatalogue(sql);
    this.#enrollmentKeys = new EnrollmentKeys(sql, this.#outbox);
    this.#claims = new EnrollmentClaims(sql);
    this.#adminKeys = new AdminKeys(sql);
    this.#jobs = new JobRegistry(sql);
    migrateOnStart(ctx, SCHEMA);
  }

  async registerPolicy(policy: PolicySummary): Promise<void> {
    this.#policies.register(policy);
  }

  async getPolicy(id: string): Promise<PolicySummary | null> {
    return this.#policies.get(id);
  }

  async listPolicies(limit: number, offset: number): Promise<{ items: PolicySummary[]; total: number }> {
    return this.#policies.list(limit, offset);
  }

  /** Every policy id (the fleet has at most about a thousand policies). */
  async policyIds(): Promise<string[]> {
    return this.#policies.ids();
  }

  /** Forgets a deleted policy and revokes its enrollment keys. */
  async removePolicy(id: string): Promise<void> {
    const keys = this.#enrollmentKeys.activeFor(id);
    this.#policies.remove(id);
    for (const key of keys) this.#enrollmentKeys.revoke(key);
  }

  async listEnrollmentKeys(limit: number, offset: number, policyId?: string): Promise<{ items: EnrollmentKeyRecord[]; total: number }> {
    return this.#enrollmentKeys.list(limit, offset, policyId);
  }

  async getEnrollmentKey(id: string): Promise<EnrollmentKeyRecord | Failure> {
    return this.#enrollmentKeys.get(id);
  }

  async createEnrollmentKey(input: { policyId: string; name?: string; expireAt?: string }): Promise<EnrollmentKeyRecord | Failure> {
    if (!this.#policies.get(input.policyId)) return { error: "NotFound", detail: `agent policy ${input.policyId} not found` };
    return this.#enrollmentKeys.create(input);
  }

  /** Adopts an enrollment key Kibana created (from `.fleet-enrollment-api-keys`). */
  async upsertExternalEnrollmentKey(key: ExternalEnrollmentKey): Promise<void> {
    await this.#enrollmentKeys.adopt(key);
  }

  /** Revokes a key at once: the next enrollment with it fails. */
  async revokeEnrollmentKey(id: string): Promise<EnrollmentKeyRecord | Failure> {
    return this.#enrollmentKeys.revoke(id);
  }

  /** The policy an enrollment key enrolls into, if the key is genuine, active and unexpired; `admit` applies the enroll limit first. */
  async resolveEnrollmentKey(key: ApiKey, admit = false): Promise<{ policyId: string; namespaces: string[] } | Failure> {
    if (admit) {
      const admitted = this.#enrollments.take();
      if (!admitted.ok) return { error: "RateLimit", retryAfterMs: admitted.retryAfterMs };
    }
    return this.#enrollmentKeys.resolve(key);
  }

  /**
   * Records that `enrollmentId` now belongs to `agentId` and returns the agent that held it before
   * (fleet-protocol.md §2.2 step 5), so the caller can retire it.
   */
  async claimEnrollmentId(enrollmentId: string, agentId: string): Promise<string | null> {
    return this.#claims.claim(enrollmentId, agentId);
  }

  /** Creates an admin API key: `Authorization: Bearer <api_key>` on admin routes. Only its hash is kept. */
  async createAdminKey(name: string): Promise<AdminKeyRecord> {
    return this.#adminKeys.create(name);
  }

  async listAdminKeys(): Promise<AdminKeyRecord[]> {
    return this.#adminKeys.list();
  }

  async revokeAdminKey(id: string): Promise<AdminKeyRecord | Failure> {
    return this.#adminKeys.revoke(id);
  }

  /** The name of the admin key `token` belongs to, or null when it is not a live admin key. */
  async verifyAdminKey(token: string): Promise<string | null> {
    return this.#adminKeys.verify(token);
  }

  /** Whether admin key `id` is still live with the secret whose hash is `secretHash`. */
  async adminKeyStillValid(id: string, secretHash: string): Promise<boolean> {
    return this.#adminKeys.stillValid(id, secretHash);
  }

  async registerJob(job: JobEntry): Promise<void> {
    this.#jobs.register(job);
  }

  async listJobs(limit: number, offset: number): Promise<{ items: JobEntry[]; total: number }> {
    return this.#jobs.list(limit, offset);
  }

  /** Delivers the Elasticsearch outbox. */
  override async alarm(): Promise<void> {
    await this.#alarms.run(() => this.#outbox.drain());
  }
}
