import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import { AgentEffects } from "../durable/agent-effects";
import { AgentStore } from "../durable/agent-store";
import { CHECKIN_FLUSH_MS } from "../durable/checkin-journal";
import { JOURNAL_SPAN_MS } from "../durable/checkin-journal";
import { agentStoreName } from "../src/agents/agent-stores";
import type { AgentDoc } from "../src/protocol/agent-doc";
import { parseApiKeyHeader } from "../src/auth/api-key";
import { agentObject } from "../src/durable-stubs";
import { ackEvent, ackRequest, adminRequest, agentSummary, checkinRequest, checkinsCounted, enrolledAgent, eventually, json, queueAction } from "./helpers";

/** A `setAlarm` argument as epoch milliseconds. */
function alarmTime(at: number | Date): number {
  return typeof at === "number" ? at : at.getTime();
}

/** Two client-chosen agent ids that hash to the same store object. */
function neighbours(prefix: string): [string, string] {
  const seen = new Map<string, string>();
  for (let i = 0; ; i++) {
    const id = `${prefix}-${i}`;
    const other = seen.get(agentStoreName(id));
    if (other) return [other, id];
    seen.set(agentStoreName(id), id);
  }
}

/** The agent's record as a fresh store on the same storage loads it: what survives a restart. */
async function durableRecord(state: DurableObjectState, agentId: string): Promise<AgentDoc> {
  return (await new AgentStore(state, env).call(agentId, "record", []))!;
}

/** The agent's stored row itself, without the store's check-in journal. */
function storedRow(state: DurableObjectState, agentId: string): AgentDoc {
  return JSON.parse(state.storage.sql.exec<{ doc: string }>("SELECT doc FROM agents WHERE agent_id = ?", agentId).one().doc) as AgentDoc;
}

/**
 * A check-in of `agent` in `store` a few ms after the last one (so its time is new), answered with
 * nothing: returns the `last_checkin` the agent's record now has.
 */
async function checkinIn(store: AgentStore, agent: { id: string; key: string }, message = "Running"): Promise<string> {
  await new Promise((resolve) => setTimeout(resolve, 5));
  const outcome = await store.call(agent.id, "checkin", [parseApiKeyHeader(`ApiKey ${agent.key}`), { status: "online", message, version: "9.6.0" }]);
  if ("error" in outcome) throw new Error(outcome.error);
  return (await store.call(agent.id, "record", []))!.last_checkin!;
}

/** Runs the store's alarm at `at`, as the runtime would once that time has come. */
async function alarmAt(store: AgentStore, at: number): Promise<void> {
  const clock = vi.spyOn(Date, "now").mockReturnValue(at);
  try {
    await store.alarm();
  } finally {
    clock.mockRestore();
  }
}

interface CheckinBody {
  actions?: Array<{ id: string; type: string; agent_id: string }>;
}

