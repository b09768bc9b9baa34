import { checkinInput } from "../src/checkin/checkin-input";
import type { Env } from "../src/config";
import { agentObject } from "../src/durable-stubs";
import { isFailure, type ErrorCode, type Failure } from "../src/errors";
import { errorBody } from "../src/http/error-response";
import { ERROR_TABLE } from "../src/http/error-table";
import type { DeliveredAction } from "../src/protocol/action";
import type { PolicyRevision } from "../src/protocol/policy";
import { CLOSE, PONG, SocketClientMessage, decodeSocketMessage, type SocketServerMessage } from "../src/protocol/socket";
import { safeParseDecoded } from "../src/protocol/parse";
import { ack } from "../src/session/ack";
import { checkin, policyAnswer } from "../src/session/checkin";
import type { RevisionClaim } from "../src/session/contract";
import { log } from "../src/log";
import { OpampSocket } from "./opamp-socket";

/** What a socket remembers across hibernation (serialised, well under the 2 KiB attachment limit). */
export interface SocketAttachment {
  agentId: string;
  policyId: string;
  connection: string;
  version: string;
  /** Revision the agent is known to run or has been sent: pushes go only to sockets behind. */
  revision: number;
  /** The last ack_token sent: pushes deliver only actions after it. */
  ackToken: string;
  /** An OpenTelemetry collector's OpAMP socket (durable/opamp-socket.ts) rather than an Elastic Agent's. */
  protocol?: "opamp";
  /** OpAMP: the collector's `AgentCapabilities` from its latest message. */
  capabilities?: number;
}

export interface ChannelHost {
  ctx: DurableObjectState;
  env: Env;
  /** The revision an agent should run (a staged rollout may hold it back). */
  targetFor(agentId: string): PolicyRevision | null;
  /** The revision the agent is behind, if any, and the one it runs (the shard's one rule). */
  pendingPolicy(agentId: string, claim: RevisionClaim): { behind: PolicyRevision | null; revision: number };
}

/** What a delivery does with one socket: push the revision its agent is behind, or move it to the agent's new shard. */
type SocketWork = { kind: "push"; revision: PolicyRevision } | { kind: "move" };

/** Concurrent pushes while fanning a revision out (each may call the agent's store for its keys). */
const PUSH_CONCURRENCY = 32;

const agentTag = (agentId: string): string => `agent:${agentId}`;

/**
 * The object's sockets that are still open. `getWebSockets` may also return sockets already
 * closing (platform.md §3.1): pushing to one loses the message, and closing one again throws.
 */
const openSockets = (ctx: DurableObjectState, tag?: string): WebSocket[] =>
  ctx.getWebSockets(tag).filter((ws) => ws.readyState === WebSocket.OPEN);

/**
 * The WebSocket side of a hub shard: sockets accepted with hibernation, and a codec over the
 * session's check-in and ack flows (src/session/) for their messages. A socket check-in never waits:
 * new revisions and actions are pushed the moment they exist.
 */
export class SocketChannel {
  readonly #host: ChannelHost;
  readonly #opamp: OpampSocket;

  constructor(host: ChannelHost) {
    this.#host = host;
    this.#opamp = new OpampSocket(host);
  }

  /** Accepts an authenticated upgrade; an older socket of the same agent is closed. */
  accept(agentId: string, connection: string, version: string, policyId: string, protocol?: "opamp"): Response {
    const { ctx } = this.#host;
    this.close(agentId, CLOSE.superseded, "superseded by a newer connection");
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    ctx.acceptWebSocket(server, [agentTag(agentId)]);
    const attachment: SocketAttachment = { agentId, policyId, connection, version, revision: -1, ackToken: "", ...(protocol ? { protocol } : {}) };
    server.serializeAttachment(attachment);
    return new Response(null, { status: 101, webSocket: client });
  }

