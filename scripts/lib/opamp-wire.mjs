// The few OpAMP protobuf fields the fleet simulator speaks (opamp.proto, as compiled into opamp-go
// v0.23.0): enough to enroll, apply remote config and report it, without a protobuf toolchain in
// plain scripts. The server uses generated code (src/opamp/gen/).

/** Capabilities a simulated collector states: ReportsStatus | AcceptsRemoteConfig | ReportsRemoteConfig | AcceptsOpAMPConnectionSettings. */
export const COLLECTOR_CAPABILITIES = 0x1 | 0x2 | 0x1000 | 0x100;
export const APPLIED = 1;

function varint(n) {
  const out = [];
  let v = BigInt(n);
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return out;
}

const field = (number, wire) => varint((number << 3) | wire);
const bytesField = (number, bytes) => [...field(number, 2), ...varint(bytes.length), ...bytes];

/** AgentToServer{instance_uid, sequence_num, capabilities, remote_config_status?{hash, status}}. */
export function encodeAgentToServer({ uid, seq, capabilities = COLLECTOR_CAPABILITIES, applied }) {
  const out = [...bytesField(1, uid), ...field(2, 0), ...varint(seq), ...field(4, 0), ...varint(capabilities)];
  if (applied) out.push(...bytesField(7, [...bytesField(1, applied), ...field(2, 0), ...varint(APPLIED)]));
  return Uint8Array.from(out);
}

/** Reads fields of one message: number → list of values (Uint8Array for length-delimited, BigInt for varints). */
function readFields(bytes) {
  const fields = new Map();
  let i = 0;
  const readVarint = () => {
    let shift = 0n;
    let value = 0n;
    for (;;) {
      const byte = bytes[i++];
      value |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return value;
      shift += 7n;
    }
  };
  while (i < bytes.length) {
    const key = Number(readVarint());
    const number = key >> 3;
    const wire = key & 7;
    let value;
    if (wire === 0) value = readVarint();
    else if (wire === 2) {
      const length = Number(readVarint());
      value = bytes.subarray(i, i + length);
      i += length;
    } else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else throw new Error(`unsupported wire type ${wire}`);
    if (value !== undefined) fields.set(number, [...(fields.get(number) ?? []), value]);
  }
  return fields;
}

const text = (bytes) => new TextDecoder().decode(bytes);

/** ServerToAgent's parts a collector acts on: remote config hash, offered Authorization header, error. */
export function decodeServerToAgent(bytes) {
  const top = readFields(bytes);
  const result = { configHash: null, authorization: null, error: null };
  const remote = top.get(3)?.[0];
  if (remote) result.configHash = text(readFields(remote).get(2)?.[0] ?? new Uint8Array());
  const settings = top.get(4)?.[0];
  const opamp = settings && readFields(settings).get(2)?.[0];
  const headers = opamp && readFields(opamp).get(2)?.[0];
  for (const header of (headers && readFields(headers).get(1)) ?? []) {
    const h = readFields(header);
    if (text(h.get(1)?.[0] ?? new Uint8Array()) === "Authorization") result.authorization = text(h.get(2)[0]);
  }
  const error = top.get(2)?.[0];
  if (error) result.error = text(readFields(error).get(2)?.[0] ?? new Uint8Array());
  return result;
}

/** The revision a config hash of this server names (`policy:<id>:<revision>:<digest>`). */
export const revisionOfHash = (hash) => Number(/^policy:[^:]+:(\d+):/.exec(hash ?? "")?.[1] ?? 0);
