import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { parseJsonText, serialisedBound } from "../../src/protocol/json-limits";
import { parseBody, withinBytes } from "../../src/protocol/parse";

const utf8 = new TextEncoder();
const bytesOf = (value: unknown): number => utf8.encode(JSON.stringify(value) ?? "").byteLength;

/** Every value inside `value`, itself included. */
function* parts(value: unknown): Generator<unknown> {
  yield value;
  if (typeof value === "object" && value !== null) for (const member of Object.values(value)) yield* parts(member);
}

describe("serialisedBound (a decoded body's fields are measured without serialising them)", () => {
  it("is never below what any part of a decoded value serialises to", () => {
    // Texts that re-serialise longer than they were: numbers printed in full or with an exponent
    // sign, escapes written raw, characters of 3 and 4 UTF-8 bytes.
    const worst = ["[1e20]", '{"a":1e20,"b":-1e20}', "[1e21,1e-7,1e-6]", '{"s":"\\u2028\\u00e9"}', '["\\ud83d\\ude00"]', '{"k":"€😀é"}', "[[[[0]]]]"];
    for (const text of worst) {
      const value = parseJsonText(text);
      for (const part of parts(value)) expect(bytesOf(part)).toBeLessThanOrEqual(serialisedBound(value));
    }
    const texts = fc.oneof(
      fc.json(),
      fc.jsonValue().map((v) => JSON.stringify(v, null, 1) ?? "null"),
      fc.array(fc.constantFrom("1e20", "-1e20", "1e-6", "5e-324", "1E2", "0.1e1", '"\\u2028"', '"😀"', "null"), { minLength: 1 }).map((items) => `[${items.join(",")}]`),
    );
    fc.assert(
      fc.property(texts, (text) => {
        const value = parseJsonText(text);
        for (const part of parts(value)) if (bytesOf(part) > serialisedBound(value)) return false;
        return true;
      }),
      { seed: 20261203, numRuns: 2_000 },
    );
  });

  it("is unknown (Infinity) for values not decoded by parseJsonText, and for primitives", () => {
    expect(serialisedBound(JSON.parse('{"a":1}'))).toBe(Infinity);
    expect(serialisedBound(parseJsonText('"text"'))).toBe(Infinity);
    expect(serialisedBound(parseJsonText('{"a":1}'))).toBe(42);
  });

  it("lets withinBytes pass small decoded bodies and still refuse a field over its limit", () => {
    const Body = z.object({ note: withinBytes(z.string(), 64) });
    expect(parseBody(Body, parseJsonText('{"note":"short"}'))).toEqual({ note: "short" });
    // The body's bound (6 × its length) is over the limit here, so the field is measured.
    const long = JSON.stringify({ note: "x".repeat(100) });
    expect(() => parseBody(Body, parseJsonText(long))).toThrow("note: larger than the limit of 64 bytes (as JSON)");
    expect(() => parseBody(Body, JSON.parse(long))).toThrow("note: larger than the limit of 64 bytes (as JSON)");
    // A field that fits its limit is accepted whether or not the body's bound was known.
    expect(parseBody(Body, JSON.parse(JSON.stringify({ note: "y".repeat(60) })))).toEqual({ note: "y".repeat(60) });
  });
});
