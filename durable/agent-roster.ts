import type { AgentStatus, AgentSummary, StatusContext } from "../src/agents/status";
import type { AgentQuery, ListedAgent, SortField } from "../src/admin/agent-query";
import type { RosterChanges } from "../src/agents/effects";
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

/** A row reports trouble for a rollout stage (the partial index and its queries must spell it alike). */
const TROUBLED_SQL = "lower(last_checkin_status) IN ('error', 'failed', 'degraded')";

/** Buckets per counter slice: a stage boundary inside a slice is counted from the rows of that slice only. */
const SLICE = 100;

/** A row's counter class (`roster_counts`' key), each part as SQL over the roster row named `row`. */
const CLASS_PARTS = {
  active: (row: string) => `${row}.active`,
  unenrolling: (row: string) => `${row}.unenrolling`,
  checked_in: (row: string) => `${row}.last_checkin IS NOT NULL`,
  disconnected: (row: string) => `lower(${row}.last_checkin_status) IS 'disconnected'`,
  upgrading: (row: string) => `${row}.upgrading`,
  health: (row: string) =>
    `CASE WHEN lower(${row}.last_checkin_status) IN ('error', 'failed') THEN 'error' WHEN lower(${row}.last_checkin_status) = 'degraded' THEN 'degraded' ELSE 'ok' END`,
  revision: (row: string) => `${row}.policy_revision_idx`,
  slice: (row: string) => `${row}.bucket / ${SLICE}`,
} as const;

const CLASS_KEYS = Object.keys(CLASS_PARTS) as Array<keyof typeof CLASS_PARTS>;
const CLASS_COLUMNS = CLASS_KEYS.join(", ");
const classOf = (row: string) => CLASS_KEYS.map((key) => CLASS_PARTS[key](row)).join(", ");

/** Moves the row named `row` into (+1) or out of (-1) its class; an emptied class goes. */
function countSql(row: "NEW" | "OLD", delta: 1 | -1): string {
  if (delta === 1) {
    // A row without a bucket (written before buckets, until `prepare` gives it one) is counted by prepare's rebuild.
    return `INSERT INTO roster_counts (${CLASS_COLUMNS}, n) SELECT ${classOf(row)}, 1 WHERE ${row}.bucket IS NOT NULL
      ON CONFLICT (${CLASS_COLUMNS}) DO UPDATE SET n = n + 1;`;
  }
  const match = `(${CLASS_COLUMNS}) = (${classOf(row)})`;
  return `UPDATE roster_counts SET n = n - 1 WHERE ${match}; DELETE FROM roster_counts WHERE ${match} AND n = 0;`;
}

/**
 * Schema step: SQLite keeps the counters in every statement that changes a row (triggers), so no
 * write path reads a row's class before changing it or can forget a counter. An update that leaves
 * the class as it was (a heartbeat's time) costs the WHEN comparison only.
 */
export const ROSTER_COUNT_TRIGGERS_SCHEMA = `
  CREATE TRIGGER roster_counted_insert AFTER INSERT ON roster BEGIN ${countSql("NEW", 1)} END;
  CREATE TRIGGER roster_counted_delete AFTER DELETE ON roster BEGIN ${countSql("OLD", -1)} END;
  CREATE TRIGGER roster_counted_update AFTER UPDATE ON roster WHEN (${classOf("OLD")}) IS NOT (${classOf("NEW")})
    BEGIN ${countSql("OLD", -1)} ${countSql("NEW", 1)} END;`;

/**
 * Schema step: the counters (rows per class: every field the status and stage rules read except the
 * check-in time; the rollout bucket in slices of 1%), kept with every row change (the triggers below),
 * so counts read a few hundred counters instead of every row. The troubled rows get an index of
 * their own (a stage's failures are a time range of them). Existing rows are counted once at load.
 */
export const ROSTER_COUNTS_SCHEMA = `
  CREATE TABLE roster_counts (
    active INTEGER NOT NULL,
    unenrolling INTEGER NOT NULL,
    checked_in INTEGER NOT NULL,
    disconnected INTEGER NOT NULL,
    upgrading INTEGER NOT NULL,
    health TEXT NOT NULL,
    revision INTEGER NOT NULL,
    slice INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (active, unenrolling, checked_in, disconnected, upgrading, health, revision, slice)) WITHOUT ROWID;
  CREATE INDEX roster_troubled ON roster (last_checkin) WHERE ${TROUBLED_SQL};
  CREATE TABLE roster_meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
  INSERT INTO roster_meta (k, v) VALUES ('rebuild_counts', 1);`;

/**
 * Schema step: the check-in time loses its index. Every heartbeat moved its row in that index, one
 * of the two rows a heartbeat wrote at the roster, and rows written are most of the bill
 * (docs/cost.md). What read it, the offline count and the console's next offline time, scans the
 * part's rows instead (scripts/bench/roster-scan.mjs: +2 ms and +9 ms at 50,000 rows); sorted
 * listings never used it.
 */
