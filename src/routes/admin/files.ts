import { Hono } from "hono";
import type { UploadInfo } from "../../files/upload-info";
import { R2ArtifactSource, type ArtifactMeta } from "../../artifacts/source";
import type { AppEnv } from "../../config";
import { agentUploadIndex, uploadObject } from "../../durable-stubs";
import { FleetError, isFailure, orThrow } from "../../errors";
import { deleteKeys, deliveryDataKey, deliveryMeta, deliveryTargetKey, deliveryTargetPrefix, listKeys } from "../../files/deliveries";
import { readAdminJson } from "../../http/body";
import { ArtifactPut, DeliveryPut, FileId, PgpKeyPut, decodeArtifactBody, decodeBase64 } from "../../protocol/files-admin";
import { parseBody, parseParam } from "../../protocol/parse";
import { sha256Bytes } from "../../protocol/upload";
import { cacheKey, edgeCache } from "../artifacts";
import { PGP_KEY_OBJECT } from "../pgp-key";
import { log } from "../../log";

/** Admin bodies carrying file bytes (base64 in JSON): 32 MiB, about 24 MiB of file. */
const MAX_FILE_BODY = 32 << 20;
/** Uploads shown per agent, newest first. */
const LISTING_LIMIT = 100;

/**
 * Admin side of files: publishing artifacts and files for delivery, listing and downloading what agents
 * uploaded (Kibana's `/api/fleet/agents/{agentId}/uploads` and `/api/fleet/agents/files/{fileId}/{fileName}`),
 * and setting the PGP key.
 */
