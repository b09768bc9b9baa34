import path from "node:path";
import { describe, expect, it } from "vitest";

/**
 * The bill's split of a heartbeat's counts (scripts/bench/cost-model.mjs): the agent's own rows and
 * calls per heartbeat, everything a store's flush window does once per store, so the bill batches
 * it by production's density (docs/cost.md). Counts are shaped as scripts/bench/counting-entry.mjs
 * records them.
 */

interface PerEvent {
  journaled: boolean;
  do_requests: number;
  rows_written: number;
  per_window: { stores: number; requests: number; rows_written: number; store: { windows: number; requests: number; rows_written: number } | null } | null;
}
type CostModel = {
  perEvent: (counts: unknown, label: string, options?: { windowed?: boolean }) => PerEvent | null;
  monthlyBill: (fleet: { agents: number; channel: string; heartbeat: PerEvent; change: null; cpuMsPerHeartbeat: number }) => {
    usage: { rows_written: number; do_requests: number; gb_s: number };
  };
  ACTIVE_S_PER_EVENT: number;
  foldRowsPerHeartbeat: (perHour: number) => number;
  AGENT_HOUR: { poll_checkins: number; socket_checkins: number };
  policyWindowsPerHeartbeat: (agents: number, perHour: number, policies?: number, spanS?: number) => number;
};

const load = async () => (await import(path.resolve(__dirname, "../../scripts/bench/cost-model.mjs"))) as CostModel;

const zero = { ws_messages: 0, rows_read: 0, starts: 0, alarm: 0, set_alarms: 0 };

/** 100 heartbeats over two stores, each store flushing once: its alarm runs and their setAlarm rows, two effect rows' worth of rows, a call to the hub and two to roster parts. */
function heartbeats(byTable: boolean, windowsCounted?: number) {
  const tables = <T>(t: T) => (byTable ? { rows_written_by_table: t } : {});
  return {
    poll_heartbeat: {
      events: 100,
      worker_requests: 100,
      per_object: { "AgentStore/a": 60, "AgentStore/b": 40 },
      classes: {
        AgentStore: { ...zero, requests: 104, alarm: 4, set_alarms: 4, rows_written: 120, ...tables({ agents: 100, effects: 16 }) },
        HubShard: { ...zero, requests: 100, rows_written: 0, ...tables({}) },
        PolicyHub: {
          ...zero,
          requests: 2,
          rows_written: 30,
          ...tables({ roster: 22, checkin_batches: 6, checkin_minutes: 2 }),
          ...(windowsCounted ? { methods: { countCheckins: windowsCounted } } : {}),
        },
        RosterShard: { ...zero, requests: 4, rows_written: 78, ...tables({ roster: 78 }) },
      },
    },
  };
}

