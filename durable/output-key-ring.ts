import type { Env } from "../src/config";
import { createApiKey, invalidateApiKeys, updateApiKeyRoles } from "../src/es/api-keys";
import { esConfig, type EsConfig } from "../src/es/config";
import type { KeyedOutput } from "../src/policy/output-keys";
import type { AgentDoc } from "../src/protocol/agent-doc";
import { log } from "../src/log";

/** Schema step the agent store appends: each agent's keys (secrets stay here) and the invalidation queue. */
export const OUTPUT_KEYS_SCHEMA = `CREATE TABLE output_keys (
     agent_id TEXT NOT NULL, output TEXT NOT NULL, api_key_id TEXT, secret TEXT, permissions_hash TEXT, remote TEXT,
     PRIMARY KEY (agent_id, output));
   CREATE TABLE retired_keys (api_key_id TEXT PRIMARY KEY, remote TEXT, retired_at TEXT NOT NULL);`;

/** Unconfirmed invalidations are retried this long, then given up loudly. */
const RETIREMENT_GIVE_UP_MS = 86_400_000;

/**
 * Agents' per-output Elasticsearch API keys (fleet-protocol.md §4.4), kept in their store's
 * SQLite: minted on first use, roles updated in place when the policy's permissions change, and
 * queued for invalidation when an output disappears or the agent leaves. The secret of a key never
 * leaves the object except inside the agent's own POLICY_CHANGE.
 */
export class OutputKeyRing {
  readonly #ctx: DurableObjectState;
  readonly #env: Env;
  /** Brings the owner's alarm forward without postponing an earlier one (its outbox shares it). */
  readonly #wake: (at: number) => Promise<void>;

  constructor(ctx: DurableObjectState, env: Env, wake: (at: number) => Promise<void>) {
    this.#ctx = ctx;
    this.#env = env;
    this.#wake = wake;
  }

