import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Uploads } from "../../durable/uploads";
import { ackEvent, ackRequest, adminRequest, agentRequest, enrolledAgent, json, queueAction } from "../helpers";
import { sha256Hex } from "../support/artifact-fixture";
import { bytesOf } from "../support/test-bytes";
import { beginBody, beginUpload, completeUpload, errorHeaders, putChunk, transitHash } from "./file-helpers";

const MiB = 1 << 20;
const CHUNK = 4 * MiB;
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const uploadStub = (uploadId: string) => env.UPLOADS.get(env.UPLOADS.idFromName(`upload:${uploadId}`));
const r2Keys = async (uploadId: string) => (await env.FILES.list({ prefix: `uploads/${uploadId}/` })).objects.map((o) => o.key);

function split(file: Uint8Array): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let offset = 0; offset < file.byteLength; offset += CHUNK) chunks.push(file.subarray(offset, Math.min(offset + CHUNK, file.byteLength)));
  return chunks;
}

async function expectError(res: Response, status: number, error: string, message?: string) {
  expect(res.status).toBe(status);
  expect(Object.fromEntries(res.headers)).toMatchObject(errorHeaders);
  expect(await res.json()).toEqual(message === undefined ? { statusCode: status, error } : { statusCode: status, error, message });
}

async function uploadItems(agentId: string) {
  return (await json<{ items: Array<Record<string, unknown>> }>(await adminRequest("GET", `/api/fleet/agents/${agentId}/uploads`))).items;
}