export const ROSTER_UNINDEXED_CHECKIN_SCHEMA = "DROP INDEX IF EXISTS roster_last_checkin;";

/**
 * Schema step: heartbeats' check-in times wait in a journal and reach their roster rows at the next
 * read that needs check-in times, or once the journal's oldest row is TOUCH_FOLD_AFTER_MS old
 * (`fold`). A heartbeat used to write its agent's row, most of the bill at scale (docs/cost.md); now
 * a delivered batch appends to the journal's last row (one row written) and a fold writes each
 * touched agent's row once. `touches` is JSON arrays `[agent id, time, version]` joined by commas.
 */
export const ROSTER_TOUCH_JOURNAL_SCHEMA = "CREATE TABLE roster_touches (id INTEGER PRIMARY KEY, written_at INTEGER NOT NULL, n INTEGER NOT NULL, touches TEXT NOT NULL);";

/**
 * Journaled check-in times reach their rows at least this often, whether or not anything reads
 * them: it bounds the journal (~75 bytes a heartbeat; at 50,000 agents polling every 5 minutes,
 * ~22 MB) and a fold's work, and costs each agent one row written per fold (2 an hour, against
 * 12 heartbeats).
 */
export const TOUCH_FOLD_AFTER_MS = 30 * 60_000;

/**
 * Touches per journal row (~75 KB). A batch appends to the last row while it has room, so a part
 * receiving many small batches (a store's minute of a small policy) writes one row per batch and
 * deletes one per thousand touches; an append rewrites the row, which this bounds.
 */
export const TOUCHES_PER_ROW = 1_000;

/** Every roster schema step in order, for an object that holds nothing but a roster (a roster shard). */
export const ROSTER_SCHEMA_STEPS = [
  ROSTER_SCHEMA,
  ROSTER_BUCKET_SCHEMA,
  ROSTER_VERSION_SCHEMA,
  ROSTER_TYPE_SCHEMA,
  ROSTER_COUNTS_SCHEMA,
  ROSTER_COUNT_TRIGGERS_SCHEMA,
  ROSTER_UNINDEXED_CHECKIN_SCHEMA,
  ROSTER_TOUCH_JOURNAL_SCHEMA,
];

interface CounterClass extends Record<string, SqlStorageValue> {
  active: number;
  unenrolling: number;
  checked_in: number;
  disconnected: number;
  upgrading: number;
  health: "error" | "degraded" | "ok";
  revision: number;
  slice: number;
}

export type StatusCounts = Record<AgentStatus, number> & { total: number };

/** What the console's overview reads of one roster (durable/policy-hub.ts `glance`). */
export interface RosterOverview {
  counts: StatusCounts;
  versions: Array<{ version: string; agents: number }>;
}

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
 * A policy's agents (or, for a large policy, one roster shard's part of them: durable/sharded-roster.ts),
 * kept in SQLite so admins can list, filter, page and count them without touching (or loading) each
 * agent's store. Rows come only from the agents' stores, as effects of the changes that made them
 * (durable/agent-effects.ts), so the roster follows the agents' records within the effects'
 * delivery bound. Every row change updates the counters in the same statement (the count triggers).
 * A heartbeat's time is the exception: it waits in a journal until a read needs it (`fold`).
 */