describe("agent store (many agents per object)", () => {
  it("keeps neighbours apart: actions, acks, results, keys and unenrollment are per agent", async () => {
    const [idA, idB] = neighbours("store-neighbour");
    expect(agentStoreName(idA)).toBe(agentStoreName(idB));
    const a = await enrolledAgent("store-p", { id: idA });
    const b = await enrolledAgent("store-p", { id: idB });
    expect([a.id, b.id]).toEqual([idA, idB]);

    // Each agent's key works only for itself, though both live in one object.
    const wrongKey = await checkinRequest({ ...b, key: a.key });
    expect(wrongKey.status).toBe(403);

    const action = await queueAction(a.id, { type: "SETTINGS", data: { log_level: "debug" } });
    const first = await json<CheckinBody>(await checkinRequest(a));
    expect(first.actions!.map((x) => [x.type, x.agent_id, x.id])).toEqual([["SETTINGS", a.id, action.id]]);
    const other = await json<CheckinBody>(await checkinRequest(b));
    expect(other.actions!.map((x) => x.type)).toEqual(["POLICY_CHANGE"]);

    // B cannot ack A's action: to B it does not exist.
    const stolen = await ackRequest(b, [ackEvent(b, action.id, "SETTINGS")]);
    expect(stolen.status).toBe(404);
    expect((await agentObject(env, a.id).detail())!.results).toBe(0);
    expect((await agentObject(env, a.id).detail())!.pending.map((p) => p.id)).toEqual([action.id]);

    const acked = await ackRequest(a, [ackEvent(a, action.id, "SETTINGS")]);
    expect(acked.status).toBe(200);
    expect((await agentObject(env, a.id).detail())!.results).toBe(1);
    expect((await agentObject(env, b.id).detail())!.results).toBe(0);

    // Revoking B leaves A enrolled and able to check in.
    expect((await adminRequest("POST", `/api/fleet/agents/${b.id}/unenroll`, { revoke: true })).status).toBe(200);
    expect((await checkinRequest(b)).status).toBe(401);
    expect((await agentObject(env, a.id).record())!.active).toBe(true);
    const stillThere = await checkinRequest(a, { agent_policy_id: "store-p", policy_revision_idx: 1, poll_timeout: "1s" });
    expect(stillThere.status).toBe(200);
  });


  it("writes a heartbeat's times within the flush period and any other change at once", async () => {
    const agent = await enrolledAgent("store-heartbeat");
    const stub = env.AGENT_STORES.get(env.AGENT_STORES.idFromName(agentStoreName(agent.id)));
    await runInDurableObject(stub, async (instance: unknown, state) => {
      const store = instance as AgentStore;
      const stored = () => durableRecord(state, agent.id);
      const live = async () => (await store.call(agent.id, "record", []))!;
      const checkin = (message: string) => checkinIn(store, agent, message);

      await checkin("Running");
      const first = await stored();
      expect(first.last_checkin).toBe((await live()).last_checkin);
      expect(storedRow(state, agent.id).last_checkin).toBe(first.last_checkin);

      // Only the times changed: the agent's record has them, storage not yet.
      await checkin("Running");
      const heartbeat = (await live()).last_checkin!;
      expect(heartbeat > first.last_checkin!).toBe(true);
      expect((await stored()).last_checkin).toBe(first.last_checkin);

      // Anything else (here the message) is written at once, with the times, into the row itself.
      await checkin("Running: 2 units");
      const changed = (await live()).last_checkin;
      expect(await stored()).toMatchObject({ last_checkin_message: "Running: 2 units", last_checkin: changed });
      expect(storedRow(state, agent.id).last_checkin).toBe(changed);

      // The store's alarm writes held times once they are due (it also fires for other work: early, it leaves them),
      // into its check-in journal: the row keeps the time of its last real change.
      await checkin("Running: 2 units");
      expect((await stored()).last_checkin).not.toBe((await live()).last_checkin);
      await store.alarm();
      expect((await stored()).last_checkin).not.toBe((await live()).last_checkin);
      await alarmAt(store, Date.now() + CHECKIN_FLUSH_MS + 1);
      expect((await stored()).last_checkin).toBe((await live()).last_checkin);
      expect(storedRow(state, agent.id).last_checkin).toBe(changed);

      // So does any call once they are due, on a store that stays busy.
      await checkin("Running: 2 units");
      const due = (await live()).last_checkin;
      const clock = vi.spyOn(Date, "now").mockReturnValue(Date.now() + CHECKIN_FLUSH_MS + 1);
      try {
        expect((await stored()).last_checkin).not.toBe(due);
        await store.call(agent.id, "record", []);
        expect((await stored()).last_checkin).toBe(due);
      } finally {
        clock.mockRestore();
      }
    });
  });

  describe("held heartbeats reach storage within the flush bound, without help from other calls", () => {
    /** Sets up one agent that has checked in once (its record is written), inside its store. */
    async function withAgent(policyId: string, body: (tools: HeldTools) => Promise<void>): Promise<void> {
      const agent = await enrolledAgent(policyId);
      const stub = env.AGENT_STORES.get(env.AGENT_STORES.idFromName(agentStoreName(agent.id)));
      await runInDurableObject(stub, async (instance: unknown, state: DurableObjectState) => {
        const tools: HeldTools = {
          state,
          stored: async () => (await durableRecord(state, agent.id)).last_checkin!,
          heartbeat: (store) => checkinIn(store, agent),
          store: instance as AgentStore,
        };
        await tools.heartbeat(tools.store);
        await body(tools);
      });
    }

    /**
     * Fires the store's alarm at each time it is set, as the runtime does, with no other call in
     * between, and checks that `held` is stored before the bound passes.
     */
    async function untilStored(tools: HeldTools, store: AgentStore, held: string): Promise<void> {
      const bound = Date.parse(held) + CHECKIN_FLUSH_MS + 1_000;
      for (let runs = 0; (await tools.stored()) !== held; runs++) {
        const alarm = await tools.state.storage.getAlarm();
        expect(alarm, "the held time has no alarm to write it").not.toBeNull();
        expect(alarm!).toBeLessThanOrEqual(bound);
        expect(runs).toBeLessThan(10);
        await alarmAt(store, alarm!);
      }
    }

    it("when it arrives while the store's alarm handler runs", async () => {
      await withAgent("held-during-alarm", async (tools) => {
        const { store, stored, heartbeat } = tools;
        // The alarm fires (for effects, the mirror, anything); the heartbeat comes before it returns.
        const run = store.alarm();
        const held = await heartbeat(store);
        await run;
        expect(await stored()).not.toBe(held);
        await untilStored(tools, store, held);
        // The flush sends the policy's roster only the new time (a "touch" effect), and the listing shows it.
        await store.alarm();
        const listed = await adminRequest("GET", "/api/fleet/agents?policy_id=held-during-alarm");
        expect((await json<{ items: Array<{ last_checkin: string }> }>(listed)).items.map((a) => a.last_checkin)).toEqual([held]);
      });
    });

    it("one flush sends its policy's hub one row of times and check-in counts, however many agents it writes", async () => {
      const ids = neighbours("held-shared-row");
      const agents = [await enrolledAgent("held-shared-row", { id: ids[0] }), await enrolledAgent("held-shared-row", { id: ids[1] })];
      const stub = env.AGENT_STORES.get(env.AGENT_STORES.idFromName(agentStoreName(ids[0])));
      await runInDurableObject(stub, async (instance: unknown, state: DurableObjectState) => {
        const store = instance as AgentStore;
        const sql = state.storage.sql;
        // First check-ins write the records (and their roster rows); the next ones only move times.
        for (const agent of agents) await checkinIn(store, agent);
        await store.alarm();
        const held: string[] = [];
        for (const agent of agents) held.push(await checkinIn(store, agent));
        const lastSeq = () => sql.exec<{ seq: number }>("SELECT seq FROM sqlite_sequence WHERE name = 'effects'").one().seq;
        const before = lastSeq();
        const alarmsSet: number[] = [];
        const setAlarm = vi.spyOn(state.storage, "setAlarm").mockImplementation(async (at) => void alarmsSet.push(Number(at)));
        const clock = vi.spyOn(Date, "now").mockReturnValue(Date.now() + CHECKIN_FLUSH_MS + 1);
        try {
          await store.alarm();
        } finally {
          clock.mockRestore();
          setAlarm.mockRestore();
        }
        // Both agents' times and the flush's check-in counts went out in one effect row, delivered.
        expect(lastSeq() - before).toBe(1);
        expect(sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM effects").one().n).toBe(0);
        // The hub counted every check-in of the two agents since they enrolled (two each).
        expect(await checkinsCounted("held-shared-row")).toBe(4);
        // By the run that wrote them: no second alarm run (and setAlarm row) is asked for them.
        expect(alarmsSet).toEqual([]);
        const listed = await json<{ items: Array<{ id: string; last_checkin: string }> }>(await adminRequest("GET", "/api/fleet/agents?policy_id=held-shared-row"));
        expect(Object.fromEntries(listed.items.map((a) => [a.id, a.last_checkin]))).toEqual(Object.fromEntries(ids.map((id, i) => [id, held[i]])));
      });
    });

    it("right after a restart (a fresh store object on the same storage)", async () => {
      await withAgent("held-after-restart", async (tools) => {
        const { state, stored, heartbeat } = tools;
        const restarted = new AgentStore(state, env);
        const held = await heartbeat(restarted);
        expect(await stored()).not.toBe(held);
        // An early alarm (another concern's) leaves the time held and asks again for the flush.
        await alarmAt(restarted, Date.now());
        expect(await stored()).not.toBe(held);
        await untilStored(tools, restarted, held);
      });
    });
  });
});

describe("the check-in journal", () => {
  it("a window's heartbeats are one journal row; the records stay as written until a quiet agent's time ages out into its own", async () => {
    const ids = neighbours("journal");
    const agents = [await enrolledAgent("journal", { id: ids[0] }), await enrolledAgent("journal", { id: ids[1] })];
    const stub = env.AGENT_STORES.get(env.AGENT_STORES.idFromName(agentStoreName(ids[0])));
    await runInDurableObject(stub, async (instance: unknown, state: DurableObjectState) => {
      const store = instance as AgentStore;
      const sql = state.storage.sql;
      const journalRows = () => sql.exec<{ window: number; times: string }>("SELECT window, times FROM checkin_journal ORDER BY window").toArray();
      const heartbeat = (agent: (typeof agents)[number]) => checkinIn(store, agent);
      const flushAt = (at: number) => alarmAt(store, at);
      // First check-ins are written to the records themselves.
      const first = [await heartbeat(agents[0]!), await heartbeat(agents[1]!)];
      await store.alarm();
      const start = Date.now();
      const rowsBefore = journalRows().length;

      // Both agents' next heartbeats: one journal row for the window, both records untouched.
      const second = [await heartbeat(agents[0]!), await heartbeat(agents[1]!)];
      await flushAt(start + CHECKIN_FLUSH_MS + 1);
      const rows = journalRows();
      expect(rows.length).toBe(rowsBefore + 1);
      expect(JSON.parse(rows.at(-1)!.times)).toEqual({ [ids[0]]: second[0], [ids[1]]: second[1] });
      expect(ids.map((id) => storedRow(state, id).last_checkin)).toEqual(first);
      // What a restart reads (and lists) is the journal's time.
      expect((await durableRecord(state, ids[0])).last_checkin).toBe(second[0]);
      expect((await durableRecord(state, ids[1])).last_checkin).toBe(second[1]);

      // Only the first agent checks in again, in a later window.
      const third = await heartbeat(agents[0]!);
      await flushAt(start + 2 * (CHECKIN_FLUSH_MS + 1));
      expect(journalRows().length).toBe(rowsBefore + 2);

      // An hour on, the first window ages out: the second agent (quiet since) gets its time in its
      // record; the first agent's newest time is in a younger window, so its record is not rewritten.
      const fourth = await heartbeat(agents[0]!);
      await flushAt(rows.at(-1)!.window + JOURNAL_SPAN_MS + 1);
      expect(storedRow(state, ids[1]).last_checkin).toBe(second[1]);
      expect(storedRow(state, ids[1]).updated_at).toBe(second[1]);
      expect(storedRow(state, ids[0]).last_checkin).toBe(first[0]);
      expect(journalRows().map((row) => Object.keys(JSON.parse(row.times) as object))).toEqual([[ids[0]], [ids[0]]]);
      expect((await durableRecord(state, ids[0])).last_checkin).toBe(fourth);
      expect((await durableRecord(state, ids[1])).last_checkin).toBe(second[1]);
      expect(third < fourth).toBe(true);
    });
  });

  it("whatever the order of heartbeats, changes, flushes, restarts and hours passing, a restart reads each agent's last time as of its last flush or change, and a row holds its time once the journal let it go", async () => {
    const ids = neighbours("journal-model");
    const agents = [await enrolledAgent("journal-model", { id: ids[0] }), await enrolledAgent("journal-model", { id: ids[1] })];
    const stub = env.AGENT_STORES.get(env.AGENT_STORES.idFromName(agentStoreName(ids[0])));
    type Step = { kind: "heartbeat"; agent: 0 | 1 } | { kind: "change"; agent: 0 | 1 } | { kind: "flush"; laterMs: number } | { kind: "restart" };
    const stepArb: fc.Arbitrary<Step> = fc.oneof(
      fc.record({ kind: fc.constant("heartbeat" as const), agent: fc.constantFrom(0 as const, 1 as const) }),
      fc.record({ kind: fc.constant("change" as const), agent: fc.constantFrom(0 as const, 1 as const) }),
      // Flushes a little later, or after most of the journal's span, or past it.
      fc.record({ kind: fc.constant("flush" as const), laterMs: fc.constantFrom(CHECKIN_FLUSH_MS + 1, JOURNAL_SPAN_MS / 3, JOURNAL_SPAN_MS / 2, JOURNAL_SPAN_MS + 1) }),
      fc.record({ kind: fc.constant("restart" as const) }),
    );
    await runInDurableObject(stub, async (instance: unknown, state: DurableObjectState) => {
      let store = instance as AgentStore;
      // The store's own clock for flushes and journal windows: only ever moves forward, across runs too.
      let ahead = 0;
      let lastWindow = 0;
      let changes = 0;
      const checkin = (i: 0 | 1, message: string) => checkinIn(store, agents[i]!, message);
      const latest = (a: string | null, b: string | null) => (a === null ? b : b === null || a > b ? a : b);

      await fc.assert(
        fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 14 }), async (steps) => {
          // Each run starts from a written record per agent: its row is the truth, the journal holds nothing newer.
          const messages = ["", ""];
          const model = await Promise.all(
            ([0, 1] as const).map(async (i) => {
              messages[i] = `change ${++changes}`;
              const at = await checkin(i, messages[i]);
              return { live: at, row: at, journaled: null as string | null, window: 0, held: false };
            }),
          );
          // A store flushes (and lets old windows go) when a check-in since its last flush asked for it.
          let due = true;
          for (const step of steps) {
            if (step.kind === "heartbeat" || step.kind === "change") due = true;
            if (step.kind === "heartbeat") {
              const m = model[step.agent]!;
              m.live = await checkin(step.agent, messages[step.agent]!);
              m.held = true;
            } else if (step.kind === "change") {
              const m = model[step.agent]!;
              messages[step.agent] = `change ${++changes}`;
              m.live = m.row = await checkin(step.agent, messages[step.agent]!);
              m.held = false;
            } else if (step.kind === "restart") {
              store = new AgentStore(state, env);
              // Held times die with the old object: what is durable is what there is.
              for (const m of model) m.live = latest(m.row, m.journaled)!;
              for (const m of model) m.held = false;
              due = false;
            } else {
              ahead += step.laterMs;
              const now = Date.now() + ahead;
              await alarmAt(store, now);
              if (due) {
                const window = Math.max(now, lastWindow + 1);
                if (model.some((m) => m.held)) lastWindow = window;
                for (const m of model) {
                  if (m.held) Object.assign(m, { journaled: m.live, window, held: false });
                  if (m.journaled !== null && m.window < now - JOURNAL_SPAN_MS) {
                    m.row = latest(m.row, m.journaled)!;
                    m.journaled = null;
                  }
                }
              }
              due = false;
            }
            for (const [i, m] of model.entries()) {
              expect(storedRow(state, ids[i]!).last_checkin, `row of agent ${i} after ${JSON.stringify(step)}`).toBe(m.row);
              expect((await durableRecord(state, ids[i]!)).last_checkin, `restart's view of agent ${i} after ${JSON.stringify(step)}`).toBe(
                latest(m.row, m.journaled),
              );
              expect((await store.call(ids[i]!, "record", []))!.last_checkin).toBe(m.live);
            }
          }
        }),
        { numRuns: 150 },
      );
    });
  });

  it("a record written after a journaled time keeps its own, newer time when that window ages out", async () => {
    const agent = await enrolledAgent("journal-rewritten");
    const stub = env.AGENT_STORES.get(env.AGENT_STORES.idFromName(agentStoreName(agent.id)));
    await runInDurableObject(stub, async (instance: unknown, state: DurableObjectState) => {
      const store = instance as AgentStore;
      const checkin = (message: string) => checkinIn(store, agent, message);
      const flushAt = (at: number) => alarmAt(store, at);
      const windowsHolding = () =>
        state.storage.sql.exec<{ window: number }>("SELECT window FROM checkin_journal WHERE json_extract(times, '$.' || json_quote(?)) IS NOT NULL", agent.id).toArray().map((row) => row.window);
      // As when another test flushed this store at a mocked later time: its windows are numbered
      // past that one, so the window's number, not the clock, says when it ages out.
      await checkin("Running");
      await checkin("Running");
      await flushAt(Date.now() + 3 * JOURNAL_SPAN_MS);
      await checkin("Running");
      await flushAt(Date.now() + CHECKIN_FLUSH_MS + 1);
      const window = Math.max(...windowsHolding());
      expect(window).toBeGreaterThan(Date.now() + 2 * JOURNAL_SPAN_MS);
      // A real change writes the record with its newer time; the journal's older one must not overwrite it.
      const changed = await checkin("Degraded");
      await flushAt(window + JOURNAL_SPAN_MS + 1);
      expect(storedRow(state, agent.id)).toMatchObject({ last_checkin: changed, last_checkin_message: "Degraded" });
      expect(windowsHolding()).toEqual([]);
      expect((await durableRecord(state, agent.id)).last_checkin).toBe(changed);
    });
  });
});

