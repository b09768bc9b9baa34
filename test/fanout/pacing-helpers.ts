import { SELF, env, runDurableObjectAlarm } from "cloudflare:test";
import { expect, onTestFinished, vi } from "vitest";
import type { HubShard } from "../../durable/hub-shard";
import type { ParkResult } from "../../src/checkin/shard-contract";
import { hubShardAt } from "../../src/durable-stubs";
import { BASE, agentHeaders, enrolledAgent, parkedCount, putPolicy } from "../helpers";

/**
 * Paced delivery (docs/scale.md §3) with a few agents, for the projects that run at ROLLOUT_RATE=12
 * agents/s with one fan-out shard per policy of up to 8 agents: a shard wakes 3 agents per 250 ms
 * batch. With the clock held (`holdClock`) the shard's next batch is due on an alarm the runtime would
 * only fire a day from now, so each batch is one `runDurableObjectAlarm`, and nothing runs between
 * them by itself.
 */
export const BATCH = 3;

/** Holds Date a day ahead, until the test ends: the pacing interval only moves as the test moves it. */
export function holdClock(): void {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(Date.now() + 86_400_000);
  onTestFinished(() => {
    vi.useRealTimers();
  });
}

const shardOf = (policyId: string) => hubShardAt(env, policyId, 0);
export const stubOf = (policyId: string) => shardOf(policyId) as unknown as DurableObjectStub<HubShard>;
const agentIds = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

/** Parks a check-in of the agent, running `revision`, in the policy's shard 0; resolves with its answer. */
export const park = (policyId: string, agentId: string, revision = 1) =>
  shardOf(policyId).park(policyId, { agentId, shard: 0, claim: { stored: revision, reported: { policyId, revision } }, actionSeq: 0, holdMs: 600_000 });

/** Polls parked in a policy's shard 0, oldest first, and what each was answered, as it comes. */
export interface Polls {
  policyId: string;
  ids: string[];
  answers: Map<string, ParkResult>;
}

/** Parks `ids` in order (oldest first) where none are parked, each running `revision`. */
export async function parkAll(policyId: string, ids: string[], revision = 1): Promise<Polls> {
  const answers = new Map<string, ParkResult>();
  for (const [i, agentId] of ids.entries()) {
    void park(policyId, agentId, revision).then((answer) => answers.set(agentId, answer));
    await until(async () => (await parkedCount(policyId)) === i + 1, `${agentId} parked`);
  }
  return { policyId, ids, answers };
}

/**
 * `count` polls parked on a new policy's revision 1, then, with the clock held, revision 2 published:
 * returns once the first batch was answered (checked by `expectFirstBatch`).
 */
export async function pollsWokenFirstBatch(policyId: string, count: number, firstBatch: number): Promise<Polls> {
  await putPolicy(policyId);
  const polls = await parkAll(policyId, agentIds(policyId, count));
  holdClock();
  await putPolicy(policyId, { agent: { logging: { level: "debug" } } });
  await expectFirstBatch(polls, firstBatch, 2);
  return polls;
}

/** Waits for a delivery's first batch and checks it woke the oldest `firstBatch` polls to `revision`, and no more. */
export async function expectFirstBatch({ policyId, ids, answers }: Polls, firstBatch: number, revision: number): Promise<void> {
  await until(() => answers.size >= firstBatch, "the first batch");
  await settle();
  const woken = ids.slice(0, firstBatch);
  expect(new Set(answers.keys())).toEqual(new Set(woken));
  expect(woken.map((id) => revisionOf(answers.get(id)))).toEqual(woken.map(() => revision));
  expect(await parkedCount(policyId)).toBe(ids.length - firstBatch);
}

/** Runs the shard's next batch (its alarm) and checks that then the oldest `upTo` polls, and no more, were answered. */
export async function expectNextBatch({ policyId, ids, answers }: Polls, upTo: number): Promise<void> {
  expect(await runDurableObjectAlarm(stubOf(policyId))).toBe(true);
  await until(() => answers.size >= upTo, `the batch that answers ${upTo}`);
  await settle();
  expect(new Set(answers.keys())).toEqual(new Set(ids.slice(0, upTo)));
}

export async function until(check: () => Promise<boolean> | boolean, what = "condition"): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Lets answers already sent arrive, so a count that should not grow is seen not to. */
export const settle = () => new Promise((resolve) => setTimeout(resolve, 100));

export const revisionOf = (answer: ParkResult | undefined) => (answer?.kind === "policy" ? answer.ref.revision : answer?.kind);

/** An agent's socket, answered its first check-in (so it runs revision 1), with what it was pushed since. */
export async function socketAgent(policyId: string) {
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

/** Socket agents of a policy, how many of them were pushed something, and closing them all. */
export interface Sockets {
  policyId: string;
  sockets: Array<Awaited<ReturnType<typeof socketAgent>>>;
  pushedCount: () => number;
  close: () => void;
}

/**
 * `count` socket agents on a new policy's revision 1, then, with the clock held, revision 2 published:
 * returns once the first batch of pushes arrived, after checking it was `firstBatch` sockets and no more.
 */
export async function socketsPushedFirstBatch(policyId: string, count: number, firstBatch: number): Promise<Sockets> {
  await putPolicy(policyId);
  const sockets: Sockets["sockets"] = [];
  for (let i = 0; i < count; i++) sockets.push(await socketAgent(policyId));
  holdClock();
  await putPolicy(policyId, { agent: { logging: { level: "debug" } } });
  const pushedCount = () => sockets.filter((s) => s.pushed().length > 0).length;
  await until(() => pushedCount() >= firstBatch, "the first batch of pushes");
  await settle();
  expect(pushedCount()).toBe(firstBatch);
  const close = () => {
    for (const s of sockets) s.close();
  };
  return { policyId, sockets, pushedCount, close };
}

/** Waits until every socket was pushed, and checks each was pushed revision 2, once. */
export async function expectEveryPushed({ policyId, sockets, pushedCount }: Sockets, what: string): Promise<void> {
  await until(() => pushedCount() === sockets.length, what);
  expect(sockets.map((s) => s.pushed())).toEqual(sockets.map(() => [`policy:${policyId}:2`]));
}

/** Runs the shard's next batch (its alarm) and checks that it pushed to every socket left, and that no batch is due after it. */
export async function expectLastBatchPushed(sockets: Sockets): Promise<void> {
  expect(await runDurableObjectAlarm(stubOf(sockets.policyId))).toBe(true);
  await expectEveryPushed(sockets, "the last batch of pushes");
  expect(await runDurableObjectAlarm(stubOf(sockets.policyId))).toBe(false);
}