export class AgentRoster {
  readonly #sql: SqlStorage;
  /** When the journal's oldest row was written (null: empty); read from the table when unknown (undefined). */
  #journalSince: number | null | undefined;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /**
   * One-offs for rosters written by earlier versions, run once the schema is in place: rows written
   * before buckets existed get theirs, and rows written before the counters are counted.
   */
  prepare(): void {
    const unbucketed = this.#sql.exec<{ agent_id: string }>("SELECT agent_id FROM roster WHERE bucket IS NULL").toArray();
    for (const row of unbucketed) this.#sql.exec("UPDATE roster SET bucket = ? WHERE agent_id = ?", agentBucket(row.agent_id), row.agent_id);
    if (this.#sql.exec("SELECT 1 FROM roster_meta WHERE k = 'rebuild_counts'").toArray().length === 0) return;
    this.#sql.exec(`DELETE FROM roster_counts; INSERT INTO roster_counts (${CLASS_COLUMNS}, n) SELECT ${classOf("roster")}, COUNT(*) FROM roster GROUP BY ${classOf("roster")}`);
    this.#sql.exec("DELETE FROM roster_meta WHERE k = 'rebuild_counts'");
  }

  /**
   * An agent store's batch (inside the caller's transaction). Rows and removals are written at once;
   * check-in times go to the journal, folded into their rows by the next read that needs them or
   * once the journal is TOUCH_FOLD_AFTER_MS old.
   */
  apply(changes: RosterChanges, now = Date.now()): void {
    for (const { summary, version } of changes.upserts) this.upsert(summary, version);
    for (const { agentId, version } of changes.removes) this.remove(agentId, version);
    if (changes.touches.length > 0) this.#journal(changes.touches, now);
    if (now - (this.#journalOldest() ?? now) >= TOUCH_FOLD_AFTER_MS) this.fold();
  }

  #journal(touches: RosterChanges["touches"], now: number): void {
    const oldest = this.#journalOldest();
    let rest = touches.map(({ agentId, lastCheckin, version }) => JSON.stringify([agentId, lastCheckin, version]));
    // Appended to the last row when it has room (decided by SQL: memory may know a rolled-back row).
    if (oldest !== null) {
      const appended = this.#sql.exec(
        "UPDATE roster_touches SET touches = touches || ',' || ?, n = n + ? WHERE id = (SELECT MAX(id) FROM roster_touches) AND n + ? <= ?",
        rest.join(","),
        rest.length,
        rest.length,
        TOUCHES_PER_ROW,
      );
      if (appended.rowsWritten > 0) rest = [];
    }
    for (let i = 0; i < rest.length; i += TOUCHES_PER_ROW) {
      const row = rest.slice(i, i + TOUCHES_PER_ROW);
      this.#sql.exec("INSERT INTO roster_touches (written_at, n, touches) VALUES (?, ?, ?)", now, row.length, row.join(","));
    }
    this.#journalSince = oldest ?? now;
  }

  #journalOldest(): number | null {
    if (this.#journalSince === undefined) {
      this.#journalSince = this.#sql.exec<{ since: number | null }>("SELECT MIN(written_at) AS since FROM roster_touches").one().since;
    }
    return this.#journalSince;
  }

