import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { HubShard } from "../../durable/hub-shard";
import { parkedCount, putPolicy } from "../helpers";
import { BATCH, expectEveryPushed, expectLastBatchPushed, expectNextBatch, park, pollsWokenFirstBatch, revisionOf, settle, socketsPushedFirstBatch, stubOf, until } from "./pacing-helpers";

/**
 * Paced delivery (docs/scale.md §3) in the `fanout` project: ROLLOUT_RATE=12 agents/s and one shard
 * per policy of up to 8 agents, so a shard wakes 3 agents per 250 ms batch, and ROLLOUT_BURST=0, so
 * a delivery's first batch is one of those too (test/fanout-burst/ has the burst). The clock is held
 * (pacing-helpers.ts): each batch here is one `runDurableObjectAlarm`.
 */
describe("paced rollout wake-ups (ROLLOUT_RATE)", () => {
  it("wakes a delivery's parked polls in batches of the shard's share, oldest first, one batch per alarm", async () => {
    const polls = await pollsWokenFirstBatch("pace-polls", 7, BATCH);
    await expectNextBatch(polls, 2 * BATCH);
    await expectNextBatch(polls, 7);
    expect(polls.ids.map((id) => revisionOf(polls.answers.get(id)))).toEqual([2, 2, 2, 2, 2, 2, 2]);
    // Nothing left: no further batch is due.
    expect(await runDurableObjectAlarm(stubOf("pace-polls"))).toBe(false);
  });

  it("answers a check-in that is behind at once while the delivery is paced", async () => {
    const policyId = "pace-ask";
    const { ids, answers } = await pollsWokenFirstBatch(policyId, 6, BATCH);

    // A newcomer, and the newest waiter checking in again: neither waits for its batch.
    expect(revisionOf(await park(policyId, "ask-newcomer"))).toBe(2);
    expect(revisionOf(await park(policyId, ids[5]!))).toBe(2);
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
    const { ids, answers } = await pollsWokenFirstBatch(policyId, 6, BATCH);
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
    const sockets = await socketsPushedFirstBatch("pace-sockets", 5, BATCH);
    await expectLastBatchPushed(sockets);
    sockets.close();
  });

  it("finishes a paced delivery after the shard restarts, from what it stored and its sockets", async () => {
    const sockets = await socketsPushedFirstBatch("pace-restart", 5, BATCH);
    // What a restart leaves: the stored name, the alarm and the hibernated sockets, and no memory.
    // A new instance's alarm learns the rest from the hub and the sockets' attachments.
    await runInDurableObject(stubOf("pace-restart"), async (_old: HubShard, state: DurableObjectState) => {
      expect(await state.storage.getAlarm()).not.toBeNull();
      await new HubShard(state, env).alarm();
    });
    await expectEveryPushed(sockets, "the pushes after the restart");
    sockets.close();
  });
});
