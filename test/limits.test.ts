import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Directory } from "../durable/directory";
import { HubShard } from "../durable/hub-shard";
import type { ParkResult } from "../src/checkin/shard-contract";
import { policyHub } from "../src/durable-stubs";
import { TIERS, enrollAdmission, tierFor } from "../src/limits/tiers";
import { TokenBucket, retryAfterSeconds } from "../src/limits/token-bucket";
import { ackRequest, createEnrollmentKey, enrolledAgent, putPolicy } from "./helpers";

describe("token bucket", () => {
  it("admits a burst, then the refill rate, and says when the next token comes", () => {
    let now = 0;
    const bucket = new TokenBucket(10, 3, () => now);
    expect([bucket.take(), bucket.take(), bucket.take()].every((r) => r.ok)).toBe(true);
    expect(bucket.take()).toEqual({ ok: false, retryAfterMs: 100 });
    now = 100;
    expect(bucket.take()).toEqual({ ok: true });
    now = 10_000;
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()].map((r) => r.ok)).toEqual([true, true, true, false]);
  });

  it("spreads Retry-After so refused agents do not return together", () => {
    expect(retryAfterSeconds(100, 30, () => 0)).toBe(1);
    expect(retryAfterSeconds(2500, 30, () => 0.5)).toBe(18);
  });
});

describe("tiers", () => {
  it("pick the smallest tier that holds the fleet, as fleet-server does", () => {
    expect(tierFor(300).checkin).toEqual({ ratePerSec: 200, burst: 100, max: 500 });
    expect(tierFor(10_000).checkin).toEqual({ ratePerSec: 1000, burst: 2000, max: 10_000 });
    expect(tierFor(10_001).maxAgents).toBe(20_000);
    expect(tierFor(80_000)).toBe(TIERS[TIERS.length - 1]);
    expect(tierFor(Infinity)).toBe(TIERS[TIERS.length - 1]);
    expect(enrollAdmission(tierFor(10_000))).toEqual({ ratePerSec: 500, burst: 1000 });
  });

  it("give a fleet larger than one fleet-server process holds the limits of as many processes (not enrollment)", () => {
    const last = TIERS[TIERS.length - 1]!;
    // 1,000,000 agents, with a quarter's headroom for an uneven spread over shards: 16 processes of
    // 80,000 held check-ins each, so every agent can hold its poll.
    const million = tierFor(1_000_000);
    expect(million.checkin).toEqual({ ratePerSec: 16 * 4000, burst: 16 * 8000, max: 1_280_000 });
    expect(million.ack).toEqual({ ratePerSec: 16 * 4000, burst: 16 * 8000, max: 16 * 16_000 });
    expect(million.enroll).toEqual(last.enroll);
    expect(tierFor(80_001).checkin.max).toBe(160_000);
    expect(tierFor(128_000).checkin.max).toBe(160_000);
    expect(tierFor(128_001).checkin.max).toBe(240_000);
  });
});