describe("socket leases", () => {
  it("a record's removal drops its lease, so the id's next enrollment starts with none", async () => {
    const agentId = "lease-dropped-never-checked-in";
    const stub = env.AGENT_STORES.get(env.AGENT_STORES.idFromName(agentStoreName(agentId)));
    await agentObject(env, agentId).enroll({ agentId, clientChosenId: true, policyId: "lease-p", namespaces: [], type: "PERMANENT", localMetadata: null, tags: [], version: "9.5.2" });
    await runInDurableObject(stub, async (instance: unknown, state: DurableObjectState) => {
      const leases = () => state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM socket_lease WHERE agent_id = ?", agentId).one().n;
      // A socket that opened with the agent's key, the agent never having checked in.
      expect(await (instance as AgentStore).call(agentId, "attachSocket", ["socket-1"])).toBeNull();
      expect(leases()).toBe(1);
      expect(await (instance as AgentStore).call(agentId, "dropIfNeverCheckedIn", [])).toBe(true);
      expect(leases()).toBe(0);
      // A store that starts afresh knows an unrecorded agent holds no lease, and its enrollment deletes none.
      const restarted = new AgentStore(state, env);
      const exec = vi.spyOn(state.storage.sql, "exec");
      expect("item" in (await restarted.call(agentId, "enroll", [{ agentId, clientChosenId: true, policyId: "lease-p", namespaces: [], type: "PERMANENT", localMetadata: null, tags: [], version: "9.5.2" }]))).toBe(true);
      expect(exec.mock.calls.filter(([query]) => query.includes("socket_lease"))).toEqual([]);
      exec.mockRestore();
      expect(leases()).toBe(0);
    });
  });
});

