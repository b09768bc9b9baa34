import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Directory } from "../durable/directory";
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
    expect(tierFor(1_000_000)).toBe(TIERS[TIERS.length - 1]);
    expect(enrollAdmission(tierFor(10_000))).toEqual({ ratePerSec: 500, burst: 1000 });
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