describe("the cost model's heartbeat", () => {
  it("is the agent's row, its roster row and its two calls; the rest is per policy in a store's window, or per store window", async () => {
    const { perEvent } = await load();
    expect(perEvent(heartbeats(true), "poll_heartbeat")).toMatchObject({
      do_requests: expect.closeTo(2, 9),
      rows_written: expect.closeTo(2, 9),
      // The six calls to the hub and the roster's parts and the 24 effect and batch rows per policy
      // window; the four alarm runs and their setAlarm rows per store window.
      per_window: { stores: 2, windows: 2, requests: 3, rows_written: 12, store: { windows: 4, requests: 1, rows_written: 1 } },
    });
  });

  it("divides by the windows the stores' check-in counts name when the heartbeats spanned more than one", async () => {
    const { perEvent } = await load();
    expect(perEvent(heartbeats(true, 4), "poll_heartbeat")).toMatchObject({
      rows_written: expect.closeTo(2, 9),
      per_window: { stores: 2, windows: 4, requests: 1.5, rows_written: 6, store: { windows: 4, requests: 1, rows_written: 1 } },
    });
  });

  it("keeps only setAlarm rows per window for a run recorded before rows were counted per table", async () => {
    const { perEvent } = await load();
    expect(perEvent(heartbeats(false), "poll_heartbeat")).toMatchObject({
      do_requests: 2,
      rows_written: expect.closeTo(2.24, 9),
      per_window: { stores: 2, windows: 2, requests: 5, rows_written: 2, store: null },
    });
  });

  it("counts a policy change whole per agent", async () => {
    const { perEvent } = await load();
    expect(perEvent(heartbeats(true), "poll_heartbeat", { windowed: false })).toMatchObject({
      do_requests: expect.closeTo(2.1, 9),
      rows_written: expect.closeTo(2.28, 9),
      per_window: null,
    });
  });

  it("adds the roster journal's folds only to a run whose heartbeats' times were journaled: two rows an agent-hour, and a journal row's delete per 1,000 times", async () => {
    const { perEvent, monthlyBill, foldRowsPerHeartbeat, AGENT_HOUR } = await load();
    const journaled = heartbeats(true);
    const hub = journaled.poll_heartbeat.classes.PolicyHub as { rows_written: number; rows_written_by_table: Record<string, number> };
    hub.rows_written_by_table.roster_touches = 2;
    hub.rows_written += 2;
    const withJournal = perEvent(journaled, "poll_heartbeat")!;
    const without = perEvent(heartbeats(true), "poll_heartbeat")!;
    expect([withJournal.journaled, without.journaled]).toEqual([true, false]);
    // Such a run writes one outbox row per flush for all its policies: its 16 effect rows go per
    // store window (with the 4 setAlarm rows), not per policy window as in an older run (above).
    expect(withJournal.per_window).toMatchObject({ rows_written: 5, store: { windows: 4, rows_written: 5 } });
    expect(foldRowsPerHeartbeat(12)).toBeCloseTo(2 / 12 + 1 / 1000, 12);
    const rows = (heartbeat: PerEvent) => monthlyBill({ agents: 1000, channel: "long_poll", heartbeat, change: null, cpuMsPerHeartbeat: 0 }).usage.rows_written;
    // 1,000 agents for 730 hours: two folds an hour each, and a delete per 1,000 of their check-ins.
    expect(rows(withJournal) - rows({ ...withJournal, journaled: false })).toBeCloseTo(1000 * 730 * (2 + AGENT_HOUR.poll_checkins / 1000), 3);
  });

  it("bills duration all month for the shards holding parked polls, and for every other object per event it handles, at most all month", async () => {
    const { perEvent, monthlyBill, ACTIVE_S_PER_EVENT, AGENT_HOUR } = await load();
    const heartbeat = perEvent(heartbeats(true), "poll_heartbeat")!;
    const month = 730 * 3600;
    const bill = (channel: string, h: PerEvent) => monthlyBill({ agents: 10_000, channel, heartbeat: h, change: null, cpuMsPerHeartbeat: 0 }).usage;
    // Long poll: two shards of 5,000 parked polls; every call but the parks (one a heartbeat) is an event.
    const poll = bill("long_poll", heartbeat);
    const parks = 10_000 * 730 * AGENT_HOUR.poll_checkins;
    expect(poll.gb_s).toBeCloseTo((2 * month + (poll.do_requests - parks) * ACTIVE_S_PER_EVENT) * 0.128, 0);
    // Sockets: no shard is held active; the shard's calls are events like the rest.
    const socket = bill("websocket", heartbeat);
    expect(socket.gb_s).toBeCloseTo(socket.do_requests * ACTIVE_S_PER_EVENT * 0.128, 0);
    // No object is billed more than the month: 64 stores, the hub and its 19 roster parts, two socket shards.
    expect(bill("websocket", { ...heartbeat, do_requests: 1e6 }).gb_s).toBeCloseTo(86 * month * 0.128, 0);
  });

  it("charges a heartbeat 1/h of a policy window with one policy, and a whole one when every agent has its own", async () => {
    const { policyWindowsPerHeartbeat } = await load();
    // 64,000 agents at 36 check-ins an hour: 1,000 per store, 100 per store and 10 s span.
    expect(policyWindowsPerHeartbeat(64_000, 36, 1, 10)).toBeCloseTo(0.01, 9);
    expect(policyWindowsPerHeartbeat(64_000, 36, 64_000, 10)).toBeCloseTo(1, 2);
    // 1,000 policies: 1,000 × (1 − 0.999^100) = 95.2 of the span's 100 heartbeats bring a policy of their own.
    expect(policyWindowsPerHeartbeat(64_000, 36, 1000, 10)).toBeCloseTo(0.952, 3);
    // Sparser than one heartbeat a span: each is its window.
    expect(policyWindowsPerHeartbeat(64, 36, 1, 10)).toBe(1);
  });

  it("joins a minute of a store's flushes into one call per policy (the default send span)", async () => {
    const { policyWindowsPerHeartbeat } = await load();
    // 600 heartbeats a store sends in a minute: 1,000 × (1 − 0.999^600) = 451 policies, 0.752 of one per heartbeat.
    expect(policyWindowsPerHeartbeat(64_000, 36, 1000)).toBeCloseTo(0.752, 3);
    expect(policyWindowsPerHeartbeat(64_000, 36)).toBeCloseTo(1 / 600, 9);
    // Fleet B at 1M, 12.6 polls an hour: 0.29 of a call per heartbeat, not the 10 s window's 0.77.
    expect(policyWindowsPerHeartbeat(1_000_000, 12.6, 1000)).toBeCloseTo(0.293, 3);
    expect(policyWindowsPerHeartbeat(1_000_000, 12.6, 1000, 10)).toBeCloseTo(0.77, 2);
  });
});
