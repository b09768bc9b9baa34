/**
 * CBOR (RFC 8949), as far as Elasticsearch's file documents need it. fleet-server writes upload
 * chunks as CBOR so that `data` is a byte string, and reads delivery chunks back as CBOR so that a
 * 4 MiB chunk arrives as 4 MiB of bytes rather than as a 5.6 MB base64 string to decode.
 */

/** A definite-length CBOR map (RFC 8949) of text keys to text, boolean or byte-string values. */
export function cborMap(entries: Array<[string, string | boolean | Uint8Array]>): Uint8Array {
  const parts: Uint8Array[] = [head(5, entries.length)];
  const utf8 = new TextEncoder();
  for (const [key, value] of entries) {
    const k = utf8.encode(key);
    parts.push(head(3, k.length), k);
    if (typeof value === "boolean") parts.push(Uint8Array.of(value ? 0xf5 : 0xf4));
    else if (typeof value === "string") {
      const v = utf8.encode(value);
      parts.push(head(3, v.length), v);
    } else parts.push(head(2, value.length), value);
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function head(major: number, length: number): Uint8Array {
  const m = major << 5;
  if (length < 24) return Uint8Array.of(m | length);
  if (length < 0x100) return Uint8Array.of(m | 24, length);
  if (length < 0x10000) return Uint8Array.of(m | 25, length >> 8, length & 0xff);
  return Uint8Array.of(m | 26, (length >>> 24) & 0xff, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff);
}

/**
 * Decodes one CBOR item: what Elasticsearch answers to `Accept: application/cbor` (Jackson writes
 * indefinite-length maps). Byte strings decode to views of `bytes` (no copy), text to strings.
 */
export function decodeCbor(bytes: Uint8Array): unknown {
  let at = 0;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const BREAK = Symbol("break");

  function length(info: number): number | null {
    if (info < 24) return info;
    if (info === 24) return bytes[at++]!;
    if (info === 25) return (at += 2), view.getUint16(at - 2);
    if (info === 26) return (at += 4), view.getUint32(at - 4);
    if (info === 27) return (at += 8), Number(view.getBigUint64(at - 8));
    if (info === 31) return null;
    throw new Error(`cbor: bad additional info ${info}`);
  }

  function item(): unknown {
    const initial = bytes[at++]!;
    if (initial === 0xff) return BREAK;
    const major = initial >> 5;
    const info = initial & 0x1f;
    switch (major) {
      case 0:
        return length(info);
      case 1:
        return -1 - length(info)!;
      case 2:
      case 3: {
        const n = length(info);
        let out: Uint8Array;
        if (n === null) {
          const parts: Uint8Array[] = [];
          for (let part = item(); part !== BREAK; part = item()) parts.push(typeof part === "string" ? new TextEncoder().encode(part) : (part as Uint8Array));
          out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
          let o = 0;
          for (const p of parts) out.set(p, (o += p.length) - p.length);
        } else {
          out = bytes.subarray(at, at + n);
          at += n;
        }
        return major === 2 ? out : new TextDecoder().decode(out);
      }
      case 4: {
        const n = length(info);
        const list: unknown[] = [];
        if (n === null) for (let v = item(); v !== BREAK; v = item()) list.push(v);
        else for (let i = 0; i < n; i++) list.push(item());
        return list;
      }
      case 5: {
        const n = length(info);
        const map: Record<string, unknown> = {};
        if (n === null) for (let k = item(); k !== BREAK; k = item()) map[String(k)] = item();
        else for (let i = 0; i < n; i++) map[String(item())] = item();
        return map;
      }
      case 6:
        length(info);
        return item();
      default:
        if (info === 20) return false;
        if (info === 21) return true;
        if (info === 22 || info === 23) return null;
        if (info === 25) return (at += 2), half(view.getUint16(at - 2));
        if (info === 26) return (at += 4), view.getFloat32(at - 4);
        if (info === 27) return (at += 8), view.getFloat64(at - 8);
        throw new Error(`cbor: unsupported simple value ${info}`);
    }
  }

  function half(h: number): number {
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    const sign = h & 0x8000 ? -1 : 1;
    if (exp === 0) return sign * 2 ** -14 * (mant / 1024);
    if (exp === 31) return mant ? NaN : sign * Infinity;
    return sign * 2 ** (exp - 15) * (1 + mant / 1024);
  }

  return item();
}
