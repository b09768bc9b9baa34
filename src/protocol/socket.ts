import { z } from "zod";
import { AckRequest } from "./ack";
import { CheckinRequest } from "./checkin";
import { MAX_JSON_DEPTH, depthMessage, nestsDeeperThan, parseJsonText } from "./json-limits";

/**
 * The WebSocket channel, version 1: the check-in and ack semantics of the HTTP protocol as JSON
 * messages over one hibernating socket. Every message carries `"v":1`; requests carry an `id` that
 * the reply echoes. The server pushes `actions` the moment a new policy revision or action exists.
 */
export const SOCKET_PROTOCOL_VERSION = 1;

const Id = z.union([z.string().max(128), z.number().int()]);

export const SocketCheckin = z.object({
  v: z.literal(SOCKET_PROTOCOL_VERSION),
  type: z.literal("checkin"),
  id: Id,
  body: CheckinRequest.omit({ poll_timeout: true }),
});
export const SocketAck = z.object({ v: z.literal(SOCKET_PROTOCOL_VERSION), type: z.literal("ack"), id: Id, body: AckRequest });
/**
 * Keepalive: proxies and NATs on the way close a WebSocket that carries nothing for a while
 * (Cloudflare's proxy after 100 s, AWS load balancers after 60 s), and a check-in every few minutes
 * is not enough. Sent exactly as `PING`, it is answered with `PONG` by the runtime without waking
 * the object; any other spelling is answered by the object.
 */
export const SocketPing = z.object({ v: z.literal(SOCKET_PROTOCOL_VERSION), type: z.literal("ping") });
export const PING = JSON.stringify({ v: SOCKET_PROTOCOL_VERSION, type: "ping" });
export const PONG = JSON.stringify({ v: SOCKET_PROTOCOL_VERSION, type: "pong" });
export const SocketClientMessage = z.discriminatedUnion("type", [SocketCheckin, SocketAck, SocketPing]);
export type SocketClientMessage = z.infer<typeof SocketClientMessage>;

const CheckinBody = z.object({ ack_token: z.string(), action: z.literal("checkin"), actions: z.array(z.record(z.string(), z.json())).optional() });
const AckBody = z.object({
  action: z.literal("acks"),
  errors: z.literal(true).optional(),
  items: z.array(z.object({ status: z.number().int(), message: z.string() })).optional(),
});
const ErrorBody = z.object({ statusCode: z.number().int(), error: z.string(), message: z.string().optional() });

/** Server → agent. `checkin`/`ack` answer a request; `actions` is pushed; `error` answers a bad message; `pong` a ping. */
export const SocketServerMessage = z.discriminatedUnion("type", [
  z.object({ v: z.literal(1), type: z.literal("checkin"), id: Id, status: z.literal(200), body: CheckinBody }),
  z.object({ v: z.literal(1), type: z.literal("ack"), id: Id, status: z.number().int(), body: AckBody }),
  z.object({ v: z.literal(1), type: z.literal("actions"), body: CheckinBody }),
  z.object({ v: z.literal(1), type: z.literal("error"), id: Id.nullable(), status: z.number().int(), body: ErrorBody }),
  z.object({ v: z.literal(1), type: z.literal("pong") }),
]);
export type SocketServerMessage = z.infer<typeof SocketServerMessage>;

/** Close codes the server uses. */
export const CLOSE = {
  superseded: 4000,
  unenrolled: 4001,
  /** The agent moved to another policy: reconnect (its new policy's shard takes the socket). */
  reassigned: 4002,
  unauthorized: 4003,
  /** The policy's fan-out shards changed (docs/scale.md §4): reconnect now, the agent's new shard takes the socket. */
  moved: 4004,
  /** RFC 6455 §7.4.1: a message too big to process. */
  messageTooBig: 1009,
} as const;

/**
 * Largest message the server reads (docs/hardening.md). A check-in's stored fields fit in ~1.6 MB
 * (CHECKIN_FIELD_LIMITS) and an ack's body is 2 MiB over HTTP; the platform would deliver 32 MiB.
 */
export const MAX_SOCKET_MESSAGE_BYTES = 2 << 20;

/** A received message decoded: its JSON value, or why it was refused (`close`: the socket must close). */
export type DecodedMessage = { value: unknown } | { error: string; id?: string | number; close?: typeof CLOSE.messageTooBig };

/** Size, nesting and JSON checks of one received message, before its schema is applied. */
export function decodeSocketMessage(data: string | ArrayBuffer): DecodedMessage {
  // A string's UTF-8 size is at most 3 bytes per UTF-16 unit, and at least one.
  const size = typeof data === "string" ? (data.length * 3 <= MAX_SOCKET_MESSAGE_BYTES ? 0 : new TextEncoder().encode(data).byteLength) : data.byteLength;
  if (size > MAX_SOCKET_MESSAGE_BYTES) return { error: `message exceeds ${MAX_SOCKET_MESSAGE_BYTES} bytes`, close: CLOSE.messageTooBig };
  const text = typeof data === "string" ? data : new TextDecoder().decode(data);
  let value: unknown;
  try {
    value = parseJsonText(text);
  } catch {
    return { error: "Bad request: message is not JSON" };
  }
  // Parsing copes with any depth; everything after it recurses. The reply still names the request.
  if (nestsDeeperThan(text, MAX_JSON_DEPTH)) {
    const id = (value as { id?: unknown } | null)?.id;
    return { error: `Bad request: message: ${depthMessage()}`, ...(typeof id === "string" || typeof id === "number" ? { id } : {}) };
  }
  return { value };
}
