import { Hono } from "hono";
import { authenticateAgent } from "../auth/agent-auth";
import { parseApiKeyHeader } from "../auth/api-key";
import type { AppEnv, Env } from "../config";
import { agentObject, agentUploadIndex, uploadObject } from "../durable-stubs";
import { FleetError, orThrow } from "../errors";
import { agentJson } from "../http/json-response";
import { readLimitedBytes, utf8Text } from "../http/raw-body";
import {
  BEGIN_MAX_BYTES,
  CHUNK_SIZE,
  COMPLETE_MAX_BYTES,
  decodeBeginPayload,
  parseCompleteBody,
  sha256Bytes,
  validateBegin,
} from "../protocol/upload";
import { log } from "../log";

/**
 * Agent file uploads (fleet-protocol.md §2.7): begin, chunks, complete. What REQUEST_DIAGNOSTICS
 * uses. Metadata and status live in one `Uploads` object per upload id; chunk bytes in R2 under
 * `uploads/<upload id>/<chunk>.<sha256>` (content-addressed, so a late or repeated chunk never
 * overwrites bytes a completed file refers to).
 */
export const uploads = new Hono<AppEnv>()
  .post("/api/fleet/uploads", async (c) => {
    // fleet-server decodes the body before it authenticates: `agent_id` names the agent.
    const { payload, agentId } = decodeBeginPayload(utf8Text(await readLimitedBytes(c.req.raw, BEGIN_MAX_BYTES)));
    const key = parseApiKeyHeader(c.req.header("Authorization"));
    await authenticateAgent(c.env, key, agentId);
    const record = await agentObject(c.env, agentId).record();
    const begin = validateBegin(payload, {
      maxFileSize: maxFileSize(c.env),
      namespaces: record?.namespaces ?? [],
      uploadId: crypto.randomUUID(),
      now: Date.now(),
    });
    // Indexed first: a listing skips an id whose upload object was never created, never the reverse.
    await agentUploadIndex(c.env, agentId).indexUpload(begin.uploadId, begin.actionId, new Date(begin.startMs).toISOString());
    orThrow(await uploadObject(c.env, begin.uploadId).create(begin));
    log.info("upload.begin", { upload_id: begin.uploadId, agent_id: agentId, action_id: begin.actionId, size: begin.size });
    return agentJson(c.req.raw, { chunk_size: CHUNK_SIZE, upload_id: begin.uploadId });
  })
  .put("/api/fleet/uploads/:id/:chunkNum", async (c) => {
    const uploadId = c.req.param("id");
    const pos = parseIntParam("chunkNum", c.req.param("chunkNum"));
    const claimed = c.req.header("X-Chunk-SHA2");
    if (claimed === undefined) throw new FleetError("BadRequest", "Header parameter X-Chunk-SHA2 is required, but not found");
    const upload = uploadObject(c.env, uploadId);
    // As fleet-server: the upload's state is checked before the caller is authenticated.
    const ticket = orThrow(await upload.checkChunk(pos, Date.now()));
    await authenticateAgent(c.env, parseApiKeyHeader(c.req.header("Authorization")), ticket.agentId);
    const bytes = await readLimitedBytes(c.req.raw, CHUNK_SIZE);
    const sha2 = await sha256Bytes(bytes);
    if (sha2 !== claimed.trim().toLowerCase()) {
      const dropped = await upload.dropChunk(pos);
      if (dropped) await c.env.FILES.delete(dropped);
      throw new FleetError("HashMismatch");
    }
    const r2Key = `uploads/${uploadId}/${pos}.${sha2}`;
    await c.env.FILES.put(r2Key, bytes, { sha256: sha2 });
    const { replaced } = orThrow(await upload.recordChunk({ pos, sha2, size: bytes.byteLength, last: ticket.last }, r2Key));
    if (replaced) await c.env.FILES.delete(replaced);
    return new Response(null, { status: 200 });
  })
  .post("/api/fleet/uploads/:id", async (c) => {
    const upload = uploadObject(c.env, c.req.param("id"));
    const info = await upload.info();
    if (!info) throw new FleetError("InvalidFileID");
    await authenticateAgent(c.env, parseApiKeyHeader(c.req.header("Authorization")), info.agent_id);
    const transitHash = parseCompleteBody(utf8Text(await readLimitedBytes(c.req.raw, COMPLETE_MAX_BYTES)));
    const result = await upload.complete(transitHash);
    log.info("upload.complete", { upload_id: info.upload_id, agent_id: info.agent_id, result: "error" in result ? result.error : "READY" });
    orThrow(result);
    return agentJson(c.req.raw, { status: "ok" });
  });

/** An integer path parameter, with the message of fleet-server's generated binder (upstream: 500; here 400). */
export function parseIntParam(name: string, raw: string): number {
  if (!/^[+-]?\d+$/.test(raw) || !Number.isSafeInteger(Number(raw))) {
    throw new FleetError("BadRequest", `Invalid format for parameter ${name}: error binding string parameter: strconv.ParseInt: parsing ${JSON.stringify(raw)}: invalid syntax`);
  }
  return Number(raw);
}

function maxFileSize(env: Env): number | null {
  const raw = env.UPLOAD_MAX_FILE_SIZE;
  if (raw === undefined || raw.trim() === "") return null;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`configuration: UPLOAD_MAX_FILE_SIZE=${JSON.stringify(raw)} is not a byte count`);
  return value;
}
