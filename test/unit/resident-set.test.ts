import { describe, expect, it } from "vitest";
import { ResidentSet } from "../../durable/resident-set";

describe("ResidentSet (agents loaded in an AgentStore)", () => {
  it("loads once, keeps the same object for concurrent calls, and unloads the least recently used idle one", () => {
    const loads: string[] = [];
    const set = new ResidentSet<{ id: string }>(2);
    const load = (id: string) => () => (loads.push(id), { id });

    const a = set.enter("a", load("a"));
    set.leave("a", true);
    set.enter("b", load("b"));
    set.leave("b", true);
    expect(set.enter("a", load("a"))).toBe(a); // a is now the most recent
    set.leave("a", true);
    set.enter("c", load("c"));
    set.leave("c", true);
    // b was the least recently used idle entry.
    expect(set.size).toBe(2);
    set.enter("b", load("b"));
    expect(loads).toEqual(["a", "b", "c", "b"]);
  });

  it("never unloads an object while a call on it is in progress", () => {
    const set = new ResidentSet<object>(1);
    const busy = set.enter("busy", () => ({}));
    set.enter("other", () => ({}));
    set.leave("other", true);
    // Over capacity, but "busy" is mid-call: the idle one goes instead.
    expect(set.size).toBe(1);
    expect(set.enter("busy", () => ({}))).toBe(busy);
    set.leave("busy", true);
    set.leave("busy", true);
    expect(set.enter("busy", () => ({}))).toBe(busy);
  });

  it("forgets an id that names nothing once its last call ends", () => {
    const set = new ResidentSet<object>(10);
    const ghost = set.enter("ghost", () => ({}));
    expect(set.enter("ghost", () => ({}))).toBe(ghost);
    set.leave("ghost", false);
    expect(set.size).toBe(1); // one call still running
    set.leave("ghost", false);
    expect(set.size).toBe(0);
  });

  it("keeps a pinned object past capacity until it is unpinned", () => {
    const dirty = new Set<string>();
    const set = new ResidentSet<{ id: string }>(1, (value) => dirty.has(value.id));
    const a = set.enter("a", () => ({ id: "a" }));
    dirty.add("a");
    set.leave("a", true);
    set.enter("b", () => ({ id: "b" }));
    set.leave("b", true);
    // Over capacity: the pinned "a" stays though it is the oldest; the idle "b" goes.
    expect(set.size).toBe(1);
    expect(set.enter("a", () => ({ id: "a" }))).toBe(a);
    set.leave("a", true);
    dirty.delete("a");
    set.enter("c", () => ({ id: "c" }));
    set.leave("c", true);
    const reloaded = set.enter("a", () => ({ id: "a" }));
    expect(reloaded).not.toBe(a);
  });
});
