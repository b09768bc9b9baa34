import { describe, expect, it } from "vitest";
import { RevisionCache, refOf } from "../../src/checkin/revision-cache";
import type { PolicyRevision } from "../../src/protocol/policy";

const revision = (policy_id: string, n: number, created_at = `2026-11-28T00:00:0${n}.000Z`): PolicyRevision => ({
  policy_id,
  revision: n,
  name: policy_id,
  namespace: "default",
  created_at,
  policy: { outputs: { default: { type: "elasticsearch" } }, revision: n },
});

describe("RevisionCache (revisions a Worker isolate holds)", () => {
  it("parses a sent revision once and then answers it from memory", () => {
    const cache = new RevisionCache(8);
    const r2 = revision("p", 2);
    const first = cache.resolve("p", refOf(r2), JSON.stringify(r2), undefined);
    expect(first).toEqual(r2);
    expect(cache.get("p")).toBe(first);
    // Another check-in that had started before the cache was filled gets the same object back.
    expect(cache.resolve("p", refOf(r2), JSON.stringify(r2), undefined)).toBe(first);
    // A shard that was told the isolate holds it answers by name only.
    expect(cache.resolve("p", refOf(r2), undefined, first)).toBe(first);
  });

  it("refuses an answer by name for a revision the check-in does not hold", () => {
    const cache = new RevisionCache(8);
    const r2 = revision("p", 2);
    expect(() => cache.resolve("p", refOf(r2), undefined, undefined)).toThrow(/does not hold it/);
    expect(() => cache.resolve("p", refOf(r2), undefined, revision("p", 1))).toThrow(/does not hold it/);
    // Same number, other revision (a reset hub): the name does not match either.
    expect(() => cache.resolve("p", refOf(r2), undefined, revision("p", 2, "2026-11-29T00:00:00.000Z"))).toThrow(/does not hold it/);
  });

  it("keeps the newest revision: an older one answered during a rollout does not evict it", () => {
    const cache = new RevisionCache(8);
    const r1 = revision("p", 1);
    const r2 = revision("p", 2);
    cache.resolve("p", refOf(r2), JSON.stringify(r2), undefined);
    expect(cache.resolve("p", refOf(r1), JSON.stringify(r1), cache.get("p"))).toEqual(r1);
    expect(cache.get("p")).toEqual(r2);
    const r3 = revision("p", 3);
    cache.resolve("p", refOf(r3), JSON.stringify(r3), cache.get("p"));
    expect(cache.get("p")).toEqual(r3);
  });

  it("holds at most its limit of policies, dropping the one stored longest ago", () => {
    const cache = new RevisionCache(2);
    for (const id of ["a", "b", "c"]) cache.resolve(id, refOf(revision(id, 1)), JSON.stringify(revision(id, 1)), undefined);
    expect(cache.get("a")).toBeUndefined();
    expect(cache.get("b")?.policy_id).toBe("b");
    expect(cache.get("c")?.policy_id).toBe("c");
  });
});
