import type { AgentStatus, AgentSummary, StatusContext } from "../src/agents/status";
import type { AgentQuery, ListedAgent, SortField } from "../src/admin/agent-query";
import type { ListCursor } from "../src/protocol/admin";
import { agentBucket, type StageStats } from "../src/policy/staged-rollout";

/** Schema step the policy hub appends: one row per agent assigned to the policy. */
export const ROSTER_SCHEMA = `
  CREATE TABLE roster (
    agent_id TEXT PRIMARY KEY,
    active INTEGER NOT NULL,
    enrolled_at TEXT NOT NULL,
    last_checkin TEXT,
    last_checkin_status TEXT,
    last_checkin_message TEXT,
    hostname TEXT,
    version TEXT,
    tags TEXT NOT NULL,
    policy_revision_idx INTEGER NOT NULL,
    upgrading INTEGER NOT NULL,
    unenrolling INTEGER NOT NULL,
    unhealthy_reason TEXT);
  CREATE INDEX roster_enrolled_at ON roster (enrolled_at);
  CREATE INDEX roster_last_checkin ON roster (last_checkin);
  CREATE INDEX roster_hostname ON roster (hostname);
  CREATE INDEX roster_revision ON roster (policy_revision_idx);`;

/** Schema step: each row's stable rollout bucket (src/policy/staged-rollout.ts), indexed for stage counts. */
export const ROSTER_BUCKET_SCHEMA = `ALTER TABLE roster ADD COLUMN bucket INTEGER; CREATE INDEX roster_bucket ON roster (bucket);`;

/**
 * Schema step: each row's version, the agent store's effect sequence that carried it, so a retried
 * or late delivery never replaces a newer row (nor removes one).
 */
export const ROSTER_VERSION_SCHEMA = `ALTER TABLE roster ADD COLUMN summary_version INTEGER NOT NULL DEFAULT 0;`;

/** Schema step: each row's record type (OpAMP collectors are `OPAMP`); rows written before it read as `PERMANENT`. */
export const ROSTER_TYPE_SCHEMA = `ALTER TABLE roster ADD COLUMN agent_type TEXT;`;

interface RosterRow extends Record<string, SqlStorageValue> {
  agent_id: string;
  active: number;
  enrolled_at: string;
  last_checkin: string | null;
  last_checkin_status: string | null;
  last_checkin_message: string | null;
  hostname: string | null;
  version: string | null;
  tags: string;
  policy_revision_idx: number;
  upgrading: number;
  unenrolling: number;
  unhealthy_reason: string | null;
  agent_type: string | null;
  status: string;
}

/**
 * The status rule of `src/agents/status.ts` as SQL, so a page of 100k agents can be filtered and
 * counted by status inside SQLite. Parameters: the offline cutoff (ISO time) and the latest revision.
 */
const STATUS_SQL = `CASE
  WHEN active = 0 THEN 'unenrolled'
  WHEN unenrolling = 1 THEN 'unenrolling'
  WHEN last_checkin IS NULL THEN 'enrolling'
  WHEN last_checkin < ?1 OR lower(last_checkin_status) = 'disconnected' THEN 'offline'
  WHEN upgrading = 1 OR policy_revision_idx < ?2 THEN 'updating'
  WHEN lower(last_checkin_status) IN ('error', 'failed') THEN 'error'
  WHEN lower(last_checkin_status) = 'degraded' THEN 'degraded'
  ELSE 'online' END`;

/**
 * A policy's agents, kept in its hub's SQLite so admins can list, filter, page and count them
 * without touching (or loading) each agent's store. Rows come only from the agents' stores, as
 * effects of the changes that made them (durable/agent-effects.ts), so the roster follows the
 * agents' records within the effects' delivery bound.
 */