  /**
   * The agent's `id:key` per output, minting or updating as needed. When Elasticsearch cannot mint a
   * key the output goes without one (and `incomplete()` makes the next check-in resend the policy);
   * when it cannot update a key's roles yet, the key keeps flowing with its old roles.
   */
  async ensure(agentId: string, outputs: KeyedOutput[]): Promise<Record<string, string>> {
    const own = esConfig(this.#env);
    if (!own) return {};
    const sql = this.#ctx.storage.sql;
    const keys: Record<string, string> = {};
    for (const output of outputs) {
      const config = output.remote ?? own;
      const row = sql
        .exec<{ api_key_id: string | null; secret: string | null; permissions_hash: string | null }>(
          "SELECT api_key_id, secret, permissions_hash FROM output_keys WHERE agent_id = ? AND output = ?",
          agentId,
          output.name,
        )
        .toArray()[0];
      try {
        if (row?.secret && row.api_key_id) {
          if (row.permissions_hash !== output.permissionsHash) {
            await updateApiKeyRoles(config, row.api_key_id, output.permissions);
            sql.exec("UPDATE output_keys SET permissions_hash = ? WHERE agent_id = ? AND output = ?", output.permissionsHash, agentId, output.name);
          }
          keys[output.name] = `${row.api_key_id}:${row.secret}`;
          continue;
        }
        const created = await createApiKey(config, {
          name: `${agentId}:${output.name}`,
          roleDescriptors: output.permissions,
          metadata: { agent_id: agentId, managed: true, managed_by: "fleet-server", output_name: output.name, type: "output" },
        });
        sql.exec(
          `INSERT INTO output_keys (agent_id, output, api_key_id, secret, permissions_hash, remote) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (agent_id, output) DO UPDATE SET api_key_id = excluded.api_key_id, secret = excluded.secret,
             permissions_hash = excluded.permissions_hash, remote = excluded.remote`,
          agentId,
          output.name,
          created.id,
          created.api_key,
          output.permissionsHash,
          output.remote ? JSON.stringify(output.remote) : null,
        );
        keys[output.name] = `${created.id}:${created.api_key}`;
      } catch (err) {
        log.warn("output_key.failed", { agent_id: agentId, output: output.name, error: (err as Error).message });
        if (row?.secret && row.api_key_id) {
          // The stale hash makes the next delivery try the update again.
          keys[output.name] = `${row.api_key_id}:${row.secret}`;
        } else if (!row) {
          sql.exec("INSERT INTO output_keys (agent_id, output) VALUES (?, ?)", agentId, output.name);
        }
      }
    }
    this.retire(agentId, new Set(outputs.map((o) => o.name)));
    await this.scheduleRetirement();
    return keys;
  }

  /** An output still waits for its key: the policy must be sent again (fleet-protocol.md §4.2). */
  incomplete(agentId: string): boolean {
    // Standalone servers mint no keys (and check in without this query).
    if (!esConfig(this.#env)) return false;
    return (
      this.#ctx.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM output_keys WHERE agent_id = ? AND secret IS NULL", agentId).one().n > 0
    );
  }

  /** `outputs` as the agent document shows it: key ids and permission hashes, never the secrets. */
  summary(agentId: string): NonNullable<AgentDoc["outputs"]> {
    const rows = this.#ctx.storage.sql
      .exec<{ output: string; api_key_id: string | null; permissions_hash: string | null }>(
        "SELECT output, api_key_id, permissions_hash FROM output_keys WHERE agent_id = ?",
        agentId,
      )
      .toArray();
    return Object.fromEntries(
      rows.map((row) => [row.output, { api_key_id: row.api_key_id ?? "", permissions_hash: row.permissions_hash ?? "", type: "elasticsearch" }]),
    );
  }

  /** Moves the agent's keys of outputs not in `keep` (all when null) to the invalidation queue. Synchronous. */
  retire(agentId: string, keep: Set<string> | null): void {
    const sql = this.#ctx.storage.sql;
    const rows = sql
      .exec<{ output: string; api_key_id: string | null; remote: string | null }>("SELECT output, api_key_id, remote FROM output_keys WHERE agent_id = ?", agentId)
      .toArray();
    for (const row of rows) {
      if (keep?.has(row.output)) continue;
      if (row.api_key_id) {
        sql.exec("INSERT OR IGNORE INTO retired_keys (api_key_id, remote, retired_at) VALUES (?, ?, ?)", row.api_key_id, row.remote, new Date().toISOString());
      }
      sql.exec("DELETE FROM output_keys WHERE agent_id = ? AND output = ?", agentId, row.output);
    }
  }

  async scheduleRetirement(): Promise<void> {
    if (this.#retiredCount() > 0) await this.#wake(Date.now() + 1000);
  }

  /** From the owner's alarm: invalidates queued keys, keeping those Elasticsearch did not confirm. */
  async invalidateRetired(): Promise<void> {
    const own = esConfig(this.#env);
    if (!own) return;
    const sql = this.#ctx.storage.sql;
    const rows = sql
      .exec<{ api_key_id: string; remote: string | null; retired_at: string }>("SELECT api_key_id, remote, retired_at FROM retired_keys LIMIT 100")
      .toArray();
    if (rows.length === 0) return;
    const byCluster = new Map<string | null, typeof rows>();
    for (const row of rows) byCluster.set(row.remote, [...(byCluster.get(row.remote) ?? []), row]);
    let failed = false;
    for (const [remote, group] of byCluster) {
      try {
        const confirmed = await invalidateApiKeys(remote ? (JSON.parse(remote) as EsConfig) : own, group.map((row) => row.api_key_id));
        for (const row of group) {
          // A key minted a moment ago may not be searchable yet: unconfirmed ids are retried.
          const givenUp = Date.now() - Date.parse(row.retired_at) > RETIREMENT_GIVE_UP_MS;
          if (confirmed.has(row.api_key_id) || givenUp) {
            if (!confirmed.has(row.api_key_id)) log.error("output_key.not_invalidated", { api_key_id: row.api_key_id });
            sql.exec("DELETE FROM retired_keys WHERE api_key_id = ?", row.api_key_id);
          } else {
            failed = true;
          }
        }
      } catch (err) {
        failed = true;
        log.warn("output_key.invalidate_failed", { count: group.length, error: (err as Error).message });
      }
    }
    if (failed || this.#retiredCount() > 0) await this.#wake(Date.now() + (failed ? 5_000 : 0));
  }

  #retiredCount(): number {
    return this.#ctx.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM retired_keys").one().n;
  }
}
