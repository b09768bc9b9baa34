import { DurableObject } from "cloudflare:workers";
import { parseApiKeyHeader } from "../src/auth/api-key";
import { parseGoDuration } from "../src/protocol/duration";
import type { Env } from "../src/config";
import { agentObject, directory, policyHub } from "../src/durable-stubs";
import { esConfig, type EsConfig } from "../src/es/config";
import { INGEST_PAGE, documentsAfter, globalCheckpoint, type KibanaActionDoc, type KibanaEnrollmentKeyDoc, type KibanaPolicyDoc, type SeqHit } from "../src/es/ingest";
import { INDEX } from "../src/es/indices";
import { shapeActionData, ACTION_TYPES } from "../src/protocol/action";
import type { JsonObject, JsonValue } from "../src/protocol/parse";
import { migrateOnStart } from "./sql-schema";
import { log, useLogSettings } from "../src/log";

const SCHEMA = [`CREATE TABLE checkpoints (index_name TEXT PRIMARY KEY, seq_no INTEGER NOT NULL, updated_at TEXT NOT NULL);`];

/** Pages read per index per round, so one round stays well inside an alarm's limits. */
const MAX_PAGES = 10;
/** Concurrent calls into agent stores while fanning an action out. */
const FANOUT_CONCURRENCY = 6;

/**
 * Follows what Kibana writes into Elasticsearch (`.fleet-policies`, `.fleet-actions`,
 * `.fleet-enrollment-api-keys`) by `_seq_no` checkpoint and hands each document to the object that
 * owns it, so Kibana-made policies, actions and keys reach agents exactly like admin-made ones. One
 * instance ("kibana"); its alarm re-arms every `ES_INGEST_INTERVAL`. Everything it applies is
 * idempotent, including the documents this server mirrored itself.
 */
