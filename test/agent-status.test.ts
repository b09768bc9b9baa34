import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { AgentRoster } from "../durable/agent-roster";
import { AGENT_STATUSES, agentStatus, type AgentStatus, type AgentSummary, type StatusContext } from "../src/agents/status";

/**
 * The status rule exists twice: `agentStatus` for one agent, and its SQL twin in the roster for
 * listing, filtering and counting. Over every combination of the fields the rule reads, with check-in
 * times on both sides of the offline cutoff and reported statuses in several spellings, rows stored
 * in a real roster get from SQLite the status the JS rule gives them.
 */

/** A fixed instant: the rule takes "now" as a parameter, so no test result depends on the clock. */
const NOW = Date.parse("2026-06-15T12:00:00.000Z");
const REPORTED = [null, "", "online", "HEALTHY", "error", "ERROR", "failed", "Failed", "degraded", "DEGRADED", "starting", "configuring", "stopped", "disconnected", "DISCONNECTED"];

function grid(context: StatusContext): AgentSummary[] {
  const cutoff = NOW - context.offlineAfterMs;
  const checkins = [null, cutoff - 1, cutoff, cutoff + 1, NOW].map((ms) => (ms === null || !Number.isFinite(ms) ? null : new Date(Math.max(0, ms)).toISOString()));
  const rows: AgentSummary[] = [];
  for (const active of [true, false])
    for (const unenrolling of [false, true])
      for (const [c, last_checkin] of checkins.entries())
        for (const upgrading of [false, true])
          for (const policy_revision_idx of [context.latestRevision - 1, context.latestRevision, context.latestRevision + 1])
            for (const [s, last_checkin_status] of REPORTED.entries()) {
              rows.push({
                agent_id: `agent-${rows.length}-${+active}${+unenrolling}${c}${+upgrading}${policy_revision_idx}-${s}`,
                active,
                enrolled_at: "2026-01-01T00:00:00.000Z",
                last_checkin,
                last_checkin_status,
                last_checkin_message: null,
                hostname: null,
                version: null,
                tags: [],
                policy_revision_idx,
                upgrading,
                unenrolling,
                unhealthy_reason: null,
                type: "PERMANENT",
              });
            }
  return rows;
}

const CONTEXTS: Array<[string, StatusContext]> = [
  ["a 10-minute offline window", { now: NOW, offlineAfterMs: 10 * 60_000, latestRevision: 3 }],
  ["an offline window longer than the epoch", { now: NOW, offlineAfterMs: NOW + 60_000, latestRevision: 1 }],
  ["an unbounded offline window, no revision yet", { now: NOW, offlineAfterMs: Number.POSITIVE_INFINITY, latestRevision: 0 }],
];

describe("agent status: the SQL rule equals the JS rule", () => {
  for (const [name, context] of CONTEXTS) {
    it(`gives every combination of the rule's fields the same status, with ${name}`, async () => {
      const rows = grid(context);
      const expected = new Map(rows.map((row) => [row.agent_id, agentStatus(row, context)]));
      // Every status occurs (offline, with no cutoff after the epoch, from a collector's reported
      // `disconnected`), so no branch goes unchecked.
      expect(new Set(expected.values())).toEqual(new Set(AGENT_STATUSES));

      const hub = env.POLICY_HUBS.get(env.POLICY_HUBS.idFromName(`status-grid-${name}`));
      const fromSql = await runInDurableObject(hub, async (_instance, state: DurableObjectState) => {
        const roster = new AgentRoster(state.storage.sql);
        state.storage.transactionSync(() => rows.forEach((row) => roster.upsert(row, 1)));
        const query = { includeInactive: true, sortField: "agent_id", sortOrder: "asc", limit: rows.length + 1, offset: 0 } as const;
        const listed = roster.list("status-grid", query, context);
        const filtered = Object.fromEntries(
          AGENT_STATUSES.map((status) => [status, roster.list("status-grid", { ...query, status }, context).items.map((agent) => agent.agent_id).sort()]),
        );
        return { listed, filtered, counts: roster.counts(context) };
      });

      expect(fromSql.listed.total).toBe(rows.length);
      const mismatches = fromSql.listed.items.filter((agent) => agent.status !== expected.get(agent.agent_id));
      expect(mismatches.map((agent) => ({ ...agent, js: expected.get(agent.agent_id) }))).toEqual([]);

      // Filtering and counting by status use the same SQL; both agree with the JS rule too.
      const byStatus = (status: AgentStatus) => rows.filter((row) => expected.get(row.agent_id) === status).map((row) => row.agent_id).sort();
      for (const status of AGENT_STATUSES) {
        expect(fromSql.filtered[status], status).toEqual(byStatus(status));
        expect(fromSql.counts[status], status).toBe(byStatus(status).length);
      }
      expect(fromSql.counts.total).toBe(rows.length);
    });
  }
});
