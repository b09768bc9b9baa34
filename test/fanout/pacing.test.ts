import { SELF, env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { HubShard } from "../../durable/hub-shard";
import type { ParkResult } from "../../src/checkin/shard-contract";
import { hubShardAt } from "../../src/durable-stubs";
import { BASE, agentHeaders, enrolledAgent, parkedCount, putPolicy } from "../helpers";

/**
 * Paced delivery (docs/scale.md §3) in the `fanout` project: ROLLOUT_RATE=12 agents/s and one shard
 * per policy of up to 8 agents, so a shard wakes 3 agents per 250 ms batch. The clock (Date) is held
 * still a day ahead: the shard's next batch is due on an alarm the runtime would only fire a day from
 * now, so each batch here is one `runDurableObjectAlarm`, and nothing runs between them by itself.
 */
const BATCH = 3;

function holdClock(): void {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(Date.now() + 86_400_000);
}

afterEach(() => {
  vi.useRealTimers();
});

const shardOf = (policyId: string) => hubShardAt(env, policyId, 0);
const stubOf = (policyId: string) => shardOf(policyId) as unknown as DurableObjectStub<HubShard>;
const agentIds = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

/** Parks `ids` in order (oldest first), each running revision 1; returns what each was answered, as it comes. */
async function parkAll(policyId: string, ids: string[]): Promise<Map<string, ParkResult>> {
  const answers = new Map<string, ParkResult>();
  for (const [i, agentId] of ids.entries()) {
    void shardOf(policyId)
      .park(policyId, { agentId, shard: 0, claim: { stored: 1, reported: { policyId, revision: 1 } }, actionSeq: 0, holdMs: 600_000 })
      .then((answer) => answers.set(agentId, answer));
    await until(async () => (await parkedCount(policyId)) === i + 1);
  }
  return answers;
}

async function until(check: () => Promise<boolean> | boolean, what = "condition"): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Lets answers already sent arrive, so a count that should not grow is seen not to. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 100));

const revisionOf = (answer: ParkResult | undefined) => (answer?.kind === "policy" ? answer.ref.revision : answer?.kind);

/** An agent's socket, answered its first check-in (so it runs revision 1), with what it was pushed since. */
async function socketAgent(policyId: string) {
  const agent = await enrolledAgent(policyId);
  const res = await SELF.fetch(`${BASE}/api/fleet/agents/${agent.id}/ws`, { headers: { ...agentHeaders(), Authorization: `ApiKey ${agent.key}`, Upgrade: "websocket" } });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  ws.accept();
  type Message = { type: string; body: { actions?: Array<{ id: string }> } };
  const received: Message[] = [];
  ws.addEventListener("message", (event) => {
    received.push(JSON.parse(event.data as string) as Message);
  });
  ws.send(JSON.stringify({ v: 1, type: "checkin", id: 1, body: { status: "online", message: "Running" } }));
  await until(() => received.length === 1, "the check-in's answer");
  expect(received[0]!.body.actions?.[0]?.id).toBe(`policy:${policyId}:1`);
  received.length = 0;
  return { agent, pushed: () => received.filter((m) => m.type === "actions").map((m) => m.body.actions![0]!.id), close: () => ws.close(1000) };
}

