import { gunzipSync } from "node:zlib";
import { Hono, type Context } from "hono";
import { authenticateAgent, isKnownKey, orAuthError } from "../auth/agent-auth";
import { agentIdOfAccessKey } from "../auth/access-key";
import { parseApiKeyHeader, type ApiKey } from "../auth/api-key";
import type { AppEnv, Env } from "../config";
import { callAgentShard, forwardSocket } from "../checkin/agent-shard";
import { agentObject, directory } from "../durable-stubs";
import { FleetError, isFailure, orThrow, type Failure } from "../errors";
import { ERROR_TABLE } from "../http/error-table";
import { readLimitedBytes } from "../http/raw-body";
import { OPAMP_AGENT_TYPE } from "../opamp/collector";
import { exchange, type OpampPath } from "../opamp/exchange";
import { AgentCapabilities, AgentToServerFlags, type AgentToServer } from "../opamp/gen/opamp_pb";
import { accepts } from "../opamp/report";
import { MAX_MESSAGE_BYTES, decodeAgentToServer, encodeServerToAgent, errorAnswer, frame, newUuidV7, readSocketFrame, uidToId } from "../opamp/wire";
import type { PolicyRevision } from "../protocol/policy";
import { CLOSE } from "../protocol/socket";
import type { CheckinWake } from "../session/checkin";
import type { CheckinOutcome } from "../session/contract";

const PROTOBUF = "application/x-protobuf";
/** Answers above this are gzipped when the collector accepts it. */
const COMPRESSION_THRESHOLD = 1024;

/**
 * `POST /v1/opamp` (opamp.md §2.2): OpAMP over plain HTTP, a codec over the session's check-in
 * flow (src/opamp/exchange.ts). The collector authenticates with `Authorization: ApiKey` and
 * either its policy's enrollment token (it is enrolled on its first message) or its own credential,
 * which the answer to an enrollment-token message offers it (docs/opamp.md).
 */
