import { describe, expect, it } from "vitest";
import { changedPaths, pathChanges } from "../../src/policy/diff";

describe("pathChanges", () => {
  it("lists changed, added and removed leaves with their values, in document order", () => {
    const before = { outputs: { default: { hosts: ["https://a:9200"], preset: "balanced" } }, agent: { logging: { level: "info" } }, old: 1 };
    const after = { outputs: { default: { hosts: ["https://a:9200", "https://b:9200"], preset: "balanced" } }, agent: { logging: { level: "debug" } }, inputs: [{ id: "x" }] };
    expect(pathChanges(before, after, 100)).toEqual({
      changes: [
        { path: "outputs.default.hosts[1]", after: "https://b:9200" },
        { path: "agent.logging.level", before: "info", after: "debug" },
        { path: "old", before: 1 },
        { path: "inputs[0].id", after: "x" },
      ],
      omitted: 0,
    });
  });

  it("quotes keys that are not plain names, and gives a shape change both whole values", () => {
    expect(pathChanges({ "a.b": { "x y": 1 }, s: { k: 1 } }, { "a.b": { "x y": 2 }, s: "flat" }, 10).changes).toEqual([
      { path: '"a.b"."x y"', before: 1, after: 2 },
      { path: "s", before: { k: 1 }, after: "flat" },
    ]);
  });

  it("lists an empty object or list as one leaf, and nothing for equal content", () => {
    expect(pathChanges({}, { inputs: [], agent: {} }, 10).changes).toEqual([
      { path: "inputs", after: [] },
      { path: "agent", after: {} },
    ]);
    expect(pathChanges({ a: [1, { b: null }] }, { a: [1, { b: null }] }, 10)).toEqual({ changes: [], omitted: 0 });
  });

  it("stops at the limit and counts the rest; without a limit it agrees with changedPaths on leaf edits", () => {
    const before = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`k${i}`, i]));
    const after = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`k${i}`, i + 1]));
    const limited = pathChanges(before, after, 5);
    expect(limited.changes.map((c) => c.path)).toEqual(["k0", "k1", "k2", "k3", "k4"]);
    expect(limited.omitted).toBe(25);
    expect(pathChanges(before, after, 1_000).changes).toHaveLength(changedPaths(before, after));
  });
});
