import { env, runInDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AgentRoster } from "../durable/agent-roster";
import { AGENT_STATUSES, type AgentSummary, type StatusContext } from "../src/agents/status";
import type { ListedAgent } from "../src/admin/agent-query";
import { agentBucket } from "../src/policy/staged-rollout";

/**
 * The roster's counters (docs/scale.md §2) must give exactly what a scan of its rows gives, after
 * any sequence of the changes agent stores send (rows, check-in times, removals, each with a
 * version that may be stale), at any time and latest revision. The scan is the roster's row
 * listing, whose SQL status rule `test/agent-status.test.ts` checks against the JS rule.
 */

const BASE = Date.UTC(2026, 0, 1);
const at = (minutes: number) => new Date(BASE + minutes * 60_000).toISOString();
const IDS = Array.from({ length: 14 }, (_, i) => `counted-agent-${i}`);
const STATUSES = ["online", "error", "FAILED", "degraded", "Degraded", "disconnected", "starting"] as const;

const summaryArb = fc.record({
  agent_id: fc.constantFrom(...IDS),
  active: fc.boolean(),
  enrolled_at: fc.constant(at(0)),
  last_checkin: fc.option(fc.integer({ min: 0, max: 20 }).map(at), { nil: null }),
  last_checkin_status: fc.option(fc.constantFrom(...STATUSES), { nil: null }),
  last_checkin_message: fc.constant(null),
  hostname: fc.constantFrom("web-01", "web-02"),
  version: fc.constantFrom("9.5.0", "9.6.0", null),
  tags: fc.constant([]),
  policy_revision_idx: fc.integer({ min: 1, max: 4 }),
  upgrading: fc.boolean(),
  unenrolling: fc.boolean(),
  unhealthy_reason: fc.constant(null),
  type: fc.constant("PERMANENT"),
}) satisfies fc.Arbitrary<AgentSummary>;

type Change =
  | { kind: "upsert"; summary: AgentSummary; version: number }
  | { kind: "touch"; agentId: string; lastCheckin: string; version: number }
  | { kind: "remove"; agentId: string; version: number }
  | { kind: "fold" };

const version = fc.integer({ min: 1, max: 40 });
const changeArb: fc.Arbitrary<Change> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("upsert" as const), summary: summaryArb, version }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("touch" as const), agentId: fc.constantFrom(...IDS), lastCheckin: fc.integer({ min: 0, max: 20 }).map(at), version }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("remove" as const), agentId: fc.constantFrom(...IDS), version }) },
  { weight: 1, arbitrary: fc.constant({ kind: "fold" as const }) },
);

/**
 * Versions as an agent store's effect sequence gives them: an effect row carries one time per
 * agent, so no two touches, nor a touch and a row, share a version; rows and removals may (a
 * retried delivery). Each change's drawn version keeps its order against the others.
 */
function sequenced(changes: Change[]): Change[] {
  return changes.map((change, i) => {
    if (change.kind === "fold") return change;
    return { ...change, version: change.version * 100 + (change.kind === "touch" ? i : 99) };
  });
}

/**
 * What the rows must say: rows and removals at once by the version rule, check-in times journaled
 * and, at a fold, each agent's newest applied unless its row is as new or newer.
 */
function expectedRows(changes: Change[]): Map<string, { last_checkin: string | null; active: boolean; last_checkin_status: string | null; policy_revision_idx: number }> {
  const rows = new Map<string, { summary: AgentSummary; version: number }>();
  let journal = new Map<string, { lastCheckin: string; version: number }>();
  const fold = () => {
    for (const [agentId, touch] of journal) {
      const row = rows.get(agentId);
      if (row && row.version < touch.version) rows.set(agentId, { summary: { ...row.summary, last_checkin: touch.lastCheckin }, version: touch.version });
    }
    journal = new Map();
  };
  for (const change of changes) {
    if (change.kind === "fold") fold();
    else if (change.kind === "upsert") {
      const row = rows.get(change.summary.agent_id);
      if (!row || change.version >= row.version) rows.set(change.summary.agent_id, { summary: change.summary, version: change.version });
    } else if (change.kind === "remove") {
      const row = rows.get(change.agentId);
      if (row && row.version <= change.version) rows.delete(change.agentId);
    } else if ((journal.get(change.agentId)?.version ?? -1) < change.version) {
      journal.set(change.agentId, { lastCheckin: change.lastCheckin, version: change.version });
    }
  }
  fold();
  return new Map(
    [...rows].map(([agentId, { summary }]) => [
      agentId,
      { last_checkin: summary.last_checkin, active: summary.active, last_checkin_status: summary.last_checkin_status, policy_revision_idx: summary.policy_revision_idx },
    ]),
  );
}

/** Stage thresholds: anywhere, on 1% slice edges, and right at and after the agents' own buckets. */
const thresholdArb = fc.oneof(
  fc.integer({ min: 0, max: 10_000 }),
  fc.integer({ min: 0, max: 100 }).map((percent) => percent * 100),
  fc.constantFrom(...IDS.flatMap((id) => [agentBucket(id), agentBucket(id) + 1])),
);

