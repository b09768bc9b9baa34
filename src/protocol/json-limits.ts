/**
 * Limits on the shape of JSON the server accepts (docs/hardening.md). Deep nesting is refused
 * before `JSON.parse`: the parse itself copes, but everything after it recurses (structured clone
 * into a Durable Object, schema validation, equality checks), and 3,000 levels overflow the stack.
 */

/** Deepest nesting of arrays and objects in any JSON body or socket message; the body itself is level 1. */
export const MAX_JSON_DEPTH = 64;

/**
 * Whether JSON text nests arrays or objects more than `max` levels deep. A scan of the text that
 * skips strings; it does not check the text is valid JSON (`JSON.parse` does that next).
 */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c /* \ */) i++;
      else if (ch === 0x22 /* " */) inString = false;
    } else if (ch === 0x22) {
      inString = true;
    } else if (ch === 0x7b /* { */ || ch === 0x5b /* [ */) {
      if (++depth > max) return true;
    } else if (ch === 0x7d /* } */ || ch === 0x5d /* ] */) {
      depth--;
    }
  }
  return false;
}

export const depthMessage = (max = MAX_JSON_DEPTH): string => `JSON nests deeper than ${max} levels`;

const utf8 = new TextEncoder();

/** Length of the JSON text each decoded body or message came from (see `serialisedBound`). */
const decodedLength = new WeakMap<object, number>();

/** `JSON.parse`, remembering the text's length for `serialisedBound`. */
export function parseJsonText(text: string): unknown {
  const value: unknown = JSON.parse(text);
  if (typeof value === "object" && value !== null) decodedLength.set(value, text.length);
  return value;
}

/**
 * The most UTF-8 bytes any part of `value` serialises to as JSON, when `value` came from
 * `parseJsonText` (else Infinity): 6 per character of its text. Re-serialising drops whitespace,
 * keeps or shortens escapes, writes a character in at most 3 bytes, and grows only numbers, at most
 * 5.25× (`1e20` prints as 21 digits). A field under this bound fits any limit above it, so a
 * check-in's fields need not be serialised to be measured (that was ~3% of the Worker's CPU per check-in, profiled in node).
 */
export function serialisedBound(value: unknown): number {
  const length = typeof value === "object" && value !== null ? decodedLength.get(value) : undefined;
  return length === undefined ? Infinity : 6 * length;
}

/**
 * Whether a value fits in `maxBytes` serialised as JSON in UTF-8: what a SQLite row or an
 * Elasticsearch document holds of it. Most values are decided from their UTF-16 length alone.
 */
export function jsonFits(value: unknown, maxBytes: number): boolean {
  const text = JSON.stringify(value) ?? "";
  if (text.length * 3 <= maxBytes) return true;
  if (text.length > maxBytes) return false;
  return utf8.encode(text).byteLength <= maxBytes;
}
