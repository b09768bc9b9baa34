import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { putPolicy } from "../helpers";
import {
  BATCH,
  expectFirstBatch,
  expectLastBatchPushed,
  expectNextBatch,
  parkAll,
  pollsWokenFirstBatch,
  revisionOf,
  socketsPushedFirstBatch,
  stubOf,
  type Polls,
} from "../fanout/pacing-helpers";

/**
 * The burst of paced delivery (docs/scale.md §3) in the `fanout-burst` project: the `fanout`
 * project's scale (ROLLOUT_RATE=12 agents/s, one shard, 3 agents per 250 ms batch) with
 * ROLLOUT_BURST=5. A delivery to a shard that paced nothing for as long as the rate takes to earn
 * the burst back (5 agents at 12/s: 5/12 s) starts with 5 agents at once; the rest, and any delivery
 * sooner, go 3 per batch. The clock is held (pacing-helpers.ts): each batch is one
 * `runDurableObjectAlarm`, and time moves only where a test moves it.
 */
const BURST = 5;
/** The first whole millisecond at which the shard counts as quiet again after a batch. */
const QUIET_MS = Math.ceil((BURST / 12) * 1000);

/**
 * Parks the polls again, on the revision they were woken to, moves the clock `afterMs` on and
 * publishes the next revision (a logging `level` the policy did not have): checks its first batch
 * was the oldest `firstBatch` polls, then lets the alarm wake the rest.
 */
async function redeliver({ policyId, ids }: Polls, running: number, level: string, afterMs: number, firstBatch: number): Promise<void> {
  const polls = await parkAll(policyId, ids, running);
  vi.setSystemTime(Date.now() + afterMs);
  await putPolicy(policyId, { agent: { logging: { level } } });
  await expectFirstBatch(polls, firstBatch, running + 1);
  await expectNextBatch(polls, ids.length);
  expect(ids.map((id) => revisionOf(polls.answers.get(id)))).toEqual(ids.map(() => running + 1));
  expect(await runDurableObjectAlarm(stubOf(policyId))).toBe(false);
}

describe("the burst that starts a paced delivery (ROLLOUT_BURST)", () => {
  it("wakes the burst of a quiet shard's parked polls at once, oldest first, then paces the rest in batches", async () => {
    const polls = await pollsWokenFirstBatch("burst-polls", 11, BURST);
    await expectNextBatch(polls, BURST + BATCH);
    await expectNextBatch(polls, 11);
    expect(polls.ids.map((id) => revisionOf(polls.answers.get(id)))).toEqual(polls.ids.map(() => 2));
    expect(await runDurableObjectAlarm(stubOf("burst-polls"))).toBe(false);
  });

  it("gives a delivery just short of the quiet time after a batch only a batch, and one a quiet time after the burst again", async () => {
    const polls = await pollsWokenFirstBatch("burst-again", 6, BURST);
    await expectNextBatch(polls, 6);
    expect(await runDurableObjectAlarm(stubOf("burst-again"))).toBe(false);
    // A new interval (250 ms or more on), but the last batch ran less than 5/12 s ago: no burst.
    await redeliver(polls, 2, "info", QUIET_MS - 1, BATCH);
    // Nothing paced for 5/12 s since that delivery's last batch: the burst again.
    await redeliver(polls, 3, "warning", QUIET_MS, BURST);
  });

  it("pushes the burst to a quiet shard's sockets at once, then the rest in a batch", async () => {
    const sockets = await socketsPushedFirstBatch("burst-sockets", 7, BURST);
    await expectLastBatchPushed(sockets);
    sockets.close();
  });
});
