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