describe("REQUEST_DIAGNOSTICS upload, end to end", () => {
  it("takes a 10 MiB file in 3 chunks, completes it, links it to the action and serves it to admins", async () => {
    const agent = await enrolledAgent("upl-e2e");
    const action = await queueAction(agent.id, { type: "REQUEST_DIAGNOSTICS" });
    const file = bytesOf(10 * MiB, 7);
    const chunks = split(file);
    expect(chunks.map((c) => c.byteLength)).toEqual([CHUNK, CHUNK, 2 * MiB]);

    const begin = await agentRequest("POST", "/api/fleet/uploads", { key: agent.key, body: beginBody(agent, file.byteLength, { action_id: action.id }) });
    expect(begin.status).toBe(200);
    expect(begin.headers.get("content-type")).toBe("application/json");
    const text = await begin.text();
    const uploadId = (JSON.parse(text) as { upload_id: string }).upload_id;
    expect(uploadId).toMatch(UUID_V4);
    expect(text).toBe(`{"chunk_size":4194304,"upload_id":"${uploadId}"}`);

    for (const [i, chunk] of chunks.entries()) {
      const res = await putChunk(agent.key, uploadId, i, chunk);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe("");
      expect(res.headers.get("elastic-api-version")).toBe("2023-06-01");
    }
    const listed = await uploadItems(agent.id);
    expect(listed[0]).toMatchObject({ id: uploadId, status: "AWAITING_UPLOAD", chunks: { expected: 3, received: 3 } });

    const hash = await transitHash(chunks);
    const done = await completeUpload(agent.key, uploadId, hash.toUpperCase());
    expect(done.status).toBe(200);
    expect(await done.json()).toEqual({ status: "ok" });

    // The agent acks the action with the upload id (elastic-agent-client.md §6.6).
    const ack = await ackRequest(agent, [ackEvent(agent, action.id, "REQUEST_DIAGNOSTICS", { data: { upload_id: uploadId } })]);
    expect(ack.status).toBe(200);

    const items = await uploadItems(agent.id);
    expect(items).toEqual([
      {
        id: uploadId,
        name: "elastic-agent-diagnostics-2026-08-22T15-03-01Z-00.zip",
        filePath: `/api/fleet/agents/files/${uploadId}/elastic-agent-diagnostics-2026-08-22T15-03-01Z-00.zip`,
        createTime: expect.any(String),
        status: "READY",
        actionId: action.id,
        agentId: agent.id,
        mimeType: "application/zip",
        size: 10 * MiB,
        chunks: { expected: 3, received: 3 },
        expired: false,
        transithash: hash,
      },
    ]);

    const download = await adminRequest("GET", items[0]!.filePath as string);
    expect(download.status).toBe(200);
    expect(download.headers.get("content-type")).toBe("application/zip");
    expect(download.headers.get("content-length")).toBe(String(10 * MiB));
    expect(download.headers.get("content-disposition")).toBe('attachment; filename="elastic-agent-diagnostics-2026-08-22T15-03-01Z-00.zip"');
    const downloaded = new Uint8Array(await download.arrayBuffer());
    expect(downloaded.byteLength).toBe(file.byteLength);
    expect(await sha256Hex(downloaded)).toBe(await sha256Hex(file));

    // The metadata document as fleet-server writes it.
    const info = await runInDurableObject(uploadStub(uploadId), (instance) => (instance as unknown as Uploads).info());
    expect((info as { doc: Record<string, unknown> }).doc).toMatchObject({
      action_id: action.id,
      agent_id: agent.id,
      src: "agent",
      upload_id: uploadId,
      namespaces: [],
      contents: null,
      file: { size: 10 * MiB, ChunkSize: 4194304, Status: "READY", mime_type: "application/zip", ext: "zip" },
      transithash: { sha256: hash },
    });

    // Finished: no more chunks, no second completion.
    await expectError(await putChunk(agent.key, uploadId, 0, chunks[0]!), 400, "ErrUploadStopped", "upload has stopped");
    await expectError(await completeUpload(agent.key, uploadId, hash), 400, "ErrStatusNoUploads", "file closed, not accepting uploads");
    // Admin routes need the admin token; downloading an unknown or unfinished file is 404.
    expect((await adminRequest("GET", `/api/fleet/agents/${agent.id}/uploads`, undefined, "wrong")).status).toBe(401);
    expect((await adminRequest("GET", `/api/fleet/agents/files/${crypto.randomUUID()}/x.zip`)).status).toBe(404);
  });

  it("rejects a corrupted chunk (hash mismatch) and forgets what was stored at its position", async () => {
    const agent = await enrolledAgent("upl-corrupt");
    const file = bytesOf(CHUNK + 100, 3);
    const chunks = split(file);
    const uploadId = await beginUpload(agent, file.byteLength);
    expect((await putChunk(agent.key, uploadId, 0, chunks[0]!)).status).toBe(200);
    expect((await putChunk(agent.key, uploadId, 1, chunks[1]!)).status).toBe(200);
    // Chunk 1 again, with a bit flipped in transit.
    const corrupted = chunks[1]!.slice();
    corrupted[10]! ^= 0xff;
    await expectError(await putChunk(agent.key, uploadId, 1, corrupted, await sha256Hex(chunks[1]!)), 400, "ErrHashMismatch", "hash does not match");
    expect(await r2Keys(uploadId)).toEqual([`uploads/${uploadId}/0.${await sha256Hex(chunks[0]!)}`]);
    await expectError(await completeUpload(agent.key, uploadId, await transitHash(chunks)), 400, "ErrMissingChunks", "file data incomplete, not all chunks were uploaded");
    // The agent re-sends it; the hash comparison ignores case.
    expect((await putChunk(agent.key, uploadId, 1, chunks[1]!, (await sha256Hex(chunks[1]!)).toUpperCase())).status).toBe(200);
    expect((await completeUpload(agent.key, uploadId, await transitHash(chunks))).status).toBe(200);
  });

  it("answers ErrMissingChunks for a missing chunk without failing the upload", async () => {
    const agent = await enrolledAgent("upl-missing");
    const file = bytesOf(2 * CHUNK + 10, 5);
    const chunks = split(file);
    const uploadId = await beginUpload(agent, file.byteLength);
    await putChunk(agent.key, uploadId, 0, chunks[0]!);
    await putChunk(agent.key, uploadId, 2, chunks[2]!);
    await expectError(await completeUpload(agent.key, uploadId, await transitHash(chunks)), 400, "ErrMissingChunks", "file data incomplete, not all chunks were uploaded");
    expect((await uploadItems(agent.id))[0]).toMatchObject({ status: "AWAITING_UPLOAD", chunks: { expected: 3, received: 2 } });
    await putChunk(agent.key, uploadId, 1, chunks[1]!);
    expect((await completeUpload(agent.key, uploadId, await transitHash(chunks))).status).toBe(200);
  });

  it("fails the upload on a wrong transit hash: UPLOAD_ERROR, chunks deleted", async () => {
    const agent = await enrolledAgent("upl-transit");
    const file = bytesOf(CHUNK + 1, 9);
    const chunks = split(file);
    const uploadId = await beginUpload(agent, file.byteLength);
    for (const [i, chunk] of chunks.entries()) await putChunk(agent.key, uploadId, i, chunk);
    expect(await r2Keys(uploadId)).toHaveLength(2);
    // The digest of the file instead of the digest of the chunk digests.
    await expectError(await completeUpload(agent.key, uploadId, await sha256Hex(file)), 400, "ErrFailValidation", "file contents failed validation");
    expect(await r2Keys(uploadId)).toEqual([]);
    expect((await uploadItems(agent.id))[0]).toMatchObject({ status: "UPLOAD_ERROR", chunks: { expected: 2, received: 0 } });
    await expectError(await putChunk(agent.key, uploadId, 0, chunks[0]!), 400, "ErrUploadStopped", "upload has stopped");
    await expectError(await completeUpload(agent.key, uploadId, await transitHash(chunks)), 400, "ErrStatusNoUploads", "file closed, not accepting uploads");
  });

  it("fails validation when a non-final chunk is short", async () => {
    const agent = await enrolledAgent("upl-short");
    const uploadId = await beginUpload(agent, CHUNK + 10);
    const short = [bytesOf(100, 1), bytesOf(10, 2)];
    for (const [i, chunk] of short.entries()) expect((await putChunk(agent.key, uploadId, i, chunk)).status).toBe(200);
    await expectError(await completeUpload(agent.key, uploadId, await transitHash(short)), 400, "ErrFailValidation", "file contents failed validation");
  });
});

