import type { Env } from "../src/config";
import { agentObject } from "../src/durable-stubs";
import { ERROR_TABLE } from "../src/http/error-table";
import { isFailure, type Failure } from "../src/errors";
import { exchange, remoteConfig } from "../src/opamp/exchange";
import { AgentCapabilities, CommandType } from "../src/opamp/gen/opamp_pb";
import { accepts } from "../src/opamp/report";
import { encodeServerToAgent, errorAnswer, frame, idToUid, readSocketFrame } from "../src/opamp/wire";
import type { PolicyRevision } from "../src/protocol/policy";
import { CLOSE } from "../src/protocol/socket";
import type { RevisionClaim } from "../src/session/contract";
import { log } from "../src/log";
import type { SocketAttachment } from "./socket-channel";

export interface OpampSocketHost {
  env: Env;
  pendingPolicy(agentId: string, claim: RevisionClaim): { behind: PolicyRevision | null; revision: number };
}

/**
 * OpAMP over a hibernating WebSocket of a hub shard (opamp.md §2.1): each binary message is one
 * `AgentToServer` through the same exchange as HTTP (src/opamp/exchange.ts), answered with one
 * `ServerToAgent`; a new revision is pushed to the collector the moment its shard learns of it.
 */
export class OpampSocket {
  readonly #host: OpampSocketHost;

  constructor(host: OpampSocketHost) {
    this.#host = host;
  }

  async message(ws: WebSocket, attachment: SocketAttachment, data: string | ArrayBuffer): Promise<void> {
    const read = readSocketFrame(data);
    if ("close" in read) return ws.close(read.close, read.reason);
    if ("badRequest" in read) return send(ws, errorAnswer(new Uint8Array(), "BadRequest", read.badRequest));
    const message = read.message;
    const { agentId, connection } = attachment;
    let runs = attachment.revision;
    try {
      const answer = await exchange(this.#host.env, message, {
        agentId,
        viaEnrollmentToken: false,
        record: (input) => agentObject(this.#host.env, agentId).checkinOverSocket(connection, input),
        wait: async (outcome) => {
          const { behind, revision } = this.#host.pendingPolicy(agentId, outcome.claim);
          runs = behind ? behind.revision : revision;
          return behind ? { kind: "policy", revision: behind } : { kind: "none" };
        },
      });
      if (isFailure(answer)) return this.#refuse(ws, message.instanceUid, answer);
      ws.serializeAttachment({ ...attachment, revision: runs, capabilities: Number(message.capabilities) || attachment.capabilities } satisfies SocketAttachment);
      send(ws, encodeServerToAgent(answer));
      // The collector said goodbye (its record is offline now): close our side too.
      if (message.agentDisconnect) ws.close(1000, "agent_disconnect");
    } catch (err) {
      log.error("opamp.message_failed", { agent_id: agentId, error: (err as Error).message });
      send(ws, errorAnswer(message.instanceUid, "Unavailable", "the server could not process this message", 1_000));
    }
  }

  /** Pushes `target`'s config to a collector behind it that takes remote config. */
  async push(ws: WebSocket, attachment: SocketAttachment, target: PolicyRevision): Promise<boolean> {
    if (!accepts(attachment.capabilities ?? 0, AgentCapabilities.AgentCapabilities_AcceptsRemoteConfig)) return false;
    const config = await remoteConfig(target);
    ws.serializeAttachment({ ...attachment, revision: target.revision } satisfies SocketAttachment);
    send(ws, encodeServerToAgent({ instanceUid: idToUid(attachment.agentId), remoteConfig: config }));
    return true;
  }

  /** Sends the collector a requested restart (alone, §3.2), if one is due. */
  async pushRestart(ws: WebSocket, attachment: SocketAttachment): Promise<void> {
    if (!(await agentObject(this.#host.env, attachment.agentId).takeRestart(attachment.connection))) return;
    send(ws, encodeServerToAgent({ instanceUid: idToUid(attachment.agentId), command: { $typeName: "opamp.proto.ServerToAgentCommand", type: CommandType.CommandType_Restart } }));
  }

  /** Overload is UNAVAILABLE with retry info; an auth failure or a superseded socket closes it. */
  #refuse(ws: WebSocket, uid: Uint8Array, failure: Failure): void {
    if (failure.error === "RateLimit" || failure.error === "MaxLimit") return send(ws, errorAnswer(uid, "Unavailable", ERROR_TABLE[failure.error].message, failure.retryAfterMs ?? 30_000));
    if (failure.error === "SocketSuperseded") return ws.close(CLOSE.superseded, "superseded by a newer connection");
    if (ERROR_TABLE[failure.error].status === 401) return ws.close(CLOSE.unauthorized, ERROR_TABLE[failure.error].name);
    send(ws, errorAnswer(uid, "BadRequest", failure.detail ?? ERROR_TABLE[failure.error].message));
  }
}

function send(ws: WebSocket, payload: Uint8Array): void {
  try {
    ws.send(frame(payload));
  } catch {
    // closed meanwhile; the collector reconnects and reports again
  }
}