export class IngestWatcher extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    useLogSettings(env);
    migrateOnStart(ctx, SCHEMA);
  }

  /** Starts the polling loop if it is not running (cheap; the Worker calls it once per isolate). */
  async ensureRunning(): Promise<void> {
    if (!esConfig(this.env)) return;
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now());
  }

  /** One polling round now; returns how many documents were applied (for tests and admins). */
  async pollNow(): Promise<number> {
    const config = esConfig(this.env);
    return config ? this.#round(config) : 0;
  }

  async checkpoints(): Promise<Record<string, number>> {
    const rows = this.ctx.storage.sql.exec<{ index_name: string; seq_no: number }>("SELECT index_name, seq_no FROM checkpoints").toArray();
    return Object.fromEntries(rows.map((row) => [row.index_name, row.seq_no]));
  }

  override async alarm(): Promise<void> {
    const config = esConfig(this.env);
    if (!config) return;
    try {
      await this.#round(config);
    } catch (err) {
      // Elasticsearch down: try again next round; checkpoints only move after a document is applied.
      log.warn("ingest.failed", { error: (err as Error).message });
    }
    const interval = parseGoDuration(this.env.ES_INGEST_INTERVAL ?? "5s") ?? 5000;
    await this.ctx.storage.setAlarm(Date.now() + interval);
  }

  async #round(config: EsConfig): Promise<number> {
    let applied = 0;
    applied += await this.#follow<KibanaEnrollmentKeyDoc>(config, INDEX.enrollmentKeys, (hits) => this.#applyKeys(hits));
    applied += await this.#follow<KibanaPolicyDoc>(config, INDEX.policies, (hits) => this.#applyPolicies(hits));
    applied += await this.#follow<KibanaActionDoc>(config, INDEX.actions, (hits) => this.#applyActions(hits));
    return applied;
  }

  async #follow<T>(config: EsConfig, index: string, apply: (hits: SeqHit<T>[]) => Promise<void>): Promise<number> {
    let applied = 0;
    for (let page = 0; page < MAX_PAGES; page++) {
      const checkpoint = this.ctx.storage.sql.exec<{ seq_no: number }>("SELECT seq_no FROM checkpoints WHERE index_name = ?", index).toArray()[0]?.seq_no ?? -1;
      // With the Fleet plugin, an unchanged global checkpoint answers "nothing new" without a search.
      if (page === 0) {
        const global = await globalCheckpoint(config, index);
        if (global !== null && global <= checkpoint) break;
      }
      const hits = await documentsAfter<T>(config, index, checkpoint);
      if (hits.length === 0) break;
      await apply(hits);
      applied += hits.length;
      this.ctx.storage.sql.exec(
        "INSERT INTO checkpoints (index_name, seq_no, updated_at) VALUES (?, ?, ?) ON CONFLICT (index_name) DO UPDATE SET seq_no = excluded.seq_no, updated_at = excluded.updated_at",
        index,
        hits[hits.length - 1]!._seq_no,
        new Date().toISOString(),
      );
      if (hits.length < INGEST_PAGE) break;
    }
    return applied;
  }

  async #applyKeys(hits: SeqHit<KibanaEnrollmentKeyDoc>[]): Promise<void> {
    for (const hit of hits) {
      const doc = hit._source;
      // Our own mirrored keys carry no token: the Directory already holds them.
      if (!doc.api_key || !doc.policy_id) continue;
      let secret: string;
      try {
        secret = parseApiKeyHeader(`ApiKey ${doc.api_key}`).secret;
      } catch {
        log.warn("ingest.skipped", { index: INDEX.enrollmentKeys, id: hit._id, reason: "api_key is not base64(id:key)" });
        continue;
      }
      await directory(this.env).upsertExternalEnrollmentKey({
        id: hit._id,
        apiKeyId: doc.api_key_id ?? parseApiKeyHeader(`ApiKey ${doc.api_key}`).id,
        secret,
        policyId: doc.policy_id,
        name: doc.name ?? hit._id,
        active: doc.active !== false,
        createdAt: doc.created_at ?? new Date().toISOString(),
        ...(doc.expire_at ? { expireAt: doc.expire_at } : {}),
      });
    }
  }

  async #applyPolicies(hits: SeqHit<KibanaPolicyDoc>[]): Promise<void> {
    // Only the newest revision of each policy in this page matters.
    const newest = new Map<string, KibanaPolicyDoc>();
    for (const { _source: doc } of hits) {
      if (!doc.policy_id || typeof doc.revision_idx !== "number" || !doc.data) continue;
      const seen = newest.get(doc.policy_id);
      if (!seen || (seen.revision_idx ?? 0) < doc.revision_idx) newest.set(doc.policy_id, doc);
    }
    for (const [policyId, doc] of newest) {
      const { id: _id, revision: _revision, ...policy } = doc.data as JsonObject;
      const result = await policyHub(this.env, policyId).ingestRevision({
        policyId,
        revision: doc.revision_idx!,
        createdAt: doc["@timestamp"] ?? new Date().toISOString(),
        policy,
      });
      if (result) {
        await directory(this.env).registerPolicy({
          id: policyId,
          name: result.name,
          namespace: result.namespace,
          revision: result.revision,
          updated_at: result.created_at,
        });
      }
    }
  }

  async #applyActions(hits: SeqHit<KibanaActionDoc>[]): Promise<void> {
    const now = Date.now();
    const deliveries: Array<() => Promise<void>> = [];
    for (const hit of hits) {
      const doc = hit._source;
      // fleet-server never delivers actions without an expiration, or expired ones.
      if (!doc.action_id || !doc.type || !doc.expiration || Date.parse(doc.expiration) <= now) continue;
      if (!(ACTION_TYPES as readonly string[]).includes(doc.type)) continue;
      const shaped = shapeActionData(doc.type, doc.data);
      const data = (shaped.ok ? doc.data : null) as JsonValue;
      for (const agentId of doc.agents ?? []) {
        deliveries.push(async () => {
          // The agent's store stores it with the wake-up of the agent's socket or parked check-in.
          await agentObject(this.env, agentId).addAction({
            action_id: doc.action_id!,
            doc_id: hit._id,
            type: doc.type!,
            data: data ?? null,
            created_at: doc["@timestamp"] ?? new Date(now).toISOString(),
            expiration: doc.expiration!,
            ...(doc.start_time ? { start_time: doc.start_time } : {}),
            ...(doc.input_type ? { input_type: doc.input_type } : {}),
            ...(doc.timeout !== undefined ? { timeout: doc.timeout } : {}),
          });
        });
      }
    }
    for (let i = 0; i < deliveries.length; i += FANOUT_CONCURRENCY) {
      await Promise.all(deliveries.slice(i, i + FANOUT_CONCURRENCY).map((deliver) => deliver()));
    }
  }
}
