import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { AgentEffects } from "../durable/agent-effects";
import { AgentRoster, TOUCH_FOLD_AFTER_MS, TOUCHES_PER_ROW } from "../durable/agent-roster";
import type { AgentStore } from "../durable/agent-store";
import { agentStoreName } from "../src/agents/agent-stores";
import { minuteOf } from "../src/agents/checkin-rate";
import type { Env } from "../src/config";
import { adminRequest, agentSummary, checkinsCounted, enrolledAgent, json, putPolicy } from "./helpers";

/** `n` client-chosen agent ids that hash to the same store object. */
function sameStore(prefix: string, n: number): string[] {
  const byStore = new Map<string, string[]>();
  for (let i = 0; ; i++) {
    const id = `${prefix}-${i}`;
    const ids = byStore.get(agentStoreName(id)) ?? [];
    ids.push(id);
    byStore.set(agentStoreName(id), ids);
    if (ids.length === n) return ids;
  }
}

// One flush's times sharing one effect row: test/agent-store.test.ts. These are what such rows meet
// on their way to the hub.
describe("roster times on their way to the hub", () => {
  it("delivers a backlog of many flushes' times in order, in calls the hub can take", async () => {
    const policyId = "heartbeat-backlog-p";
    const [id] = sameStore("heartbeat-backlog", 1);
    const agent = await enrolledAgent(policyId, { id: id! });
    const stub = env.AGENT_STORES.get(env.AGENT_STORES.idFromName(agentStoreName(agent.id)));
    await runInDurableObject(stub, async (instance: unknown, state: DurableObjectState) => {
      const store = instance as AgentStore;
      await store.alarm();
      // Six flushes held back (a hub outage), 1,000 times each with the agent's among them: 6,000
      // changes, more than one call carries. The newest row's time is the one that must stay.
      const times: string[] = [];
      for (let flush = 0; flush < 6; flush++) {
        // Later than any real check-in of this run, one minute apart, so only the order decides.
        const at = new Date(Date.now() + 3_600_000 + flush * 60_000).toISOString();
        times.push(at);
        const entries = Array.from({ length: 999 }, (_, i) => [`absent-${flush}-${i}`, at]);
        entries.splice(flush * 100, 0, [agent.id, at]);
        state.storage.sql.exec("INSERT INTO effects (kind, target, agent_id, body) VALUES ('hub', ?, '', ?)", policyId, JSON.stringify({ type: "touches", times: entries }));
      }
      await store.alarm();
      expect(state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM effects").one().n).toBe(0);
      const listed = await json<{ items: Array<{ id: string; last_checkin: string }> }>(await adminRequest("GET", `/api/fleet/agents?policy_id=${policyId}`));
      expect(listed.items.map((a) => [a.id, a.last_checkin])).toEqual([[agent.id, times[5]]]);
    });
  });

  it("still applies a one-agent time row written before shared rows existed (in an outbox at the deploy), never as a removal", async () => {
    const policyId = "heartbeat-legacy-p";
    const [id] = sameStore("heartbeat-legacy", 1);
    const agent = await enrolledAgent(policyId, { id: id! });
    const stub = env.AGENT_STORES.get(env.AGENT_STORES.idFromName(agentStoreName(agent.id)));
    await runInDurableObject(stub, async (instance: unknown, state: DurableObjectState) => {
      const store = instance as AgentStore;
      await store.alarm();
      const at = new Date(Date.now() + 3_600_000).toISOString();
      state.storage.sql.exec("INSERT INTO effects (kind, target, agent_id, body, coalesce_key) VALUES ('hub', ?, ?, ?, ?)", policyId, agent.id, JSON.stringify({ type: "touch", lastCheckin: at }), `touch:${policyId}:${agent.id}`);
      await store.alarm();
      expect(state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM effects").one().n).toBe(0);
      const listed = await json<{ items: Array<{ id: string; last_checkin: string }> }>(await adminRequest("GET", `/api/fleet/agents?policy_id=${policyId}`));
      expect(listed.items.map((a) => [a.id, a.last_checkin])).toEqual([[agent.id, at]]);
    });
  });
});

/** The roster's SQL, counting the rows each statement writes (what Cloudflare bills: docs/cost.md). */
function countingSql(sql: SqlStorage, written: number[]): SqlStorage {
  return new Proxy(sql, {
    get(target, prop) {
      if (prop !== "exec") return Reflect.get(target, prop, target) as unknown;
      return (query: string, ...bindings: SqlStorageValue[]) => {
        const cursor = target.exec(query, ...bindings);
        written.push(cursor.rowsWritten);
        return cursor;
      };
    },
  });
}

describe("a heartbeat's time at the roster", () => {
  for (const [where, stub] of [
    ["a policy hub's own part", () => env.POLICY_HUBS.get(env.POLICY_HUBS.idFromName("heartbeat-rows-hub"))],
    ["a roster shard", () => env.ROSTER_SHARDS.get(env.ROSTER_SHARDS.idFromName("heartbeat-rows-part"))],
  ] as const) {
    it(`waits in ${where}'s journal (one row a batch) and reaches each agent's row once, at the read that needs it, even after a restart`, async () => {
      await runInDurableObject(stub(), async (_instance, state: DurableObjectState) => {
        const written: number[] = [];
        const total = () => written.splice(0).reduce((a, b) => a + b, 0);
        const roster = new AgentRoster(countingSql(state.storage.sql, written));
        // The check-in time has no index, so folding a time moves no index entry.
        const indexes = state.storage.sql
          .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'roster' AND name NOT LIKE 'sqlite_%' ORDER BY name")
          .toArray()
          .map((row) => row.name);
        expect(indexes).toEqual(["roster_bucket", "roster_enrolled_at", "roster_hostname", "roster_revision", "roster_troubled"]);

        const start = Date.UTC(2026, 11, 1, 12);
        const iso = (ms: number) => new Date(start + ms).toISOString();
        const agents = ["beating", "beating-too"];
        for (const id of agents) roster.upsert(agentSummary(id, { last_checkin: iso(0) }), 1);
        const beat = (ms: number, version: number) => ({ upserts: [], removes: [], touches: agents.map((agentId) => ({ agentId, lastCheckin: iso(ms), version })) });
        const journal = () => state.storage.sql.exec<{ n: number }>("SELECT n FROM roster_touches ORDER BY id").toArray().map((row) => row.n);
        const stored = () => state.storage.sql.exec<{ last_checkin: string }>("SELECT last_checkin FROM roster ORDER BY agent_id").toArray().map((row) => row.last_checkin);
        total();

        state.storage.transactionSync(() => roster.apply(beat(290_000, 2), start + 300_000));
        state.storage.transactionSync(() => roster.apply(beat(580_000, 3), start + 590_000));
        expect(total()).toBe(2);
        expect(stored()).toEqual([iso(0), iso(0)]);

        expect(journal()).toEqual([4]);

        // A new instance over the same tables (the object restarted) finds the journal. The read folds
        // it: each agent's newest time, one row each, and the journal's row goes.
        const restarted = new AgentRoster(countingSql(state.storage.sql, written));
        const context = { now: start + 1_100_000, offlineAfterMs: 600_000, latestRevision: 1 };
        expect(restarted.counts(context)).toMatchObject({ online: 2, offline: 0, total: 2 });
        expect(total()).toBe(3);
        expect(journal()).toEqual([]);
        expect(stored()).toEqual([iso(580_000), iso(580_000)]);
        expect(restarted.counts({ ...context, now: start + 1_200_000 })).toMatchObject({ online: 0, offline: 2, total: 2 });
        expect(total()).toBe(0);
        expect(restarted.oldestLiveCheckin(iso(500_000))).toBe(iso(580_000));
        expect(restarted.oldestLiveCheckin(iso(590_000))).toBeNull();

        // Unread, the journal still reaches the rows once its oldest row is TOUCH_FOLD_AFTER_MS old.
        state.storage.transactionSync(() => restarted.apply(beat(870_000, 4), start + 880_000));
        state.storage.transactionSync(() => restarted.apply(beat(1_160_000, 5), start + 880_000 + TOUCH_FOLD_AFTER_MS - 1));
        expect(stored()).toEqual([iso(580_000), iso(580_000)]);
        state.storage.transactionSync(() => restarted.apply({ upserts: [], removes: [], touches: [] }, start + 880_000 + TOUCH_FOLD_AFTER_MS));
        expect(stored()).toEqual([iso(1_160_000), iso(1_160_000)]);
        expect(journal()).toEqual([]);

        // A batch fills rows of TOUCHES_PER_ROW; the next appends to the last while it has room.
        const many = (n: number, version: number) => ({
          upserts: [],
          removes: [],
          touches: Array.from({ length: n }, (_, i) => ({ agentId: `elsewhere-${i}`, lastCheckin: iso(1_200_000), version })),
        });
        state.storage.transactionSync(() => restarted.apply(many(2 * TOUCHES_PER_ROW + 501, 6), start + 1_210_000));
        expect(journal()).toEqual([TOUCHES_PER_ROW, TOUCHES_PER_ROW, 501]);
        state.storage.transactionSync(() => restarted.apply(beat(1_200_000, 6), start + 1_210_000));
        expect(journal()).toEqual([TOUCHES_PER_ROW, TOUCHES_PER_ROW, 503]);
        state.storage.transactionSync(() => restarted.apply(many(TOUCHES_PER_ROW - 502, 7), start + 1_220_000));
        expect(journal()).toEqual([TOUCHES_PER_ROW, TOUCHES_PER_ROW, 503, TOUCHES_PER_ROW - 502]);
        restarted.fold();
        expect(stored()).toEqual([iso(1_200_000), iso(1_200_000)]);
        expect(journal()).toEqual([]);
      });
    });
  }
});

describe("every roster read that shows check-in times", () => {
  const start = Date.UTC(2026, 11, 1, 12);
  const iso = (ms: number) => new Date(start + ms).toISOString();
  const reads: Array<[string, (roster: AgentRoster) => unknown, unknown]> = [
    ["counts", (r) => r.counts({ now: start + 700_000, offlineAfterMs: 600_000, latestRevision: 1 }).offline, 0],
    ["stage counts", (r) => r.stageStats(10_000, 1, iso(200_000)).failed, 1],
    ["the listing", (r) => r.list("p", { includeInactive: true, sortField: "agent_id", sortOrder: "asc", limit: 10, offset: 0 }, { now: start, offlineAfterMs: 600_000, latestRevision: 1 }).items[0]?.last_checkin, iso(290_000)],
    ["the next offline time", (r) => r.oldestLiveCheckin(iso(1)), iso(290_000)],
    ["a rollout's failing agents", (r) => r.failing(2, 10)[0]?.last_checkin, iso(290_000)],
  ];
  for (const [name, read, expected] of reads) {
    it(`folds the journal first: ${name}`, async () => {
      await runInDurableObject(env.ROSTER_SHARDS.get(env.ROSTER_SHARDS.idFromName(`fold-before-${name}`)), async (_instance, state: DurableObjectState) => {
        const roster = new AgentRoster(state.storage.sql);
        state.storage.transactionSync(() => {
          roster.upsert(agentSummary("troubled", { last_checkin: iso(0), last_checkin_status: "error", policy_revision_idx: 1 }), 1);
          roster.apply({ upserts: [], removes: [], touches: [{ agentId: "troubled", lastCheckin: iso(290_000), version: 2 }] }, start + 300_000);
        });
        expect(read(roster)).toEqual(expected);
      });
    });
  }
});

describe("the agent store's outbox rows", () => {
  const outboxOf = (name: string) => env.AGENT_STORES.get(env.AGENT_STORES.idFromName(name));

  it("wait for the next minute's send and reach the hub together; a writer's change goes meanwhile from memory, a restart sends them within a second", async () => {
    const policyId = "flush-hold";
    await putPolicy(policyId);
    // The agent's roster row comes from the outbox under test, so its version is below its times'
    // (a row from the agent's real store could carry a higher sequence than this outbox's rows, and
    // the version rule would then rightly ignore them).
    const agent = { id: "flush-hold-agent" };
    const before = await checkinsCounted(policyId);
    const listed = async () => (await json<{ items: Array<{ id: string; last_checkin: string }> }>(await adminRequest("GET", `/api/fleet/agents?policy_id=${policyId}`))).items;
    const lastCheckin = async () => (await listed()).find((a) => a.id === agent.id)?.last_checkin;
    const lagged = { ...env, CHECKIN_VIEW_LAG: "1m" } as Env;
    // 20 s into a minute: the hold ends 12 s into the next one (FLUSHED_BY_MS), 52 s on.
    const start = Math.floor(Date.now() / 60_000) * 60_000 + 20_000;
    const minute = minuteOf(start);
    // Later than any real check-in of this run, so only the hold decides what the list shows.
    const [first, second, third] = [0, 10_000, 20_000].map((ms) => new Date(start + 3_600_000 + ms).toISOString());
    const clock = vi.spyOn(Date, "now").mockReturnValue(start);
    try {
      await runInDurableObject(outboxOf("outbox-flush-hold"), async (_instance: unknown, state: DurableObjectState) => {
        const wakes: number[] = [];
        const effects = new AgentEffects(state.storage, lagged, async (at) => void wakes.push(at), "hold-test");
        const flushRows = () => state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM effects WHERE kind = 'flush'").one().n;
        await effects.change(() => effects.roster(policyId, agentSummary(agent.id, { last_checkin: null }), true));
        const listedAt = await lastCheckin();
        expect(listedAt).toBeNull();
        wakes.length = 0;
        // As in the store's alarm: its delivery is queued before its flush writes the rows, and leaves them.
        const queued = effects.deliver();
        effects.collectTouches(new Map([[policyId, [[minute, 2]]]]), () => effects.touch(policyId, agent.id, first!));
        await queued;
        expect(wakes).toEqual([start + 52_000]);
        // The store's alarm runs meanwhile (its next flush window): the row stays, and its wake-up is asked for again.
        await effects.deliver();
        expect(wakes.slice(1)).toEqual([start + 52_000]);
        // The next window's flush joins the hold.
        clock.mockReturnValue(start + 10_000);
        effects.collectTouches(new Map([[policyId, [[minute, 3]]]]), () => effects.touch(policyId, agent.id, second!));
        // A writer's change is not held: an admin or an enrolling agent waits for it. Its delivery takes
        // it from memory, as without a hold: held rows are the alarm's to read from the table.
        const exec = vi.spyOn(state.storage.sql, "exec");
        await effects.change(() => effects.roster(policyId, agentSummary("flush-hold-joined"), true));
        expect(exec.mock.calls.filter(([query]) => query.startsWith("SELECT seq"))).toEqual([]);
        exec.mockRestore();
        expect((await listed()).map((a) => a.id)).toContain("flush-hold-joined");
        expect([flushRows(), await lastCheckin(), (await checkinsCounted(policyId)) - before]).toEqual([2, listedAt, 0]);
        // The alarm run of that window leaves both rows, and asks for the hold's end again.
        await effects.deliver();
        expect([flushRows(), wakes.at(-1)]).toEqual([2, start + 52_000]);
        clock.mockReturnValue(start + 52_000);
        await effects.deliver();
        expect(flushRows()).toBe(0);
        expect([await lastCheckin(), (await checkinsCounted(policyId)) - before]).toEqual([second, 5]);
        // A new hold, to the next minute's send; a restart (a new outbox over the same table) does not
        // know it: it asks for its alarm within a second of starting, and sends the row.
        effects.collectTouches(new Map([[policyId, [[minute, 1]]]]), () => effects.touch(policyId, agent.id, third!));
        expect(wakes.at(-1)).toBe(start + 112_000);
        const restartWakes: number[] = [];
        const restarted = new AgentEffects(state.storage, lagged, async (at) => void restartWakes.push(at), "hold-test");
        restarted.resume();
        expect(restartWakes).toEqual([start + 53_000]);
        await restarted.deliver();
        expect(state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM effects").one().n).toBe(0);
        // With nothing left, a start asks for nothing.
        new AgentEffects(state.storage, lagged, async (at) => void restartWakes.push(at), "hold-test").resume();
        expect(restartWakes).toEqual([start + 53_000]);
      });
    } finally {
      clock.mockRestore();
    }
    expect([await lastCheckin(), (await checkinsCounted(policyId)) - before]).toEqual([third, 6]);
  });

  it("hold a flush in one row for every policy in it, of which a retry sends only the policies whose call failed", async () => {
    await putPolicy("flush-a");
    await putPolicy("flush-b");
    const minute = minuteOf(Date.now());
    const before = [await checkinsCounted("flush-a"), await checkinsCounted("flush-b")];
    // flush-b's hub refuses the roster's call until told otherwise.
    let refuse = true;
    const hubs = env.POLICY_HUBS;
    const names = new Map<string, string>();
    const flaky = {
      ...env,
      POLICY_HUBS: {
        idFromName(name: string) {
          const id = hubs.idFromName(name);
          names.set(id.toString(), name);
          return id;
        },
        get(id: DurableObjectId) {
          const stub = hubs.get(id);
          if (names.get(id.toString()) !== "flush-b") return stub;
          return new Proxy(stub, { get: (target, prop) => (prop === "applyRoster" && refuse ? () => Promise.reject(new Error("hub unreachable")) : (Reflect.get(target, prop) as unknown)) });
        },
      },
    } as unknown as Env;
    await runInDurableObject(outboxOf("outbox-flush-rows"), async (_instance: unknown, state: DurableObjectState) => {
      const effects = new AgentEffects(state.storage, flaky, async () => undefined, "flush-test");
      const rows = () => state.storage.sql.exec<{ kind: string; body: string }>("SELECT kind, body FROM effects").toArray();
      const at = new Date().toISOString();
      effects.collectTouches(new Map([["flush-a", [[minute, 2]]], ["flush-b", [[minute, 3]]]] as Array<[string, Array<[number, number]>]>), () => {
        effects.touch("flush-a", "flush-a-agent", at);
        effects.touch("flush-b", "flush-b-agent", at);
      });
      expect(rows().map((row) => [row.kind, JSON.parse(row.body) as unknown])).toEqual([
        ["flush", { policies: [["flush-a", { times: [["flush-a-agent", at]], minutes: [[minute, 2]] }], ["flush-b", { times: [["flush-b-agent", at]], minutes: [[minute, 3]] }]] }],
      ]);
      await effects.deliver();
      expect(rows().map((row) => JSON.parse(row.body) as unknown)).toEqual([{ policies: [["flush-b", { times: [["flush-b-agent", at]], minutes: [[minute, 3]] }]] }]);
      refuse = false;
      await effects.deliver();
      expect(effects.pending()).toBe(0);
    });
    // Each hub counted its policy's batch once.
    expect([(await checkinsCounted("flush-a")) - before[0]!, (await checkinsCounted("flush-b")) - before[1]!]).toEqual([2, 3]);
  });
});