  /** Closes the agent's sockets, or only the one of `connection` (so a newer socket stays open). */
  close(agentId: string, code: number, reason: string, connection?: string): void {
    for (const ws of openSockets(this.#host.ctx, agentTag(agentId))) {
      if (connection === undefined || (ws.deserializeAttachment() as SocketAttachment | null)?.connection === connection) ws.close(code, reason);
    }
  }

  /** The policy a socket belongs to (kept in its attachment across hibernation). */
  policyOf(ws: WebSocket): string | null {
    return (ws.deserializeAttachment() as SocketAttachment | null)?.policyId ?? null;
  }

  async message(ws: WebSocket, data: string | ArrayBuffer): Promise<void> {
    const attachment = ws.deserializeAttachment() as SocketAttachment;
    if (attachment.protocol === "opamp") return this.#opamp.message(ws, attachment, data);
    const decoded = decodeSocketMessage(data);
    if ("error" in decoded) {
      // Too big to read: RFC 6455's close, not an answer the agent would meet again on its retry.
      if (decoded.close) return ws.close(decoded.close, decoded.error);
      return send(ws, errorMessage(decoded.id ?? null, "BadRequest", decoded.error));
    }
    const raw = decoded.value;
    const parsed = safeParseDecoded(SocketClientMessage, raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const id = (raw as { id?: unknown } | null)?.id;
      return send(ws, errorMessage(typeof id === "string" || typeof id === "number" ? id : null, "BadRequest", `Bad request: ${issue.path.join(".") || "message"}: ${issue.message}`));
    }
    const message = parsed.data;
    // Like the runtime's own answer to an exact ping: a keepalive, not a sign of the agent's health.
    if (message.type === "ping") return sendText(ws, PONG);
    try {
      if (message.type === "checkin") await this.#checkin(ws, attachment, message.id, message.body);
      else await this.#ack(ws, attachment, message.id, message.body.events ?? []);
    } catch (err) {
      // Never leave a message unanswered: the agent would wait for a reply that cannot come. A 500
      // tells it to send the message again (check-ins and acks are both idempotent).
      log.error("socket.message_failed", { agent_id: attachment.agentId, type: message.type, error: (err as Error).message });
      send(ws, errorMessage(message.id, "Internal", "the server could not process this message; send it again"));
    }
  }

  async closed(ws: WebSocket): Promise<void> {
    const attachment = ws.deserializeAttachment() as SocketAttachment | null;
    if (attachment) await agentObject(this.#host.env, attachment.agentId).detachSocket(attachment.connection);
  }

  /**
   * The sockets a delivery has work for, as a queue to `serve` from (first in the order the runtime
   * lists them, which is the order they were accepted): each agent behind its target revision, and
   * each held here although its agent now belongs to another shard (`owns`).
   */
  due(owns: (agentId: string) => boolean): WebSocket[] {
    return openSockets(this.#host.ctx)
      .filter((ws) => this.#work(ws, owns) !== null)
      .reverse();
  }

  /**
   * Serves up to `limit` sockets from the end of `queue` (which it shortens), skipping any no longer
   * due: pushes the revision the agent is behind, or closes the socket with `CLOSE.moved` so the agent
   * reconnects to its new shard. Returns how many it served.
   */
  async serve(queue: WebSocket[], limit: number, owns: (agentId: string) => boolean): Promise<number> {
    const batch: Array<{ ws: WebSocket; work: SocketWork }> = [];
    while (batch.length < limit && queue.length > 0) {
      const ws = queue.pop()!;
      const work = ws.readyState === WebSocket.OPEN ? this.#work(ws, owns) : null;
      if (work) batch.push({ ws, work });
    }
    for (let i = 0; i < batch.length; i += PUSH_CONCURRENCY) {
      await Promise.all(batch.slice(i, i + PUSH_CONCURRENCY).map(({ ws, work }) => this.#serveOne(ws, work)));
    }
    return batch.length;
  }

  #work(ws: WebSocket, owns: (agentId: string) => boolean): SocketWork | null {
    const attachment = ws.deserializeAttachment() as SocketAttachment | null;
    if (!attachment) return null;
    if (!owns(attachment.agentId)) return { kind: "move" };
    const target = this.#host.targetFor(attachment.agentId);
    return target && attachment.revision < target.revision ? { kind: "push", revision: target } : null;
  }

  async #serveOne(ws: WebSocket, work: SocketWork): Promise<void> {
    if (work.kind === "move") return ws.close(CLOSE.moved, "the policy's fan-out changed: reconnect");
    const attachment = ws.deserializeAttachment() as SocketAttachment;
    if (attachment.protocol === "opamp") return void (await this.#opamp.push(ws, attachment, work.revision));
    const answer = await policyAnswer(this.#host.env, attachment.agentId, work.revision);
    if (answer.kind !== "policy") return;
    ws.serializeAttachment({ ...attachment, revision: answer.revision });
    sendText(ws, `{"v":1,"type":"actions","body":${answer.body}}`);
  }

  /** Whether the agent has an open socket here. */
  holds(agentId: string): boolean {
    return openSockets(this.#host.ctx, agentTag(agentId)).length > 0;
  }

  /** Pushes the agent's actions stored after the last ack_token sent on its socket. Returns false without a socket. */
  async pushActions(agentId: string): Promise<boolean> {
    // Only an open socket takes the action; otherwise the parked poll that replaced it must be released.
    const sockets = openSockets(this.#host.ctx, agentTag(agentId));
    if (sockets.length === 0) return false;
    for (const ws of sockets) {
      const attachment = ws.deserializeAttachment() as SocketAttachment;
      // A collector takes no Fleet actions (its store refuses them); its wake-up is a restart command.
      if (attachment.protocol === "opamp") {
        await this.#opamp.pushRestart(ws, attachment);
        continue;
      }
      const pending = await agentObject(this.#host.env, agentId).pendingActions(attachment.ackToken || undefined);
      if (pending.actions.length === 0) continue;
      ws.serializeAttachment({ ...attachment, ackToken: pending.ackToken });
      send(ws, { v: 1, type: "actions", body: { ack_token: pending.ackToken, action: "checkin", actions: asJson(pending.actions) } });
    }
    return true;
  }

  async #checkin(ws: WebSocket, attachment: SocketAttachment, id: string | number, body: Extract<SocketClientMessage, { type: "checkin" }>["body"]): Promise<void> {
    const { agentId, connection } = attachment;
    const input = checkinInput(body, attachment.version);
    let runs = attachment.revision;
    const answer = await checkin(this.#host.env, agentId, {
      record: () => agentObject(this.#host.env, agentId).checkinOverSocket(connection, input),
      wait: async (outcome) => {
        const { behind, revision } = this.#host.pendingPolicy(agentId, outcome.claim);
        runs = revision;
        return behind ? { kind: "policy", revision: behind } : { kind: "none" };
      },
    });
    if (isFailure(answer)) return this.#refuse(ws, id, answer);
    switch (answer.kind) {
      case "policy":
        ws.serializeAttachment({ ...attachment, revision: answer.revision });
        return sendText(ws, `{"v":1,"type":"checkin","id":${JSON.stringify(id)},"status":200,"body":${answer.body}}`);
      case "actions":
        ws.serializeAttachment({ ...attachment, ackToken: answer.ackToken || attachment.ackToken });
        return send(ws, { v: 1, type: "checkin", id, status: 200, body: { ack_token: answer.ackToken, action: "checkin", actions: asJson(answer.actions) } });
      case "none":
        ws.serializeAttachment({ ...attachment, revision: runs, ackToken: answer.ackToken || attachment.ackToken });
        return send(ws, { v: 1, type: "checkin", id, status: 200, body: { ack_token: answer.ackToken, action: "checkin" } });
    }
  }

  async #ack(ws: WebSocket, attachment: SocketAttachment, id: string | number, events: NonNullable<Extract<SocketClientMessage, { type: "ack" }>["body"]["events"]>): Promise<void> {
    const answer = await ack(() => agentObject(this.#host.env, attachment.agentId).ackOverSocket(attachment.connection, events));
    if (isFailure(answer)) return this.#refuse(ws, id, answer);
    send(ws, { v: 1, type: "ack", id, status: answer.status, body: answer.body });
  }

  /**
   * A replaced socket ends as replaced (its agent already speaks on another channel); an auth
   * failure ends it too: the agent must reconnect with a valid key (and will get 401).
   */
  #refuse(ws: WebSocket, id: string | number, failure: Failure): void {
    send(ws, errorMessage(id, failure.error, failure.detail));
    if (failure.error === "SocketSuperseded") ws.close(CLOSE.superseded, "superseded by a newer connection");
    else if (ERROR_TABLE[failure.error].status === 401) ws.close(CLOSE.unauthorized, ERROR_TABLE[failure.error].name);
  }
}

function send(ws: WebSocket, message: SocketServerMessage): void {
  sendText(ws, JSON.stringify(message));
}

/** A message already serialised; its fields in the order `JSON.stringify` would write a `SocketServerMessage`. */
function sendText(ws: WebSocket, text: string): void {
  try {
    ws.send(text);
  } catch {
    // The socket closed while we were working; the agent's next connection catches up.
  }
}

function errorMessage(id: string | number | null, code: ErrorCode, detail?: string): SocketServerMessage {
  const body = errorBody(code, detail);
  return { v: 1, type: "error", id, status: body.statusCode, body };
}

const asJson = (actions: DeliveredAction[]) => actions as unknown as Array<Record<string, never>>;