const readArb = fc.record({
  now: fc.integer({ min: 0, max: 30 }).map((minutes) => BASE + minutes * 60_000),
  latestRevision: fc.integer({ min: 0, max: 5 }),
  threshold: thresholdArb,
  target: fc.integer({ min: 1, max: 5 }),
  since: fc.integer({ min: 0, max: 21 }).map(at),
});

const TROUBLED = new Set(["error", "failed", "degraded"]);

function scanned(roster: AgentRoster, context: StatusContext): ListedAgent[] {
  return roster.list("counted", { includeInactive: true, sortField: "agent_id", sortOrder: "asc", limit: 1_000, offset: 0 }, context).items;
}

describe("roster counters", () => {
  it("equal a scan of the rows after random rows, journaled times, folds and removals, stale versions included; the rows are what the version rule gives", async () => {
    const shard = env.ROSTER_SHARDS.get(env.ROSTER_SHARDS.idFromName("counters-property"));
    await runInDurableObject(shard, async (_instance, state: DurableObjectState) => {
      const roster = new AgentRoster(state.storage.sql);
      fc.assert(
        fc.property(fc.array(changeArb, { minLength: 1, maxLength: 60 }), fc.array(readArb, { minLength: 1, maxLength: 4 }), (changes, reads) => {
          state.storage.sql.exec("DELETE FROM roster; DELETE FROM roster_counts; DELETE FROM roster_touches");
          const sequence = sequenced(changes);
          for (const change of sequence) {
            state.storage.transactionSync(() => {
              if (change.kind === "fold") roster.fold();
              else if (change.kind === "upsert") roster.apply({ upserts: [{ summary: change.summary, version: change.version }], removes: [], touches: [] }, BASE);
              else if (change.kind === "touch") roster.apply({ upserts: [], removes: [], touches: [{ agentId: change.agentId, lastCheckin: change.lastCheckin, version: change.version }] }, BASE);
              else roster.apply({ upserts: [], removes: [{ agentId: change.agentId, version: change.version }], touches: [] }, BASE);
            });
          }
          const expected = expectedRows(sequence);
          for (const read of reads) {
            const context: StatusContext = { now: read.now, offlineAfterMs: 10 * 60_000, latestRevision: read.latestRevision };
            const rows = scanned(roster, context);
            expect(new Map(rows.map((row) => [row.agent_id, { last_checkin: row.last_checkin, active: row.active, last_checkin_status: row.last_checkin_status, policy_revision_idx: row.policy_revision_idx }]))).toEqual(expected);
            const byStatus = Object.fromEntries(AGENT_STATUSES.map((status) => [status, rows.filter((row) => row.status === status).length]));
            expect(roster.counts(context)).toEqual({ ...byStatus, total: rows.length });

            const active = rows.filter((row) => row.active);
            const stage = active.filter((row) => agentBucket(row.agent_id) < read.threshold);
            expect(roster.stageStats(read.threshold, read.target, read.since)).toEqual({
              members: stage.length,
              acked: stage.filter((row) => row.policy_revision_idx >= read.target).length,
              failed: stage.filter((row) => TROUBLED.has((row.last_checkin_status ?? "").toLowerCase()) && row.last_checkin !== null && row.last_checkin >= read.since).length,
            });

            expect(roster.activeCount()).toBe(active.length);
            const revisions = [...new Set(active.map((row) => row.policy_revision_idx))].sort((a, b) => b - a);
            expect(roster.revisions()).toEqual(revisions.map((revision) => ({ revision, agents: active.filter((row) => row.policy_revision_idx === revision).length })));
          }
        }),
        { seed: 2020, numRuns: 150 },
      );
    });
  });

  it("are rebuilt from the rows of a roster written before they existed", async () => {
    const shard = env.ROSTER_SHARDS.get(env.ROSTER_SHARDS.idFromName("counters-rebuild"));
    await runInDurableObject(shard, async (_instance, state: DurableObjectState) => {
      const roster = new AgentRoster(state.storage.sql);
      const context: StatusContext = { now: BASE + 15 * 60_000, offlineAfterMs: 10 * 60_000, latestRevision: 2 };
      state.storage.transactionSync(() => {
        IDS.forEach((agent_id, i) =>
          roster.upsert(
            {
              agent_id,
              active: i % 5 !== 0,
              enrolled_at: at(0),
              last_checkin: i % 4 === 0 ? null : at(i),
              last_checkin_status: STATUSES[i % STATUSES.length]!,
              last_checkin_message: null,
              hostname: "web-01",
              version: "9.6.0",
              tags: [],
              policy_revision_idx: 1 + (i % 2),
              upgrading: false,
              unenrolling: i === 3,
              unhealthy_reason: null,
              type: "PERMANENT",
            },
            1,
          ),
        );
      });
      const before = { counts: roster.counts(context), stage: roster.stageStats(5_000, 2, at(3)) };
      // As a roster of an earlier version: rows without buckets or counters, and the one-off pending.
      state.storage.sql.exec("UPDATE roster SET bucket = NULL; DELETE FROM roster_counts; INSERT INTO roster_meta (k, v) VALUES ('rebuild_counts', 1)");
      roster.prepare();
      expect({ counts: roster.counts(context), stage: roster.stageStats(5_000, 2, at(3)) }).toEqual(before);
      expect(before.counts.total).toBe(IDS.length);
    });
  });
});