export const adminFiles = new Hono<AppEnv>()
  // ---- artifacts ----
  .put("/api/fleet/artifacts/:id", async (c) => {
    const identifier = parseParam(FileId, "id", c.req.param("id"));
    const body = parseBody(ArtifactPut, await readAdminJson(c, MAX_FILE_BODY), "admin");
    if (body.identifier !== undefined && body.identifier !== identifier) {
      throw new FleetError("AdminBadRequest", "identifier: must match the identifier in the path");
    }
    const encoded = decodeBase64(body.body);
    if (!encoded) throw new FleetError("AdminBadRequest", "body: not valid base64");
    if (encoded.byteLength !== body.encoded_size) {
      throw new FleetError("AdminBadRequest", `encoded_size: the body has ${encoded.byteLength} bytes`);
    }
    const encodedSha = await sha256Bytes(encoded);
    if (encodedSha !== body.encoded_sha256) throw new FleetError("AdminBadRequest", `encoded_sha256: the body's sha256 is ${encodedSha}`);
    const decoded = await decodeArtifactBody(encoded, body.compression_algorithm);
    if (!decoded) throw new FleetError("AdminBadRequest", `body: not valid ${body.compression_algorithm} data`);
    if (decoded.byteLength !== body.decoded_size) {
      throw new FleetError("AdminBadRequest", `decoded_size: the decoded body has ${decoded.byteLength} bytes`);
    }
    const decodedSha = await sha256Bytes(decoded);
    if (decodedSha !== body.decoded_sha256) throw new FleetError("AdminBadRequest", `decoded_sha256: the decoded body's sha256 is ${decodedSha}`);
    const meta: ArtifactMeta = {
      identifier,
      decoded_sha256: body.decoded_sha256,
      decoded_size: body.decoded_size,
      encoded_sha256: body.encoded_sha256,
      encoded_size: body.encoded_size,
      compression_algorithm: body.compression_algorithm,
      encryption_algorithm: body.encryption_algorithm,
      created: body.created ?? new Date().toISOString(),
      ...(body.package_name !== undefined ? { package_name: body.package_name } : {}),
    };
    await new R2ArtifactSource(c.env.FILES).put({ meta, body: encoded });
    await edgeCache()?.delete(cacheKey(identifier, meta.decoded_sha256));
    return c.json({ item: meta });
  })
  .get("/api/fleet/artifacts", async (c) => {
    const items = await new R2ArtifactSource(c.env.FILES).list();
    return c.json({ items, total: items.length });
  })
  .delete("/api/fleet/artifacts/:id", async (c) => {
    const identifier = parseParam(FileId, "id", c.req.param("id"));
    const sha = (c.req.query("decoded_sha256") ?? "").toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(sha)) throw new FleetError("AdminBadRequest", "decoded_sha256: query parameter with 64 hex characters required");
    if (!(await new R2ArtifactSource(c.env.FILES).delete(identifier, sha))) throw new FleetError("NotFound", `artifact ${identifier}/${sha} not found`);
    // Only this location's cache can be purged; elsewhere entries expire within 24 h, and are only
    // ever served to agents whose policy still lists this exact sha256.
    await edgeCache()?.delete(cacheKey(identifier, sha));
    return c.json({ id: identifier, decoded_sha256: sha, action: "deleted" });
  })

  // ---- files for delivery to agents ----
  .put("/api/fleet/files/:fileId", async (c) => {
    const fileId = parseParam(FileId, "fileId", c.req.param("fileId"));
    const body = parseBody(DeliveryPut, await readAdminJson(c, MAX_FILE_BODY), "admin");
    const bytes = decodeBase64(body.body);
    if (!bytes) throw new FleetError("AdminBadRequest", "body: not valid base64");
    const sha256 = await sha256Bytes(bytes);
    if (body.sha256 !== undefined && body.sha256 !== sha256) throw new FleetError("AdminBadRequest", `sha256: the body's sha256 is ${sha256}`);
    const targets = [...new Set(body.target_agents)].sort();
    const created = new Date().toISOString();
    await c.env.FILES.put(deliveryDataKey(fileId), bytes, {
      sha256,
      customMetadata: { name: body.name, mime_type: body.mime_type ?? "", sha256, created },
    });
    const wanted = new Set(targets.map((agentId) => deliveryTargetKey(fileId, agentId)));
    const stale = (await listKeys(c.env.FILES, deliveryTargetPrefix(fileId))).filter((key) => !wanted.has(key));
    await deleteKeys(c.env.FILES, stale);
    for (let i = 0; i < targets.length; i += 50) {
      await Promise.all(targets.slice(i, i + 50).map((agentId) => c.env.FILES.put(deliveryTargetKey(fileId, agentId), new Uint8Array(0))));
    }
    return c.json({ item: { ...deliveryMeta(fileId, { name: body.name, mime_type: body.mime_type ?? "", sha256, created }, bytes.byteLength), target_agents: targets } });
  })
  .delete("/api/fleet/files/:fileId", async (c) => {
    const fileId = parseParam(FileId, "fileId", c.req.param("fileId"));
    if (!(await c.env.FILES.head(deliveryDataKey(fileId)))) throw new FleetError("NotFound", `file ${fileId} not found`);
    // Targets first: a half-done delete leaves a file nobody may fetch, never the reverse.
    await deleteKeys(c.env.FILES, await listKeys(c.env.FILES, deliveryTargetPrefix(fileId)));
    await c.env.FILES.delete(deliveryDataKey(fileId));
    return c.json({ id: fileId, action: "deleted" });
  })

  // ---- what agents uploaded ----
  .get("/api/fleet/agents/:agentId/uploads", async (c) => {
    const indexed = await agentUploadIndex(c.env, c.req.param("agentId")).indexed(LISTING_LIMIT);
    const infos = await Promise.all(indexed.map((entry) => uploadObject(c.env, entry.upload_id).info()));
    const items = infos.filter((info): info is UploadInfo => info !== null).map(uploadItem);
    return c.json({ items });
  })
  .get("/api/fleet/agents/files/:fileId/:fileName", async (c) => {
    const parts = await uploadObject(c.env, c.req.param("fileId")).parts();
    if (isFailure(parts)) orThrow(parts);
    const { info, keys } = parts as Exclude<typeof parts, { error: unknown }>;
    const stream = new FixedLengthStream(info.size);
    c.executionCtx.waitUntil(pipeParts(c.env.FILES, keys, stream.writable));
    return new Response(stream.readable, {
      headers: {
        "Content-Type": info.mime_type || "application/octet-stream",
        "Content-Length": String(info.size),
        "Content-Disposition": `attachment; filename="${info.name.replace(/["\\\r\n]/g, "_")}"`,
      },
    });
  })

  // ---- the PGP key agents verify upgrades with ----
  .put("/api/fleet/pgp_public_key", async (c) => {
    const { key } = parseBody(PgpKeyPut, await readAdminJson(c), "admin");
    await c.env.FILES.put(PGP_KEY_OBJECT, new TextEncoder().encode(key), { customMetadata: { source: "admin", stored_at: new Date().toISOString() } });
    return c.json({ item: { source: "admin", key } });
  })
  .get("/api/fleet/pgp_public_key", async (c) => {
    const stored = await c.env.FILES.get(PGP_KEY_OBJECT);
    if (stored) return c.json({ item: { source: stored.customMetadata?.source ?? "admin", key: await stored.text() } });
    if (c.env.PGP_PUBLIC_KEY) return c.json({ item: { source: "PGP_PUBLIC_KEY", key: c.env.PGP_PUBLIC_KEY } });
    throw new FleetError("NotFound", "no PGP key stored or configured");
  })
  .delete("/api/fleet/pgp_public_key", async (c) => {
    await c.env.FILES.delete(PGP_KEY_OBJECT);
    return c.json({ action: "deleted" });
  });

/** Kibana's agent upload item (`id`, `name`, `filePath`, `createTime`, `status`, `actionId`) plus ours. */
function uploadItem(info: UploadInfo) {
  return {
    id: info.upload_id,
    name: info.name,
    filePath: `/api/fleet/agents/files/${info.upload_id}/${encodeURIComponent(info.name)}`,
    createTime: info.upload_start,
    status: info.status,
    actionId: info.action_id,
    agentId: info.agent_id,
    mimeType: info.mime_type,
    size: info.size,
    chunks: { expected: info.chunk_count, received: info.chunks_received },
    expired: info.expired,
    ...(info.transithash ? { transithash: info.transithash } : {}),
  };
}

/** Streams the chunks in order into the response; an error aborts it so the client sees a cut download. */
async function pipeParts(bucket: R2Bucket, keys: string[], writable: WritableStream<Uint8Array>): Promise<void> {
  try {
    for (const key of keys) {
      const object = await bucket.get(key);
      if (!object) throw new Error(`chunk ${key} missing`);
      await object.body.pipeTo(writable, { preventClose: true });
    }
    await writable.close();
  } catch (err) {
    log.error("upload.download_failed", { error: (err as Error).message });
    await writable.abort(err).catch(() => undefined);
  }
}
