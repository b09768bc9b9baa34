import { describe, expect, it } from "vitest";
import { digestsEqual, hexBytes, sha256, sha256Hex } from "../../src/auth/secrets";
import { jsonEqual, jsonObjectsEqual } from "../../src/protocol/json-equal";

describe("jsonEqual (a heartbeat is a check-in whose record is otherwise equal)", () => {
  const record = { id: "a", tags: ["x", "y"], local_metadata: { host: { name: "h", ip: ["10.0.0.1"] } }, components: null, last_checkin: "t1" };

  it("agrees with comparing JSON.stringify output, key order aside", () => {
    const cases: Array<[unknown, unknown]> = [
      [record, structuredClone(record)],
      [record, { ...record, tags: ["y", "x"] }],
      [record, { ...record, local_metadata: { host: { name: "h", ip: ["10.0.0.2"] } } }],
      [record, { ...record, components: [] }],
      [record, { ...record, extra: 1 }],
      [{ a: 1, b: 2 }, { b: 2, a: 1 }],
      [{ a: 1, b: undefined }, { a: 1 }],
      [[1, [2, 3]], [1, [2, 3]]],
      [[1, 2], { 0: 1, 1: 2 }],
      [null, {}],
      ["1", 1],
      [0, false],
    ];
    for (const [a, b] of cases) {
      const sorted = (v: unknown): unknown =>
        Array.isArray(v) ? v.map(sorted) : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).sort().map(([k, x]) => [k, sorted(x)])) : v;
      expect(jsonEqual(a, b), JSON.stringify([a, b])).toBe(JSON.stringify(sorted(a)) === JSON.stringify(sorted(b)));
    }
  });

  it("ignores only the named top-level keys", () => {
    const times = new Set(["last_checkin"]);
    expect(jsonObjectsEqual(record, { ...record, last_checkin: "t2" }, times)).toBe(true);
    expect(jsonObjectsEqual(record, { ...record, last_checkin: "t2" })).toBe(false);
    expect(jsonObjectsEqual(record, { ...record, last_checkin: "t2", id: "b" }, times)).toBe(false);
    expect(jsonObjectsEqual({ ...record, local_metadata: { last_checkin: 1 } }, { ...record, local_metadata: { last_checkin: 2 } }, times)).toBe(false);
  });
});

describe("key hashes compared as bytes", () => {
  it("decodes a stored hex hash to the digest it spells, and refuses what is not hex", async () => {
    const hex = await sha256Hex("secret");
    expect(digestsEqual(await sha256("secret"), hexBytes(hex)!)).toBe(true);
    expect(digestsEqual(await sha256("secret2"), hexBytes(hex)!)).toBe(false);
    expect(digestsEqual(await sha256("secret"), hexBytes(hex.slice(2))!)).toBe(false);
    expect(hexBytes("abc")).toBeNull();
    expect(hexBytes("zz")).toBeNull();
    expect(hexBytes("ABCD")).toBeNull();
  });
});