describe("paced rollout wake-ups (ROLLOUT_RATE)", () => {
  it("wakes a delivery's parked polls in batches of the shard's share, oldest first, one batch per alarm", async () => {
    const policyId = "pace-polls";
    await putPolicy(policyId);
    const ids = agentIds("poll", 7);
    const answers = await parkAll(policyId, ids);
    holdClock();

    await putPolicy(policyId, { agent: { logging: { level: "debug" } } });
    await until(() => answers.size >= BATCH, "the first batch");
    await settle();
    expect(new Set(answers.keys())).toEqual(new Set(ids.slice(0, BATCH)));
    expect(ids.slice(0, BATCH).map((id) => revisionOf(answers.get(id)))).toEqual([2, 2, 2]);
    expect(await parkedCount(policyId)).toBe(7 - BATCH);

    expect(await runDurableObjectAlarm(stubOf(policyId))).toBe(true);
    await until(() => answers.size >= 2 * BATCH, "the second batch");
    await settle();
    expect(new Set(answers.keys())).toEqual(new Set(ids.slice(0, 2 * BATCH)));

    expect(await runDurableObjectAlarm(stubOf(policyId))).toBe(true);
    await until(() => answers.size === 7, "the last batch");
    expect(ids.map((id) => revisionOf(answers.get(id)))).toEqual([2, 2, 2, 2, 2, 2, 2]);
    // Nothing left: no further batch is due.
    expect(await runDurableObjectAlarm(stubOf(policyId))).toBe(false);
  });

  it("answers a check-in that is behind at once while the delivery is paced", async () => {
    const policyId = "pace-ask";
    await putPolicy(policyId);
    const ids = agentIds("ask", 6);
    const answers = await parkAll(policyId, ids);
    holdClock();
    await putPolicy(policyId, { agent: { logging: { level: "debug" } } });
    await until(() => answers.size >= BATCH, "the first batch");

    // A newcomer, and the newest waiter checking in again: neither waits for its batch.
    const ask = (agentId: string) =>
      shardOf(policyId).park(policyId, { agentId, shard: 0, claim: { stored: 1, reported: { policyId, revision: 1 } }, actionSeq: 0, holdMs: 600_000 });
    expect(revisionOf(await ask("ask-newcomer"))).toBe(2);
    expect(revisionOf(await ask(ids[5]!))).toBe(2);
    await until(() => answers.has(ids[5]!), "the superseded waiter's answer");
    expect(answers.get(ids[5]!)).toEqual({ kind: "timeout" });
    // The others still wait for their batch.
    await settle();
    expect(answers.size).toBe(BATCH + 1);
    expect(await parkedCount(policyId)).toBe(2);
    await runDurableObjectAlarm(stubOf(policyId));
    await until(() => answers.size === 6, "the second batch");
  });

  it("delivers the newest revision to agents a paced delivery has not reached yet", async () => {
    const policyId = "pace-newest";
    await putPolicy(policyId);
    const ids = agentIds("newest", 6);
    const answers = await parkAll(policyId, ids);
    holdClock();
    await putPolicy(policyId, { agent: { logging: { level: "debug" } } });
    await until(() => answers.size >= BATCH, "the first batch");
    vi.setSystemTime(Date.now() + 1);
    await putPolicy(policyId, { agent: { logging: { level: "warning" } } });
    await settle();
    // Revision 3 came within the batch interval: it waits for the next batch like revision 2 did.
    expect(answers.size).toBe(BATCH);
    await runDurableObjectAlarm(stubOf(policyId));
    await until(() => answers.size === 6, "the second batch");
    expect(ids.map((id) => revisionOf(answers.get(id)))).toEqual([2, 2, 2, 3, 3, 3]);
  });

  it("pushes to sockets in batches of the shard's share, one batch per alarm", async () => {
    const policyId = "pace-sockets";
    await putPolicy(policyId);
    const sockets: Array<Awaited<ReturnType<typeof socketAgent>>> = [];
    for (let i = 0; i < 5; i++) sockets.push(await socketAgent(policyId));
    holdClock();

    await putPolicy(policyId, { agent: { logging: { level: "debug" } } });
    const pushedCount = () => sockets.filter((s) => s.pushed().length > 0).length;
    await until(() => pushedCount() >= BATCH, "the first batch of pushes");
    await settle();
    expect(pushedCount()).toBe(BATCH);

    expect(await runDurableObjectAlarm(stubOf(policyId))).toBe(true);
    await until(() => pushedCount() === 5, "the second batch of pushes");
    expect(sockets.map((s) => s.pushed())).toEqual(sockets.map(() => [`policy:${policyId}:2`]));
    expect(await runDurableObjectAlarm(stubOf(policyId))).toBe(false);
    for (const s of sockets) s.close();
  });

  it("finishes a paced delivery after the shard restarts, from what it stored and its sockets", async () => {
    const policyId = "pace-restart";
    await putPolicy(policyId);
    const sockets: Array<Awaited<ReturnType<typeof socketAgent>>> = [];
    for (let i = 0; i < 5; i++) sockets.push(await socketAgent(policyId));
    holdClock();
    await putPolicy(policyId, { agent: { logging: { level: "debug" } } });
    const pushedCount = () => sockets.filter((s) => s.pushed().length > 0).length;
    await until(() => pushedCount() >= BATCH, "the first batch of pushes");
    await settle();
    expect(pushedCount()).toBe(BATCH);

    // What a restart leaves: the stored name, the alarm and the hibernated sockets, and no memory.
    // A new instance's alarm learns the rest from the hub and the sockets' attachments.
    await runInDurableObject(stubOf(policyId), async (_old: HubShard, state: DurableObjectState) => {
      expect(await state.storage.getAlarm()).not.toBeNull();
      await new HubShard(state, env).alarm();
    });
    await until(() => pushedCount() === 5, "the pushes after the restart");
    expect(sockets.map((s) => s.pushed())).toEqual(sockets.map(() => [`policy:${policyId}:2`]));
    for (const s of sockets) s.close();
  });
});
