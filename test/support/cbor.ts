/**
 * A small CBOR (RFC 8949) decoder for tests: what Elasticsearch answers to `Accept: application/cbor`
 * (Jackson writes indefinite-length maps). Byte strings decode to Uint8Array, as Kibana's decoder gives
 * Buffers; text strings to strings.
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
          out = bytes.slice(at, at + n);
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