describe("POST /api/fleet/uploads (begin) errors", () => {
  it("names each problem as fleet-server does", async () => {
    const agent = await enrolledAgent("upl-begin");
    const begin = (body: unknown, key: string | undefined = agent.key) => agentRequest("POST", "/api/fleet/uploads", { ...(key ? { key } : {}), body });
    await expectError(await begin(""), 400, "ErrFileInfoBodyRequired", "file info body is required");
    const bad = await begin("{nope");
    expect(bad.status).toBe(400);
    expect((await bad.json<{ message: string }>()).message).toMatch(/^Bad request: unable to decode upload begin request: /);
    await expectError(await begin({ ...beginBody(agent, 10), agent_id: "" }), 400, "ErrAgentIDMissing", "required field agent_id is missing");
    await expectError(await begin({ action_id: "a" }), 400, "ErrAgentIDMissing", "required field agent_id is missing");
    await expectError(await begin(null), 400, "ErrAgentIDMissing", "required field agent_id is missing");

    const body = beginBody(agent, 10);
    const fields: Array<[string, Record<string, unknown>]> = [
      ["file.name", { file: { ...body.file, name: "  " } }],
      ["file.mime_type", { file: { ...body.file, mime_type: undefined } }],
      ["action_id", { action_id: 7 }],
      ["src", { src: "" }],
    ];
    for (const [field, override] of fields) {
      await expectError(await begin({ ...body, ...override }), 400, "ErrFieldRequired", `${field} is required: field required`);
    }
    await expectError(await begin({ ...body, file: { ...body.file, size: undefined } }), 400, "ErrFileSizeRequired", "file.size is required");
    await expectError(await begin({ ...body, file: { ...body.file, size: "10" } }), 400, "ErrFileSizeRequired", "file.size is required");
    await expectError(await begin({ ...body, file: { ...body.file, size: -5 } }), 400, "ErrInvalidFileSize", "file.size: -5: invalid filesize");
    await expectError(await begin({ ...body, file: { ...body.file, size: 0 } }), 400, "ErrInvalidFileSize", "file.size: 0: invalid filesize");
    const huge = JSON.stringify({ ...body, contents: "x".repeat(5 * MiB) });
    await expectError(await begin(huge), 413, "ErrPayloadSizeTooLarge", "the request body exceeds the maximum allowed size");
  });

  it("authenticates the agent named by agent_id", async () => {
    const agent = await enrolledAgent("upl-begin-auth");
    const other = await enrolledAgent("upl-begin-auth", { id: "upl-begin-auth-other" });
    const res = await agentRequest("POST", "/api/fleet/uploads", { key: agent.key, body: beginBody(other, 10) });
    await expectError(res, 403, "ErrAgentIdentity", "Agent header contains wrong identifier");
    await expectError(await agentRequest("POST", "/api/fleet/uploads", { body: beginBody(agent, 10) }), 401, "ErrNoAuthHeader", "no authorization header");
    // Field validation comes after authentication.
    const unauth = await agentRequest("POST", "/api/fleet/uploads", { key: agent.key, body: { ...beginBody(other, 10), src: "" } });
    expect(unauth.status).toBe(403);
  });
});