export class AgentRoster {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /** Writes an agent's row unless a newer version is already here. */
  upsert(agent: AgentSummary, version: number): void {
    this.#sql.exec(
      `INSERT INTO roster (agent_id, active, enrolled_at, last_checkin, last_checkin_status, last_checkin_message, hostname, version, tags,
         policy_revision_idx, upgrading, unenrolling, unhealthy_reason, bucket, summary_version, agent_type)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (agent_id) DO UPDATE SET active = excluded.active, enrolled_at = excluded.enrolled_at,
         last_checkin = excluded.last_checkin,
         last_checkin_status = excluded.last_checkin_status, last_checkin_message = excluded.last_checkin_message,
         hostname = excluded.hostname, version = excluded.version, tags = excluded.tags, policy_revision_idx = excluded.policy_revision_idx,
         upgrading = excluded.upgrading, unenrolling = excluded.unenrolling, unhealthy_reason = excluded.unhealthy_reason,
         summary_version = excluded.summary_version, agent_type = excluded.agent_type
       WHERE excluded.summary_version >= roster.summary_version`,
      agent.agent_id,
      agent.active ? 1 : 0,
      agent.enrolled_at,
      agent.last_checkin,
      agent.last_checkin_status,
      agent.last_checkin_message,
      agent.hostname,
      agent.version,
      JSON.stringify(agent.tags),
      agent.policy_revision_idx,
      agent.upgrading ? 1 : 0,
      agent.unenrolling ? 1 : 0,
      agent.unhealthy_reason ? JSON.stringify(agent.unhealthy_reason) : null,
      agentBucket(agent.agent_id),
      version,
      agent.type,
    );
  }

  /**
   * A rollout stage's agents (active, bucket below `threshold`): how many run `target` or later, and
   * how many report error or degraded since the stage started.
   */
  stageStats(threshold: number, target: number, since: string): StageStats {
    // Rows written before buckets existed get theirs now (a one-off for old rosters).
    const unbucketed = this.#sql.exec<{ agent_id: string }>("SELECT agent_id FROM roster WHERE bucket IS NULL").toArray();
    for (const row of unbucketed) this.#sql.exec("UPDATE roster SET bucket = ? WHERE agent_id = ?", agentBucket(row.agent_id), row.agent_id);
    return this.#sql
      .exec<{ members: number; acked: number | null; failed: number | null }>(
        `SELECT COUNT(*) AS members,
           SUM(policy_revision_idx >= ?) AS acked,
           SUM(lower(last_checkin_status) IN ('error', 'failed', 'degraded') AND last_checkin >= ?) AS failed
         FROM roster WHERE active = 1 AND bucket < ?`,
        target,
        since,
        threshold,
      )
      .toArray()
      .map((row) => ({ members: row.members, acked: row.acked ?? 0, failed: row.failed ?? 0 }))[0]!;
  }

  /** A newer check-in time for an agent's row (a held heartbeat), unless the row is newer already. */
  touch(agentId: string, lastCheckin: string, version: number): void {
    this.#sql.exec("UPDATE roster SET last_checkin = ?, summary_version = ? WHERE agent_id = ? AND summary_version < ?", lastCheckin, version, agentId, version);
  }

  /** Removes an agent's row unless it is newer than the removal. */
  remove(agentId: string, version: number): void {
    this.#sql.exec("DELETE FROM roster WHERE agent_id = ? AND summary_version <= ?", agentId, version);
  }

  list(policyId: string, query: AgentQuery, context: StatusContext): { items: ListedAgent[]; total: number } {
    const { where, params } = this.#filter(query);
    const cutoff = offlineCutoff(context);
    const base = `SELECT *, ${STATUS_SQL} AS status FROM roster`;
    const filtered = `SELECT * FROM (${base}) ${where}`;
    const total = this.#sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM (${filtered})`, cutoff, context.latestRevision, ...params).one().n;
    // NULLs sort last in either direction so "never checked in" does not crowd the first page.
    const order = `${query.sortField} IS NULL, ${query.sortField} ${query.sortOrder === "asc" ? "ASC" : "DESC"}, agent_id ASC`;
    const after = query.after ? keysetAfter(query.sortField, query.sortOrder, query.after) : null;
    const page = after ? `SELECT * FROM (${filtered}) WHERE ${after.clause}` : filtered;
    const rows = this.#sql
      .exec<RosterRow>(`${page} ORDER BY ${order} LIMIT ? OFFSET ?`, cutoff, context.latestRevision, ...params, ...(after?.params ?? []), query.limit, query.offset)
      .toArray();
    return { items: rows.map((row) => toListed(row, policyId)), total };
  }

  counts(context: StatusContext): Record<AgentStatus, number> & { total: number } {
    const cutoff = offlineCutoff(context);
    const rows = this.#sql
      .exec<{ status: AgentStatus; n: number }>(`SELECT ${STATUS_SQL} AS status, COUNT(*) AS n FROM roster GROUP BY status`, cutoff, context.latestRevision)
      .toArray();
    const counts = { online: 0, offline: 0, degraded: 0, error: 0, updating: 0, enrolling: 0, unenrolling: 0, unenrolled: 0, total: 0 };
    for (const row of rows) {
      counts[row.status] = row.n;
      counts.total += row.n;
    }
    return counts;
  }

  activeCount(): number {
    return this.#sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM roster WHERE active = 1").one().n;
  }

  /** Active agents per reported agent version, most agents first (the console's "by version"). */
  versions(): Array<{ version: string; agents: number }> {
    return this.#sql
      .exec<{ version: string; agents: number }>(
        "SELECT coalesce(version, 'unknown') AS version, COUNT(*) AS agents FROM roster WHERE active = 1 GROUP BY version ORDER BY agents DESC, version",
      )
      .toArray();
  }

  /** Active agents whose latest check-in is at or after `since` (ISO time): a range read of the index. */
  checkedInSince(since: string): number {
    return this.#sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM roster WHERE last_checkin >= ? AND active = 1", since).one().n;
  }

  /** Active agents per acked revision, newest first. */
  revisions(): Array<{ revision: number; agents: number }> {
    return this.#sql
      .exec<{ revision: number; agents: number }>(
        "SELECT policy_revision_idx AS revision, COUNT(*) AS agents FROM roster WHERE active = 1 GROUP BY policy_revision_idx ORDER BY policy_revision_idx DESC",
      )
      .toArray();
  }

  /** Active agents behind `revision` that report trouble: the likely failures of a rollout. */
  failing(revision: number, limit: number): ListedAgent[] {
    return this.#sql
      .exec<RosterRow>(
        `SELECT *, 'error' AS status FROM roster WHERE active = 1 AND policy_revision_idx < ?
           AND (lower(last_checkin_status) IN ('error', 'failed', 'degraded') OR unhealthy_reason IS NOT NULL)
         ORDER BY last_checkin DESC LIMIT ?`,
        revision,
        limit,
      )
      .toArray()
      .map((row) => toListed(row, ""));
  }

  #filter(query: AgentQuery): { where: string; params: SqlStorageValue[] } {
    const clauses: string[] = [];
    const params: SqlStorageValue[] = [];
    if (query.status) {
      clauses.push("status = ?");
      params.push(query.status);
    } else if (!query.includeInactive) {
      clauses.push("active = 1");
    }
    if (query.version) {
      clauses.push("version = ?");
      params.push(query.version);
    }
    if (query.tag) {
      clauses.push("EXISTS (SELECT 1 FROM json_each(tags) WHERE json_each.value = ?)");
      params.push(query.tag);
    }
    if (query.text) {
      clauses.push("(lower(hostname) LIKE ? ESCAPE '\\' OR lower(agent_id) LIKE ? ESCAPE '\\')");
      const pattern = `%${query.text.toLowerCase().replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
      params.push(pattern, pattern);
    }
    return { where: clauses.length > 0 ? `WHERE ${clauses.join(" AND ")}` : "", params };
  }
}

/** Rows after the cursor in the list's order: the sort field (nulls last), then agent id. */
function keysetAfter(field: SortField, order: "asc" | "desc", after: ListCursor): { clause: string; params: SqlStorageValue[] } {
  if (after.value === null) return { clause: `(${field} IS NULL AND agent_id > ?)`, params: [after.agentId] };
  const beyond = order === "asc" ? ">" : "<";
  return { clause: `(${field} IS NULL OR ${field} ${beyond} ? OR (${field} = ? AND agent_id > ?))`, params: [after.value, after.value, after.agentId] };
}

/** Check-ins before this time mean offline; an unbounded window means never offline. */
function offlineCutoff(context: StatusContext): string {
  return new Date(Math.max(0, context.now - context.offlineAfterMs)).toISOString();
}

function toListed(row: RosterRow, policyId: string): ListedAgent {
  return {
    agent_id: row.agent_id,
    policy_id: policyId,
    status: row.status as AgentStatus,
    active: row.active === 1,
    enrolled_at: row.enrolled_at,
    last_checkin: row.last_checkin,
    last_checkin_status: row.last_checkin_status,
    last_checkin_message: row.last_checkin_message,
    hostname: row.hostname,
    version: row.version,
    tags: JSON.parse(row.tags) as string[],
    policy_revision_idx: row.policy_revision_idx,
    upgrading: row.upgrading === 1,
    unenrolling: row.unenrolling === 1,
    unhealthy_reason: row.unhealthy_reason ? (JSON.parse(row.unhealthy_reason) as string[]) : null,
    type: row.agent_type ?? "PERMANENT",
  };
}