export const opamp = new Hono<AppEnv>().post("/v1/opamp", async (c) => {
  const key = parseApiKeyHeader(c.req.header("Authorization"));
  const type = (c.req.header("Content-Type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== PROTOBUF) throw new FleetError("BadRequest", `Bad request: Content-Type must be ${PROTOBUF}`);
  const bytes = await readMessage(c.req.raw);
  const decoded = decodeAgentToServer(bytes);
  if ("error" in decoded) {
    // Nothing more for a caller we do not know; a known one learns what was wrong with its message.
    if (!(await isKnownKey(c.env, key))) throw new FleetError("Unauthorized");
    return protobuf(c, errorAnswer(new Uint8Array(), "BadRequest", decoded.error));
  }
  const message = decoded.message;
  const path = await pathOf(c.env, key, message);
  const answer = orThrow(await orAuthError(c.env, key, await exchange(c.env, message, path)));
  return protobuf(c, encodeServerToAgent(answer));
}).get("/v1/opamp", async (c) => {
  if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") throw new FleetError("UpgradeRequired");
  const key = parseApiKeyHeader(c.req.header("Authorization"));
  const owner = agentIdOfAccessKey(key.id);
  if (owner === null) return enrollmentSocket(c, key);
  // The collector's own credential: its socket hibernates in its policy's shard, which pushes new revisions.
  const { policyId } = await authenticateAgent(c.env, key, owner);
  const connection = crypto.randomUUID();
  const refused = await agentObject(c.env, owner).attachSocket(connection);
  if (refused) throw new FleetError(refused.error, refused.detail);
  const headers = new Headers(c.req.raw.headers);
  headers.set("X-Fleet-Agent-Id", owner);
  headers.set("X-Fleet-Connection", connection);
  headers.set("X-Fleet-Policy-Id", policyId);
  headers.set("X-Fleet-Protocol", "opamp");
  return forwardSocket(c.env, policyId, owner, c.req.url, headers);
});

/**
 * A WebSocket opened with the enrollment token: the collector's uid is not known until its first
 * message, so no shard can hold it. The Worker holds it and answers each message as an HTTP poll
 * would (enrollment, credential, config): no push. A collector that takes the offered credential
 * reconnects with it and gets a hibernating, pushed-to socket (docs/opamp.md).
 */
async function enrollmentSocket(c: Context<AppEnv>, key: ApiKey): Promise<Response> {
  orThrow(await directory(c.env).resolveEnrollmentKey(key));
  const pair = new WebSocketPair();
  const [client, server] = [pair[0], pair[1]];
  server.accept();
  let queue: Promise<void> = Promise.resolve();
  const handle = async (received: string | ArrayBuffer | Blob) => {
    const read = readSocketFrame(received instanceof Blob ? await received.arrayBuffer() : received);
    if ("close" in read) return server.close(read.close, read.reason);
    if ("badRequest" in read) return server.send(frame(errorAnswer(new Uint8Array(), "BadRequest", read.badRequest)));
    try {
      const path = await pathOf(c.env, key, read.message);
      const answer = await exchange(c.env, read.message, path);
      if (isFailure(answer)) {
        if (answer.error === "RateLimit" || answer.error === "MaxLimit") return server.send(frame(errorAnswer(read.message.instanceUid, "Unavailable", ERROR_TABLE[answer.error].message, answer.retryAfterMs ?? 30_000)));
        return server.close(CLOSE.unauthorized, ERROR_TABLE[answer.error].name);
      }
      server.send(frame(encodeServerToAgent(answer)));
      if (read.message.agentDisconnect) server.close(1000, "agent_disconnect");
    } catch (err) {
      if (err instanceof FleetError && ERROR_TABLE[err.code].status === 401) return server.close(CLOSE.unauthorized, ERROR_TABLE[err.code].name);
      server.send(frame(errorAnswer(read.message.instanceUid, "Unavailable", "the server could not process this message", 1_000)));
    }
  };
  server.addEventListener("message", (event) => {
    queue = queue.then(() => handle(event.data as string | ArrayBuffer | Blob)).catch(() => undefined);
    c.executionCtx.waitUntil(queue);
  });
  server.addEventListener("close", (event) => {
    try {
      server.close(event.code === 1005 || event.code === 1006 ? 1000 : event.code, event.reason);
    } catch {
      // already closed
    }
  });
  return new Response(null, { status: 101, webSocket: client });
}

/**
 * Who is speaking and how the message reaches its record: the collector's own credential names
 * its agent (it must be the message's uid); an enrollment token enrolls the uid into the token's
 * policy, or a new uid when the collector asks for one or its uid is another collector's.
 */
async function pathOf(env: Env, key: ApiKey, message: AgentToServer): Promise<OpampPath> {
  const uidId = uidToId(message.instanceUid);
  const owner = agentIdOfAccessKey(key.id);
  const ask = (agentId: string) => ({ wait: (outcome: CheckinOutcome) => askShard(env, agentId, outcome) });
  if (owner !== null) {
    if (owner !== uidId) await orAuthError(env, key, { error: "AgentIdentity" as const });
    return { agentId: owner, viaEnrollmentToken: false, record: (input) => agentObject(env, owner).checkin(key, input), ...ask(owner) };
  }
  const enrollment = orThrow(await directory(env).resolveEnrollmentKey(key));
  const takesCredential = accepts(Number(message.capabilities), AgentCapabilities.AgentCapabilities_AcceptsOpAMPConnectionSettings);
  // A fresh credential for a known collector only when its client starts a session (sequence 0: it
  // restarted, maybe before keeping the last one); within a session the one offered stands.
  const issue = takesCredential && message.sequenceNum === 0n;
  const enrollAs = async (agentId: string) =>
    orThrow(
      await agentObject(env, agentId).enrollCollector(
        { agentId, clientChosenId: true, policyId: enrollment.policyId, namespaces: enrollment.namespaces, type: OPAMP_AGENT_TYPE, localMetadata: null, tags: [], version: "" },
        issue,
      ),
    );
  let agentId = uidId;
  let newInstanceUid = (Number(message.flags) & AgentToServerFlags.AgentToServerFlags_RequestInstanceUid) !== 0;
  if (newInstanceUid) agentId = newUuidV7();
  let enrolled = await enrollAs(agentId);
  if ("taken" in enrolled) {
    // Another collector holds this uid (a clone, or someone replaying it with the token): a new one.
    agentId = newUuidV7();
    newInstanceUid = true;
    enrolled = await enrollAs(agentId);
    if ("taken" in enrolled) throw new FleetError("Internal", "a fresh UUIDv7 was already enrolled");
  }
  const id = agentId;
  return {
    agentId: id,
    viaEnrollmentToken: true,
    newInstanceUid,
    credential: takesCredential ? enrolled.credential : null,
    record: (input) => agentObject(env, id).checkinWithEnrollment(enrollment.policyId, input),
    ...ask(id),
  };
}

/** Whether the collector is behind, from its shard, which admits the poll but never holds it (OpAMP has no long poll). */
async function askShard(env: Env, agentId: string, outcome: CheckinOutcome): Promise<CheckinWake | Failure> {
  const parked = await callAgentShard(
    env,
    outcome.policyId,
    agentId,
    (shard, index) => shard.park(outcome.policyId, { agentId, shard: index, claim: outcome.claim, actionSeq: outcome.actionSeq, holdMs: 0 }),
    (answer) => (answer.kind === "moved" ? answer.shards : null),
  );
  switch (parked.kind) {
    case "policy":
      return { kind: "policy", revision: JSON.parse(parked.json!) as PolicyRevision };
    case "busy":
      // Overload: 429 with Retry-After (opamp.md §2.2); opamp-go honours it.
      return { error: parked.error, retryAfterMs: parked.retryAfterMs };
    default:
      return { kind: "none" };
  }
}

/** The body, gunzipped when sent so, under the message limit after decompression (413 beyond). */
async function readMessage(request: Request): Promise<Uint8Array> {
  const raw = await readLimitedBytes(request, MAX_MESSAGE_BYTES);
  const encoding = (request.headers.get("Content-Encoding") ?? "").trim().toLowerCase();
  if (encoding === "" || encoding === "identity") return raw;
  if (encoding !== "gzip") throw new FleetError("BadRequest", `Bad request: unsupported Content-Encoding ${JSON.stringify(encoding)}`);
  try {
    return gunzipSync(raw, { maxOutputLength: MAX_MESSAGE_BYTES });
  } catch (err) {
    if (err instanceof RangeError) throw new FleetError("PayloadSizeTooLarge");
    throw new FleetError("BadRequest", `Bad request: the gzip body does not inflate: ${(err as Error).message}`);
  }
}

function protobuf(c: Context<AppEnv>, bytes: Uint8Array<ArrayBuffer>): Response {
  const headers = new Headers({ "Content-Type": PROTOBUF });
  if (/\bgzip\b/i.test(c.req.header("Accept-Encoding") ?? "") && bytes.byteLength > COMPRESSION_THRESHOLD) {
    headers.set("Content-Encoding", "gzip");
    const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
    return new Response(stream, { headers, encodeBody: "manual" });
  }
  return new Response(bytes, { headers });
}