describe("admission control", () => {
  it("answers a flood from one agent with 429 RateLimit, Retry-After and fleet-server's body, and loses nothing", async () => {
    const agent = await enrolledAgent("limits-agent");
    const statuses: number[] = [];
    let refused: Response | undefined;
    const started = Date.now();
    for (let i = 0; i < 40; i++) {
      const res = await ackRequest(agent, []);
      statuses.push(res.status);
      if (res.status === 429 && !refused) refused = res;
      else await res.arrayBuffer();
    }
    // A burst of 30, then 3 more per second while the flood lasts: how many more depends on how long
    // this loop took on a busy machine, but never fewer than the burst and never everything.
    const refill = Math.floor(((Date.now() - started) / 1000) * 3);
    const ok = statuses.filter((s) => s === 200).length;
    expect(ok).toBeGreaterThanOrEqual(30);
    expect(ok).toBeLessThanOrEqual(30 + refill);
    expect(statuses.filter((s) => s === 429).length).toBe(40 - ok);
    expect(ok).toBeLessThan(40);
    expect(refused!.headers.get("Retry-After")).toMatch(/^\d+$/);
    expect(Number(refused!.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
    expect(await refused!.json()).toEqual({ statusCode: 429, error: "RateLimit", message: "exceeded the rate limit" });
  });

  it("admits a policy's check-ins into a shard at the tier's rate and parks at most the tier's max", async () => {
    await putPolicy("limits-park");
    const stub = env.HUB_SHARDS.get(env.HUB_SHARDS.idFromName("limits-park#0")) as unknown as DurableObjectStub<HubShard>;
    const { burst, ratePerSec, max } = tierFor(500).checkin;
    const outcome = await runInDurableObject(stub, async (_: HubShard, state: DurableObjectState) => {
      // The smallest tier (burst 100, 200/s, 500 parked) on a policy with one shard, which takes it all.
      const shard = new HubShard(state, { ...env, FLEET_MAX_AGENTS: "500", POLICY_HUB_SHARDS: "1" });
      // The hub says the policy has one shard, which takes the whole tier.
      await shard.deliver("limits-park", { ...(await policyHub(env, "limits-park").snapshot()), shards: 1 }, 0);
      const refused: ParkResult[] = [];
      const parked: string[] = [];
      const park = (agentId: string) => {
        let answer: ParkResult | null = null;
        void shard
          .park("limits-park", { agentId, shard: 0, claim: { stored: 1, reported: { policyId: "limits-park", revision: 1 } }, actionSeq: 0, holdMs: 60_000 })
          .then((result) => (answer = result));
        return () => answer;
      };
      // A storm: 150 agents at once. Refusals answer at once; admitted agents wait for a revision.
      const stormStarted = Date.now();
      const storm = Array.from({ length: 150 }, (_, i) => ({ agentId: `storm-${i}`, answer: park(`storm-${i}`) }));
      await new Promise((resolve) => setTimeout(resolve, 50));
      for (const { agentId, answer } of storm) {
        const result = answer();
        if (result) refused.push(result);
        else parked.push(agentId);
      }
      const stormParked = parked.length;
      const stormMs = Date.now() - stormStarted;
      // Then one agent every 5 ms until the shard holds its maximum and the next is turned away.
      let full: ParkResult | null = null;
      for (let i = 0; full === null && i < 1000; i++) {
        const answer = park(`late-${i}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
        const result = answer();
        if (result?.kind === "busy" && result.error === "MaxLimit") full = result;
        else if (result === null) parked.push(`late-${i}`);
      }
      const held = await shard.parkedCount();
      for (const agentId of parked) await shard.abandon(agentId);
      return { stormParked, stormMs, refused, full, held };
    });
    // The rule: the burst at once, then the refill rate for as long as the storm took to arrive. How
    // long that was depends on the machine, so the bound is measured, not assumed to be zero.
    expect(outcome.stormParked).toBeGreaterThanOrEqual(burst);
    expect(outcome.stormParked).toBeLessThanOrEqual(burst + Math.ceil((outcome.stormMs / 1000) * ratePerSec));
    expect(outcome.stormParked).toBeLessThan(150);
    expect(outcome.refused).toHaveLength(150 - outcome.stormParked);
    for (const result of outcome.refused) {
      expect(result).toEqual({ kind: "busy", error: "RateLimit", retryAfterMs: expect.any(Number) });
      if (result.kind === "busy") expect(result.retryAfterMs).toBeLessThanOrEqual(1000 / ratePerSec + 1);
    }
    expect(outcome.held).toBe(max);
    expect(outcome.full).toEqual({ kind: "busy", error: "MaxLimit", retryAfterMs: 30_000 });
  });

  it("admits enrollments at the Directory's rate: a storm beyond the burst is refused", async () => {
    await putPolicy("limits-enroll");
    const key = await createEnrollmentKey("limits-enroll");
    const [id, secret] = atob(key.api_key).split(":") as [string, string];
    // Straight at the Directory, faster than HTTP could deliver them: a burst of 1,000 (the Directory's floor).
    const stub = env.DIRECTORY.get(env.DIRECTORY.idFromName("fleet")) as unknown as DurableObjectStub<Directory>;
    const outcomes = await runInDurableObject(stub, async (directory: Directory) => {
      const results = [];
      for (let i = 0; i < 1100; i++) results.push(await directory.resolveEnrollmentKey({ id, secret }, true));
      return results;
    });
    const limited = outcomes.filter((o) => "error" in o && o.error === "RateLimit");
    expect(outcomes.length - limited.length).toBeGreaterThanOrEqual(1000);
    expect(limited.length).toBeGreaterThan(0);
    expect(limited[0]).toMatchObject({ error: "RateLimit", retryAfterMs: expect.any(Number) });
    // Let the Directory's bucket refill (1,000 at 500/s) so no other test meets an empty one.
    await new Promise((resolve) => setTimeout(resolve, 2100));

  });
});
