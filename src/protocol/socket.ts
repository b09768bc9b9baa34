import { z } from "zod";
import { AckRequest } from "./ack";
import { CheckinRequest } from "./checkin";

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
} as const;
