import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  AgentToServerSchema,
  ServerCapabilities,
  ServerErrorResponseType,
  ServerToAgentSchema,
  type AgentToServer,
  type ServerToAgent,
} from "./gen/opamp_pb";

/** What this server does (opamp.md §3.2): sent in every answer, so a client's first answer always has it. */
export const SERVER_CAPABILITIES =
  ServerCapabilities.ServerCapabilities_AcceptsStatus |
  ServerCapabilities.ServerCapabilities_OffersRemoteConfig |
  ServerCapabilities.ServerCapabilities_AcceptsEffectiveConfig |
  ServerCapabilities.ServerCapabilities_OffersConnectionSettings;

/** Messages above this, once decompressed, are refused (413 over HTTP, close 1009 on a socket). */
export const MAX_MESSAGE_BYTES = 4 << 20;

/** Decodes an `AgentToServer`; null when the bytes are not one or its `instance_uid` is not 16 bytes. */
export function decodeAgentToServer(bytes: Uint8Array): { message: AgentToServer } | { error: string } {
  let message: AgentToServer;
  try {
    message = fromBinary(AgentToServerSchema, bytes);
  } catch (err) {
    return { error: `not an AgentToServer message: ${(err as Error).message}` };
  }
  if (message.instanceUid.length !== 16) return { error: `instance_uid must be 16 bytes, got ${message.instanceUid.length}` };
  return { message };
}

/** A `ServerToAgent` with the server's capabilities, unless it is an error response (exclusive, §3.2). */
export function encodeServerToAgent(message: Partial<Omit<ServerToAgent, "$typeName">>): Uint8Array<ArrayBuffer> {
  return toBinary(ServerToAgentSchema, create(ServerToAgentSchema, { ...(message.errorResponse ? {} : { capabilities: BigInt(SERVER_CAPABILITIES) }), ...message }));
}

/** `error_response` is exclusive with every other field but `instance_uid` (opamp.md §3.2). */
export function errorAnswer(instanceUid: Uint8Array, type: "BadRequest" | "Unavailable", text: string, retryAfterMs?: number): Uint8Array<ArrayBuffer> {
  return toBinary(
    ServerToAgentSchema,
    create(ServerToAgentSchema, {
      instanceUid,
      errorResponse: {
        type: type === "BadRequest" ? ServerErrorResponseType.ServerErrorResponseType_BadRequest : ServerErrorResponseType.ServerErrorResponseType_Unavailable,
        errorMessage: text,
        ...(retryAfterMs !== undefined
          ? { Details: { case: "retryInfo", value: { retryAfterNanoseconds: BigInt(Math.ceil(retryAfterMs)) * 1_000_000n } } }
          : {}),
      },
    }),
  );
}

/** `instance_uid` bytes as the canonical UUID string this server uses as the agent id. */
export function uidToId(uid: Uint8Array): string {
  const hex = Array.from(uid, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function idToUid(id: string): Uint8Array {
  const hex = id.replace(/-/g, "");
  return Uint8Array.from({ length: 16 }, (_, i) => parseInt(hex.slice(2 * i, 2 * i + 2), 16));
}

/** A new UUIDv7 (RFC 9562 §5.7): 48 bits of milliseconds, version 7, variant 10, random rest. */
export function newUuidV7(now = Date.now()): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let ms = now;
  for (let i = 5; i >= 0; i--) {
    bytes[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  bytes[6] = (bytes[6]! & 0x0f) | 0x70;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  return uidToId(bytes);
}

/**
 * A WebSocket message's payload (opamp.md §2.1): `varint(header)` then the protobuf; the header
 * must be 0, which is the single byte 0x00.
 */
export function unframe(data: ArrayBuffer): Uint8Array | { error: string } {
  const bytes = new Uint8Array(data);
  if (bytes.length === 0) return { error: "empty WebSocket message: the varint header is missing" };
  if (bytes[0] !== 0) return { error: "the WebSocket message header must be 0" };
  return bytes.subarray(1);
}

export function frame(payload: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(payload.length + 1);
  out.set(payload, 1);
  return out;
}

/** A WebSocket message read as an `AgentToServer`, or how to refuse it (opamp.md §2.1). */
export type SocketFrame =
  | { message: AgentToServer }
  /** Malformed: answered with a BAD_REQUEST error response, the socket stays open. */
  | { badRequest: string }
  /** Too big (1009) or not binary (1003): the socket closes. */
  | { close: number; reason: string };

export function readSocketFrame(data: string | ArrayBuffer): SocketFrame {
  if (typeof data === "string") return { close: 1003, reason: "OpAMP messages are binary" };
  if (data.byteLength > MAX_MESSAGE_BYTES + 1) return { close: 1009, reason: `message exceeds ${MAX_MESSAGE_BYTES} bytes` };
  const payload = unframe(data);
  if ("error" in payload) return { badRequest: payload.error };
  const decoded = decodeAgentToServer(payload);
  return "error" in decoded ? { badRequest: decoded.error } : decoded;
}