describe("PUT /api/fleet/uploads/{id}/{chunkNum} errors", () => {
  it("checks the upload before the caller, then the caller, then the body", async () => {
    const agent = await enrolledAgent("upl-chunk");
    const other = await enrolledAgent("upl-chunk", { id: "upl-chunk-other" });
    const uploadId = await beginUpload(agent, CHUNK + 1);
    const small = bytesOf(16);
    await expectError(await putChunk(agent.key, crypto.randomUUID(), 0, small), 400, "ErrInvalidFileID", "ErrInvalidID");
    await expectError(await putChunk(agent.key, uploadId, 2, small), 400, "ErrInvalidChunkNum", "invalid chunk number");
    await expectError(await putChunk(agent.key, uploadId, -1, small), 400, "ErrInvalidChunkNum", "invalid chunk number");
    await expectError(
      await putChunk(agent.key, uploadId, "x", small),
      400,
      "BadRequest",
      'Invalid format for parameter chunkNum: error binding string parameter: strconv.ParseInt: parsing "x": invalid syntax',
    );
    const noHeader = await agentRequest("PUT", `/api/fleet/uploads/${uploadId}/0`, { key: agent.key, body: small });
    await expectError(noHeader, 400, "BadRequest", "Header parameter X-Chunk-SHA2 is required, but not found");
    await expectError(await putChunk(other.key, uploadId, 0, small), 403, "ErrAgentIdentity", "Agent header contains wrong identifier");
    await expectError(await putChunk(agent.key, uploadId, 0, bytesOf(CHUNK + 1)), 413, "ErrPayloadSizeTooLarge", "the request body exceeds the maximum allowed size");
  });

  it("refuses chunks 24 hours after the upload began", async () => {
    const agent = await enrolledAgent("upl-expired");
    const uploadId = await beginUpload(agent, 100);
    await runInDurableObject(uploadStub(uploadId), async (_instance, state: DurableObjectState) => {
      state.storage.sql.exec("UPDATE upload SET start_ms = ?", Date.now() - 24 * 60 * 60 * 1000 - 1000);
    });
    await expectError(await putChunk(agent.key, uploadId, 0, bytesOf(100)), 400, "ErrUploadExpired", "upload has expired");
    expect((await uploadItems(agent.id))[0]).toMatchObject({ id: uploadId, expired: true });
  });
});

describe("POST /api/fleet/uploads/{id} (complete) errors", () => {
  it("names each problem as fleet-server does", async () => {
    const agent = await enrolledAgent("upl-complete");
    const other = await enrolledAgent("upl-complete", { id: "upl-complete-other" });
    const uploadId = await beginUpload(agent, 100);
    const complete = (body: unknown, key = agent.key, id = uploadId) => agentRequest("POST", `/api/fleet/uploads/${id}`, { key, body });
    await expectError(await complete({ transithash: { sha256: "a" } }, agent.key, crypto.randomUUID()), 400, "ErrInvalidFileID", "ErrInvalidID");
    await expectError(await complete({ transithash: { sha256: "a" } }, other.key), 403, "ErrAgentIdentity", "Agent header contains wrong identifier");
    await expectError(await complete({ transithash: { sha256: "  " } }), 400, "TransitHashRequired", "Transit hash required");
    await expectError(await complete({}), 400, "TransitHashRequired", "Transit hash required");
    await expectError(await complete("{"), 400, "BadRequest", "Bad request: unable to decode upload complete request");
    await expectError(await complete({ transithash: { sha256: 5 } }), 400, "BadRequest", "Bad request: unable to decode upload complete request");
    await expectError(await complete({ transithash: { sha256: "a".repeat(2000) } }), 413, "ErrPayloadSizeTooLarge", "the request body exceeds the maximum allowed size");
    await expectError(await complete({ transithash: { sha256: "ab" } }), 400, "ErrMissingChunks", "file data incomplete, not all chunks were uploaded");
  });
});
