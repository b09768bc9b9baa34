import { gunzipSync } from "node:zlib";
import { Hono, type Context } from "hono";
import { isKnownKey, orAuthError } from "../auth/agent-auth";
import { agentIdOfAccessKey } from "../auth/access-key";
import { parseApiKeyHeader, type ApiKey } from "../auth/api-key";
import type { AppEnv, Env } from "../config";
import { agentObject, directory, hubShard } from "../durable-stubs";
import { FleetError, orThrow, type Failure } from "../errors";
import { readLimitedBytes } from "../http/raw-body";
import { OPAMP_AGENT_TYPE } from "../opamp/collector";
import { exchange, type OpampPath } from "../opamp/exchange";
import { AgentCapabilities, AgentToServerFlags, type AgentToServer } from "../opamp/gen/opamp_pb";
import { accepts } from "../opamp/report";
import { MAX_MESSAGE_BYTES, decodeAgentToServer, encodeServerToAgent, errorAnswer, newUuidV7, uidToId } from "../opamp/wire";
import type { PolicyRevision } from "../protocol/policy";
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
});

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
  const issue = accepts(Number(message.capabilities), AgentCapabilities.AgentCapabilities_AcceptsOpAMPConnectionSettings);
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
    credential: enrolled.credential,
    record: (input) => agentObject(env, id).checkinWithEnrollment(enrollment.policyId, input),
    ...ask(id),
  };
}

/** Whether the collector is behind, from its shard, which admits the poll but never holds it (OpAMP has no long poll). */
async function askShard(env: Env, agentId: string, outcome: CheckinOutcome): Promise<CheckinWake | Failure> {
  const parked = await hubShard(env, outcome.policyId, agentId).park(outcome.policyId, { agentId, claim: outcome.claim, actionSeq: outcome.actionSeq, holdMs: 0 });
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
