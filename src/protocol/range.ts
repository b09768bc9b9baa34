/**
 * `Range` header parsing as fleet-server's file delivery does it (a copy of Go's `net/http` parseRange,
 * `api/handleFileDelivery.go`): RFC 7233 byte ranges, suffix ranges, ends clamped to the size.
 */
export interface ByteRange {
  start: number;
  length: number;
}

export type RangeResult = { kind: "none" } | { kind: "ranges"; ranges: ByteRange[] } | { kind: "invalid" };

export function parseRange(header: string | null | undefined, size: number): RangeResult {
  if (!header) return { kind: "none" };
  const prefix = "bytes=";
  if (!header.startsWith(prefix)) return { kind: "invalid" };
  const ranges: ByteRange[] = [];
  let noOverlap = false;
  for (const part of header.slice(prefix.length).split(",")) {
    const spec = part.trim();
    if (spec === "") continue;
    const dash = spec.indexOf("-");
    if (dash < 0) return { kind: "invalid" };
    const startText = spec.slice(0, dash).trim();
    const endText = spec.slice(dash + 1).trim();
    if (startText === "") {
      // Suffix range: the last N bytes.
      if (endText === "" || endText.startsWith("-")) return { kind: "invalid" };
      let n = parseDecimal(endText);
      if (n === null || n <= 0) return { kind: "invalid" };
      if (n > size) n = size;
      ranges.push({ start: size - n, length: n });
      continue;
    }
    const start = parseDecimal(startText);
    if (start === null || start < 0) return { kind: "invalid" };
    if (start >= size) {
      noOverlap = true;
      continue;
    }
    if (endText === "") {
      ranges.push({ start, length: size - start });
      continue;
    }
    let end = parseDecimal(endText);
    if (end === null || start > end) return { kind: "invalid" };
    if (end >= size) end = size - 1;
    ranges.push({ start, length: end - start + 1 });
  }
  if (noOverlap && ranges.length === 0) return { kind: "invalid" };
  return { kind: "ranges", ranges };
}

/** Go's strconv.ParseInt(s, 10, 64) for the values a Range header can carry. */
function parseDecimal(text: string): number | null {
  if (!/^[+-]?\d+$/.test(text)) return null;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : null;
}

export const contentRange = (range: ByteRange, size: number): string => `bytes ${range.start}-${range.start + range.length - 1}/${size}`;