describe("effects that go at once", () => {
  it("an enrollment delivers its roster row before it returns and asks for the alarm only as a fallback, about a second later", async () => {
    const policyId = "effects-fallback";
    await enrolledAgent(policyId);
    const agentId = "effects-fallback-new";
    const stub = env.AGENT_STORES.get(env.AGENT_STORES.idFromName(agentStoreName(agentId)));
    // An earlier enrollment in this store (any test's random agent id may land here) leaves a
    // fallback alarm the store counts on and would not ask for again: it runs first.
    await runDurableObjectAlarm(stub);
    await runInDurableObject(stub, async (instance: unknown, state: DurableObjectState) => {
      const store = instance as AgentStore;
      await state.storage.deleteAlarm();
      // The time asked for, read from the request itself: the alarm may even have run by the time the test looks.
      const setAlarm = vi.spyOn(state.storage, "setAlarm");
      const started = Date.now();
      const enrolled = await store.call(agentId, "enroll", [
        { agentId, clientChosenId: true, policyId, namespaces: [], type: "PERMANENT", localMetadata: null, tags: [], version: "9.5.2" },
      ]);
      expect("item" in enrolled).toBe(true);
      // Delivered by the store itself (the admin reads it at once): nothing is left to deliver.
      expect(store.pendingEffects()).toBe(0);
      // The fallback for a delivery a crash cuts short, a second out: not an alarm run per enrollment.
      // The request may land just after the enrollment's answer.
      const alarm = await eventually(async () => {
        const first = setAlarm.mock.calls[0];
        expect(first).toBeDefined();
        return alarmTime(first![0]);
      });
      setAlarm.mockRestore();
      expect(alarm).toBeGreaterThanOrEqual(started + 1_000);
      expect(alarm).toBeLessThanOrEqual(Date.now() + 1_000);
    });
    const listed = await json<{ items: Array<{ id: string }> }>(await adminRequest("GET", `/api/fleet/agents?kuery=${encodeURIComponent(`policy_id:${policyId}`)}&perPage=100`));
    expect(listed.items.map((a) => a.id)).toContain(agentId);
  });

  it("a burst of enrollments in one store is delivered in full and asks for the alarm once", async () => {
    const policyId = "effects-burst";
    await enrolledAgent(policyId);
    const store = agentStoreName("effects-burst-0");
    const ids: string[] = [];
    for (let i = 0; ids.length < 6; i++) if (agentStoreName(`effects-burst-${i}`) === store) ids.push(`effects-burst-${i}`);
    const stub = env.AGENT_STORES.get(env.AGENT_STORES.idFromName(store));
    await runInDurableObject(stub, async (instance: unknown, state: DurableObjectState) => {
      // Every wake-up request reads the alarm first (AlarmSchedule): counting reads counts requests.
      // (The alarm is not deleted first: the store would still believe in it and rightly ask for none.)
      const getAlarm = vi.spyOn(state.storage, "getAlarm");
      const enroll = (agentId: string) =>
        (instance as AgentStore).call(agentId, "enroll", [
          { agentId, clientChosenId: true, policyId, namespaces: [], type: "PERMANENT", localMetadata: null, tags: [], version: "9.5.2" },
        ]);
      // Three at once (the later ones join one delivery), then three one after another.
      const outcomes = await Promise.all(ids.slice(0, 3).map(enroll));
      for (const agentId of ids.slice(3)) outcomes.push(await enroll(agentId));
      expect(outcomes.every((outcome) => "item" in outcome)).toBe(true);
      // Requests are written in turn after the writes that made them: wait for the alarm, however
      // slow the machine, and leave this test's own reads out of the count.
      let polls = 0;
      await eventually(async () => {
        polls++;
        expect(await state.storage.getAlarm()).not.toBeNull();
      });
      expect((instance as AgentStore).pendingEffects()).toBe(0);
      // None when an earlier test's fallback alarm is still due.
      expect(getAlarm.mock.calls.length - polls).toBeLessThanOrEqual(1);
      getAlarm.mockRestore();
      // Delivered rows wait for the alarm to delete them.
      await (instance as AgentStore).alarm();
      expect(state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM effects").one().n).toBe(0);
    });
    const listed = await json<{ items: Array<{ id: string }> }>(await adminRequest("GET", `/api/fleet/agents?kuery=${encodeURIComponent(`policy_id:${policyId}`)}&perPage=100`));
    expect(listed.items.map((a) => a.id)).toEqual(expect.arrayContaining(ids));
  });

  it("a change that rolls back delivers none of its effects; the next change delivers its own at once", async () => {
    const policyId = "effects-rollback";
    await enrolledAgent(policyId);
    const stub = env.AGENT_STORES.get(env.AGENT_STORES.idFromName(agentStoreName("effects-rollback-real")));
    await runInDurableObject(stub, async (_instance: unknown, state: DurableObjectState) => {
      const effects = new AgentEffects(state.storage, env, async () => undefined, "rollback-test");
      // A first change, so the next deliveries go from memory (nothing older waits in the table).
      await effects.change(() => effects.roster(policyId, agentSummary("effects-rollback-first"), true));
      await expect(
        effects.change(() => {
          effects.roster(policyId, agentSummary("effects-rollback-phantom"), true);
          throw new Error("the change fails after writing its effect");
        }),
      ).rejects.toThrow("the change fails");
      await effects.change(() => effects.roster(policyId, agentSummary("effects-rollback-real"), true));
      expect(effects.pending()).toBe(0);
    });
    const listed = await json<{ items: Array<{ id: string }> }>(await adminRequest("GET", `/api/fleet/agents?kuery=${encodeURIComponent(`policy_id:${policyId}`)}&perPage=100`));
    expect(listed.items.map((a) => a.id)).toEqual(expect.arrayContaining(["effects-rollback-first", "effects-rollback-real"]));
    expect(listed.items.map((a) => a.id)).not.toContain("effects-rollback-phantom");
  });

  it("an effect nobody delivers right away (a poll taking over from a socket) asks for the alarm at once", async () => {
    const agent = await enrolledAgent("effects-at-once");
    const key = parseApiKeyHeader(`ApiKey ${agent.key}`);
    const stub = env.AGENT_STORES.get(env.AGENT_STORES.idFromName(agentStoreName(agent.id)));
    await runInDurableObject(stub, async (instance: unknown, state: DurableObjectState) => {
      const store = instance as AgentStore;
      expect(await store.call(agent.id, "attachSocket", ["socket-1"])).toBeNull();
      await state.storage.deleteAlarm();
      // Past the wake-up attaching asked for, which the store still remembers: a due time is not proof of an alarm.
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      // The time asked for, read from the request itself: an alarm asked for at once may have run before the test looks.
      const setAlarm = vi.spyOn(state.storage, "setAlarm");
      const outcome = await store.call(agent.id, "checkin", [key, { status: "online", message: "Running", version: "9.5.2" }]);
      expect("error" in outcome).toBe(false);
      // This agent's rows only: other tests' agents may share the store, their delivered rows not yet deleted.
      const pending = state.storage.sql
        .exec<{ kind: string; body: string }>("SELECT kind, body FROM effects WHERE kind = 'shard' AND agent_id = ?", agent.id)
        .toArray();
      expect(pending.map((row) => (JSON.parse(row.body) as { kind: string }).kind)).toEqual(["disconnect"]);
      // Other requests (the held check-in counts' flush) may come too; one must be for now.
      await eventually(async () => expect(setAlarm.mock.calls.some(([at]) => alarmTime(at) <= Date.now())).toBe(true));
      setAlarm.mockRestore();
    });
  });
});

interface HeldTools {
  state: DurableObjectState;
  store: AgentStore;
  /** `last_checkin` as a restarted store reads it (its row, or the check-in journal's newer time). */
  stored: () => Promise<string>;
  /** A check-in that changes nothing but the times; returns the agent's (held) `last_checkin`. */
  heartbeat: (store: AgentStore) => Promise<string>;
}
