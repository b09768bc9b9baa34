import { SELF, env, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { revisionCache } from "../../src/checkin/revision-cache";
import { hubShardAt, policyHub } from "../../src/durable-stubs";
import { agentBucket } from "../../src/policy/staged-rollout";
import { BASE, agentHeaders, checkinRequest, enrolledAgent, json, putPolicy, queueAction, type Enrolled } from "../helpers";

/**
 * Per-policy shard counts (docs/scale.md §4) in the `fanout` project: POLICY_HUB_SHARDS=auto with 8
 * agents a shard, so a policy of 9 agents has 2 shards. Agents choose their ids at enrollment, so
 * each test knows which agents move (those whose bucket is odd: shard 1 of 2).
 */
type CheckinBody = { ack_token: string; action: string; actions?: Array<{ id: string; type: string }> };

/** An agent id whose shard among 2 is `shard`. */
function idInShard(shard: number): string {
  for (;;) {
    const id = crypto.randomUUID();
    if (agentBucket(id) % 2 === shard) return id;
  }
}

const enrollIn = (policyId: string, shard: number) => enrolledAgent(policyId, { id: idInShard(shard) });

const parkedIn = (policyId: string, index: number) => hubShardAt(env, policyId, index).parkedCount();
const hubStub = (policyId: string) => env.POLICY_HUBS.get(env.POLICY_HUBS.idFromName(policyId));

async function until(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Grows the policy to 9 agents and waits until its hub has 2 shards. The hub counts its roster at
 * most every 10 s and otherwise on its alarm: run that alarm rather than wait for it.
 */
async function growToTwoShards(policyId: string, have: number): Promise<void> {
  for (let i = have; i < 9; i++) await enrolledAgent(policyId);
  await until(async () => {
    await runDurableObjectAlarm(hubStub(policyId));
    return (await policyHub(env, policyId).snapshot()).shards === 2;
  }, "the hub's second shard");
}

/** A long poll that holds 30 s (poll_timeout 2m30s less fleet-server's 2 minutes), reporting revision `revision`. */
const longPoll = (agent: Enrolled, policyId: string, revision: number) =>
  checkinRequest(agent, { agent_policy_id: policyId, policy_revision_idx: revision, poll_timeout: "2m30s" }).then((res) => json<CheckinBody>(res));

describe("per-policy shard counts (POLICY_HUB_SHARDS=auto)", () => {
  it("grows a policy past the threshold to 2 shards without losing a parked poll, and delivers revisions and actions through them", async () => {
    const policyId = "grow-polls";
    await putPolicy(policyId);
    const agents = [await enrollIn(policyId, 0), await enrollIn(policyId, 0), await enrollIn(policyId, 1), await enrollIn(policyId, 1)];
    expect((await policyHub(env, policyId).snapshot()).shards).toBe(1);

    const polls = agents.map((agent) => longPoll(agent, policyId, 1));
    await until(async () => (await parkedIn(policyId, 0)) === 4, "four polls in shard 0");

    await growToTwoShards(policyId, agents.length);
    // Shard 0 let the odd agents' polls go as "moved", and the Worker parked them again in shard 1.
    await until(async () => (await parkedIn(policyId, 0)) === 2 && (await parkedIn(policyId, 1)) === 2, "the polls split over both shards");
    expect(revisionCache.shardsOf(policyId)).toBe(2);

    // Every poll is still open and gets the next revision.
    await putPolicy(policyId, { agent: { logging: { level: "debug" } } });
    const answers = await Promise.all(polls);
    expect(answers.map((a) => a.actions?.[0]?.id)).toEqual(agents.map(() => `policy:${policyId}:2`));

    // An action for an agent of shard 1 wakes its poll there.
    const moved = agents[2]!;
    const poll = longPoll(moved, policyId, 2);
    await until(async () => (await parkedIn(policyId, 1)) === 1, "the moved agent's poll in shard 1");
    const action = await queueAction(moved.id, { type: "SETTINGS", data: { log_level: "debug" }, expiration: new Date(Date.now() + 3_600_000).toISOString() });
    expect((await poll).actions?.map((a) => a.id)).toEqual([action.id]);
  });

  it("answers a poll sent by a stale shard count \"moved\", and the Worker's one retry lands in the right shard", async () => {
    const policyId = "grow-stale";
    await putPolicy(policyId);
    const odd = await enrollIn(policyId, 1);
    await growToTwoShards(policyId, 1);

    // The shard the old count picks says where the agent lives now.
    expect(await hubShardAt(env, policyId, 0).park(policyId, { agentId: odd.id, shard: 0, claim: { stored: 1 }, actionSeq: 0, holdMs: 0 })).toEqual({ kind: "moved", shards: 2 });

    // Over HTTP, from an isolate that still believes in one shard: answered, and it learns two.
    revisionCache.learnShards(policyId, 1);
    const answer = await json<CheckinBody>(await checkinRequest(odd, { agent_policy_id: policyId, policy_revision_idx: 0 }));
    expect(answer.actions?.[0]?.id).toBe(`policy:${policyId}:1`);
    expect(revisionCache.shardsOf(policyId)).toBe(2);

    revisionCache.learnShards(policyId, 1);
    const poll = longPoll(odd, policyId, 1);
    await until(async () => (await parkedIn(policyId, 1)) === 1, "the poll in shard 1");
    expect(await parkedIn(policyId, 0)).toBe(0);
    await putPolicy(policyId, { agent: { logging: { level: "debug" } } });
    expect((await poll).actions?.[0]?.id).toBe(`policy:${policyId}:2`);
  });

  it("moves a socket whose agent now belongs to another shard (close 4004), and the reconnected socket gets the next revision", async () => {
    const policyId = "grow-ws";
    await putPolicy(policyId);
    const odd = await enrollIn(policyId, 1);
    const connect = async () => {
      const res = await SELF.fetch(`${BASE}/api/fleet/agents/${odd.id}/ws`, { headers: { ...agentHeaders(), Authorization: `ApiKey ${odd.key}`, Upgrade: "websocket" } });
      expect(res.status).toBe(101);
      const ws = res.webSocket!;
      ws.accept();
      const state = { messages: [] as Array<{ type: string; body: CheckinBody }>, closed: null as number | null };
      ws.addEventListener("message", (event) => {
        state.messages.push(JSON.parse(event.data as string) as { type: string; body: CheckinBody });
      });
      ws.addEventListener("close", (event) => {
        state.closed = event.code;
      });
      ws.send(JSON.stringify({ v: 1, type: "checkin", id: 1, body: { status: "online", message: "Running", agent_policy_id: policyId, policy_revision_idx: 1 } }));
      await until(() => state.messages.length === 1, "the check-in's answer");
      return { ws, state };
    };
    const first = await connect();
    await growToTwoShards(policyId, 1);
    await until(() => first.state.closed !== null, "the socket's close");
    expect(first.state.closed).toBe(4004);

    const second = await connect();
    await putPolicy(policyId, { agent: { logging: { level: "debug" } } });
    await until(() => second.state.messages.some((m) => m.type === "actions"), "the pushed revision");
    expect(second.state.messages.find((m) => m.type === "actions")!.body.actions?.[0]?.id).toBe(`policy:${policyId}:2`);
    second.ws.close(1000);
  });
});