  /**
   * The journal's check-in times reach their rows: each agent's newest (by version), unless its row
   * is newer already, the version rule a touch applied at once followed. Rows and removals that
   * arrived meanwhile were written first, which a version decides the same way unless deliveries
   * came out of order. Atomic: one synchronous run (the runtime commits it as one transaction).
   */
  fold(): void {
    if (this.#journalOldest() === null) return;
    this.#sql.exec(
      `UPDATE roster SET last_checkin = touched.checkin, summary_version = touched.version
       FROM (SELECT value ->> 0 AS agent_id, value ->> 1 AS checkin, MAX(value ->> 2) AS version
             FROM roster_touches, json_each('[' || roster_touches.touches || ']') GROUP BY agent_id) AS touched
       WHERE roster.agent_id = touched.agent_id AND roster.summary_version < touched.version`,
    );
    this.#sql.exec("DELETE FROM roster_touches");
    // Unknown, not empty: the caller's transaction may yet roll the fold back.
    this.#journalSince = undefined;
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
   * how many report error or degraded since the stage started. Members and acks come from the
   * counters of the whole 1% slices below the threshold plus the rows of the slice it cuts (at
   * most 1% of the rows); failures are a time range of the troubled rows' own index.
   */
  stageStats(threshold: number, target: number, since: string): StageStats {
    this.fold();
    const whole = Math.floor(threshold / SLICE);
    const counted = this.#sql
      .exec<{ members: number; acked: number }>(
        "SELECT coalesce(SUM(n), 0) AS members, coalesce(SUM(CASE WHEN revision >= ? THEN n END), 0) AS acked FROM roster_counts WHERE active = 1 AND slice < ?",
        target,
        whole,
      )
      .one();
    const cut = this.#sql
      .exec<{ members: number; acked: number }>(
        "SELECT COUNT(*) AS members, coalesce(SUM(policy_revision_idx >= ?), 0) AS acked FROM roster WHERE bucket >= ? AND bucket < ? AND active = 1",
        target,
        whole * SLICE,
        threshold,
      )
      .one();
    const failed = this.#sql
      .exec<{ n: number }>(`SELECT COUNT(*) AS n FROM roster WHERE ${TROUBLED_SQL} AND last_checkin >= ? AND active = 1 AND bucket < ?`, since, threshold)
      .one().n;
    return { members: counted.members + cut.members, acked: counted.acked + cut.acked, failed };
  }

  /** Removes an agent's row unless it is newer than the removal. */
  remove(agentId: string, version: number): void {
    this.#sql.exec("DELETE FROM roster WHERE agent_id = ? AND summary_version <= ?", agentId, version);
  }

  /**
   * The inactive rows go, and with them their counters (the policy is deleted once no active agent
   * is left). A row that turned active meanwhile stays, so it is still listed.
   */
  dropInactive(): void {
    this.#sql.exec("DELETE FROM roster WHERE active = 0");
  }

  list(policyId: string, query: AgentQuery, context: StatusContext): { items: ListedAgent[]; total: number } {
    this.fold();
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

  /**
   * Agents per status, from the counters: every status but the time split is a counter class; the
   * agents that would be online, updating, error or degraded but have not checked in since the
   * offline cutoff move to offline, counted by a scan of the rows (the check-in time is not indexed).
   */
  counts(context: StatusContext): StatusCounts {
    this.fold();
    const latest = context.latestRevision;
    const counts: StatusCounts = { online: 0, offline: 0, degraded: 0, error: 0, updating: 0, enrolling: 0, unenrolling: 0, unenrolled: 0, total: 0 };
    const classes = this.#sql
      .exec<CounterClass & { current: number; n: number }>(
        `SELECT active, unenrolling, checked_in, disconnected, upgrading, health, revision >= ? AS current, SUM(n) AS n
         FROM roster_counts GROUP BY active, unenrolling, checked_in, disconnected, upgrading, health, current`,
        latest,
      )
      .toArray();
    for (const row of classes) {
      counts[classStatus(row)] += row.n;
      counts.total += row.n;
    }
    const stale = this.#sql
      .exec<{ upgrading: number; health: CounterClass["health"]; current: number; n: number }>(
        `SELECT upgrading,
           CASE WHEN lower(last_checkin_status) IN ('error', 'failed') THEN 'error' WHEN lower(last_checkin_status) = 'degraded' THEN 'degraded' ELSE 'ok' END AS health,
           policy_revision_idx >= ? AS current, COUNT(*) AS n
         FROM roster WHERE last_checkin < ? AND active = 1 AND unenrolling = 0 AND lower(last_checkin_status) IS NOT 'disconnected'
         GROUP BY upgrading, health, current`,
        latest,
        offlineCutoff(context),
      )
      .toArray();
    for (const row of stale) {
      counts[classStatus({ active: 1, unenrolling: 0, checked_in: 1, disconnected: 0, ...row })] -= row.n;
      counts.offline += row.n;
    }
    return counts;
  }

  /** What the console's overview needs of this roster: counts and versions (check-ins per minute are the hub's). */
  overview(context: StatusContext): RosterOverview {
    return { counts: this.counts(context), versions: this.versions() };
  }

  activeCount(): number {
    return this.#sql.exec<{ n: number }>("SELECT coalesce(SUM(n), 0) AS n FROM roster_counts WHERE active = 1").one().n;
  }

  /** Active agents per reported agent version, most agents first (the console's "by version"). */
  versions(): Array<{ version: string; agents: number }> {
    return this.#sql
      .exec<{ version: string; agents: number }>(
        "SELECT coalesce(version, 'unknown') AS version, COUNT(*) AS agents FROM roster WHERE active = 1 GROUP BY version ORDER BY agents DESC, version",
      )
      .toArray();
  }

  /**
   * The oldest check-in among agents that count as checked in at `cutoff` (ISO; older is offline):
   * the next to go offline if it stays silent. A scan of the rows: only a watched hub asks, at most
   * once per console push.
   */
  oldestLiveCheckin(cutoff: string): string | null {
    this.fold();
    // MIN, not ORDER BY … LIMIT 1: without an index the sort reads every row twice.
    return this.#sql
      .exec<{ oldest: string | null }>(
        `SELECT MIN(last_checkin) AS oldest FROM roster WHERE last_checkin >= ? AND active = 1 AND unenrolling = 0
           AND coalesce(lower(last_checkin_status), '') <> 'disconnected'`,
        cutoff,
      )
      .one().oldest;
  }

  /** Active agents per acked revision, newest first (from the counters). */
  revisions(): Array<{ revision: number; agents: number }> {
    return this.#sql
      .exec<{ revision: number; agents: number }>("SELECT revision, SUM(n) AS agents FROM roster_counts WHERE active = 1 GROUP BY revision ORDER BY revision DESC")
      .toArray();
  }

  /** Active agents behind `revision` that report trouble: the likely failures of a rollout. */
  failing(revision: number, limit: number): ListedAgent[] {
    this.fold();
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

/** A counter class's status (the rule of `src/agents/status.ts`), with "current" meaning at or past the latest revision. */
function classStatus(row: Pick<CounterClass, "active" | "unenrolling" | "checked_in" | "disconnected" | "upgrading" | "health"> & { current: number }): AgentStatus {
  if (row.active === 0) return "unenrolled";
  if (row.unenrolling === 1) return "unenrolling";
  if (row.checked_in === 0) return "enrolling";
  if (row.disconnected === 1) return "offline";
  if (row.upgrading === 1 || row.current === 0) return "updating";
  if (row.health === "error") return "error";
  if (row.health === "degraded") return "degraded";
  return "online";
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
