import { hex, hexBytes } from "../auth/secrets";
import { FleetError } from "../errors";
import { MAX_JSON_DEPTH, depthMessage, jsonFits, nestsDeeperThan } from "./json-limits";
import type { JsonObject, JsonValue } from "./parse";

/**
 * File uploads from agents (fleet-protocol.md §2.7, fleet-server `file/uploader`): the rules that are
 * pure functions, so the route, the Durable Object and the table tests share them.
 */

/** fleet-server's `file.MaxChunkSize`: every chunk but the last is exactly this long. */
export const CHUNK_SIZE = 4_194_304;
/** An upload accepts chunks for this long after it began (`maxUploadTimer`). */
export const UPLOAD_EXPIRY_MS = 24 * 60 * 60 * 1000;
/** Body limits: begin 5 MiB, complete 1 KiB (413 above), a chunk 4 MiB. */
export const BEGIN_MAX_BYTES = 5 << 20;
export const COMPLETE_MAX_BYTES = 1 << 10;
/**
 * The begin payload is stored whole, as the upload's metadata row and document: it must fit in a
 * SQLite row (2 MB, platform.md §3.4) with room to spare. Agents send a few hundred bytes.
 */
export const BEGIN_DOC_MAX_BYTES = 1 << 20;
/**
 * `src` names the Elasticsearch indices the upload goes to (`.fleet-fileds-fromhost-meta-<src>`):
 * only the values agents send (fleet-protocol.md §2.7), never a path or an index pattern.
 */
export const UPLOAD_SOURCES = ["agent", "endpoint"] as const;

/** `file.Status` values of the upload metadata document. */
export type UploadStatus = "AWAITING_UPLOAD" | "UPLOADING" | "READY" | "UPLOAD_ERROR" | "DELETED";

/** Statuses in which chunks are still accepted (`Info.StatusCanUpload`). */
export const canUpload = (status: UploadStatus): boolean => status !== "READY" && status !== "UPLOAD_ERROR" && status !== "DELETED";

export const chunkCount = (size: number): number => Math.ceil(size / CHUNK_SIZE);

/** What the begin route keeps of a validated payload; `doc` is the whole body, enriched as fleet-server does. */
export interface UploadBegin {
  uploadId: string;
  agentId: string;
  actionId: string;
  source: string;
  size: number;
  name: string;
  mimeType: string;
  startMs: number;
  doc: JsonObject;
}

/**
 * The begin payload as fleet-server's `ReadDict` decodes it. Empty body: ErrFileInfoBodyRequired;
 * not a JSON object: BadRequest; then `agent_id` must be a non-empty string (ErrAgentIDMissing),
 * checked before authentication because it names the agent to authenticate.
 */
export function decodeBeginPayload(text: string): { payload: JsonObject; agentId: string } {
  if (text.trim() === "") throw new FleetError("FileInfoBodyRequired");
  if (nestsDeeperThan(text, MAX_JSON_DEPTH)) throw new FleetError("BadRequest", `Bad request: unable to decode upload begin request: ${depthMessage()}`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new FleetError("BadRequest", `Bad request: unable to decode upload begin request: ${(err as Error).message}`);
  }
  if (value !== null && (typeof value !== "object" || Array.isArray(value))) {
    throw new FleetError("BadRequest", "Bad request: unable to decode upload begin request: not a JSON object");
  }
  const payload = (value ?? {}) as JsonObject;
  const agentId = payload.agent_id;
  if (typeof agentId !== "string" || agentId === "") throw new FleetError("AgentIDMissing");
  return { payload, agentId };
}

const REQUIRED_STRINGS = [["file", "name"], ["file", "mime_type"], ["action_id"], ["agent_id"], ["src"]] as const;

/**
 * `validateUploadPayload` and the size limit of `Uploader.Begin`, in upstream order; then the
 * server-side fields fleet-server adds to the metadata document (`file.ChunkSize`, `file.Status`,
 * `upload_id`, `upload_start`, `@timestamp`, `namespaces`).
 */
export function validateBegin(
  payload: JsonObject,
  opts: { maxFileSize: number | null; namespaces: string[]; uploadId: string; now: number },
): UploadBegin {
  if (opts.maxFileSize === 0) throw new FleetError("FileFeatureDisabled");
  for (const path of REQUIRED_STRINGS) {
    const value = lookup(payload, path);
    if (typeof value !== "string" || value.trim() === "") {
      throw new FleetError("FieldRequired", `${path.join(".")} is required: field required`);
    }
  }
  if (!(UPLOAD_SOURCES as readonly string[]).includes(payload.src as string)) {
    throw new FleetError("BadRequest", `Bad request: src: must be one of ${UPLOAD_SOURCES.join(", ")}`);
  }
  if (!jsonFits(payload, BEGIN_DOC_MAX_BYTES)) {
    throw new FleetError("BadRequest", `Bad request: upload begin request: larger than the limit of ${BEGIN_DOC_MAX_BYTES} bytes (as JSON)`);
  }
  const size = lookup(payload, ["file", "size"]);
  if (typeof size !== "number" || !Number.isSafeInteger(size)) throw new FleetError("FileSizeRequired");
  if (size <= 0) throw new FleetError("InvalidFileSize", `file.size: ${size}: invalid filesize`);
  if (opts.maxFileSize !== null && size > opts.maxFileSize) throw new FleetError("FileSizeTooLarge");

  const file = payload.file as JsonObject;
  const doc: JsonObject = {
    ...payload,
    file: { ...file, ChunkSize: CHUNK_SIZE, Status: "AWAITING_UPLOAD" },
    upload_id: opts.uploadId,
    upload_start: opts.now,
    "@timestamp": opts.now,
    namespaces: opts.namespaces,
  };
  return {
    uploadId: opts.uploadId,
    agentId: payload.agent_id as string,
    actionId: payload.action_id as string,
    source: payload.src as string,
    size,
    name: file.name as string,
    mimeType: file.mime_type as string,
    startMs: opts.now,
    doc,
  };
}

function lookup(value: JsonObject, path: readonly string[]): JsonValue | undefined {
  let current: JsonValue | undefined = value;
  for (const key of path) {
    if (typeof current !== "object" || current === null || Array.isArray(current)) return undefined;
    current = current[key];
  }
  return current;
}

/** The complete body `{"transithash":{"sha256":"…"}}`; a blank hash is TransitHashRequired. */
export function parseCompleteBody(text: string): string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new FleetError("BadRequest", "Bad request: unable to decode upload complete request");
  }
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new FleetError("BadRequest", "Bad request: unable to decode upload complete request");
  }
  const transit = value !== null ? (value as { transithash?: unknown }).transithash : undefined;
  if (transit !== undefined && transit !== null && (typeof transit !== "object" || Array.isArray(transit))) {
    throw new FleetError("BadRequest", "Bad request: unable to decode upload complete request");
  }
  const sha = typeof transit === "object" && transit !== null ? (transit as { sha256?: unknown }).sha256 : undefined;
  if (sha !== undefined && sha !== null && typeof sha !== "string") {
    throw new FleetError("BadRequest", "Bad request: unable to decode upload complete request");
  }
  const hash = (sha ?? "").trim();
  if (hash === "") throw new FleetError("TransitHashRequired");
  return hash;
}

/** One stored chunk as the upload object records it. */
export interface ChunkRecord {
  pos: number;
  sha2: string;
  size: number;
  last: boolean;
}

/**
 * fleet-server's completion checks (`allChunksPresent`, `verifyChunkInfo`): "missing" when the
 * count or positions do not match, "invalid" when sizes (each chunk's, and their sum against the
 * declared `file.size`), last flags or the transit hash do not, where
 * the transit hash is sha256 over the concatenated raw 32-byte chunk digests, compared case-insensitively.
 */
export async function verifyChunks(chunks: ChunkRecord[], size: number, transitHash: string): Promise<"ok" | "missing" | "invalid"> {
  const count = chunkCount(size);
  if (chunks.length !== count) return "missing";
  const sorted = [...chunks].sort((a, b) => a.pos - b.pos);
  if (sorted.some((chunk, i) => chunk.pos !== i)) return "missing";
  const digests = new Uint8Array(32 * sorted.length);
  for (const [i, chunk] of sorted.entries()) {
    if (i < count - 1) {
      if (chunk.last || chunk.size !== CHUNK_SIZE) return "invalid";
    } else if (!chunk.last || chunk.size === 0 || chunk.size > CHUNK_SIZE) {
      return "invalid";
    }
    const raw = fromHex(chunk.sha2);
    if (!raw || raw.byteLength !== 32) return "invalid";
    digests.set(raw, 32 * i);
  }
  // The file is what was declared: 100 bytes sent for a declared 10 is not a complete upload.
  if (sorted.reduce((sum, chunk) => sum + chunk.size, 0) !== size) return "invalid";
  const computed = hex(new Uint8Array(await crypto.subtle.digest("SHA-256", digests)));
  return computed === transitHash.toLowerCase() ? "ok" : "invalid";
}

/** The transit hash an agent sends for these chunk digests (for admins and tests). */
export async function transitHashOf(chunkDigestsHex: string[]): Promise<string> {
  const digests = new Uint8Array(32 * chunkDigestsHex.length);
  chunkDigestsHex.forEach((digest, i) => digests.set(fromHex(digest)!, 32 * i));
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", digests)));
}

/** Bytes from hex in either case, as agents may send chunk digests; null when it is not hex. */
export const fromHex = (text: string): Uint8Array | null => hexBytes(text.toLowerCase());

export const isSha256Hex = (text: string): boolean => /^[0-9a-fA-F]{64}$/.test(text);

export async function sha256Bytes(bytes: Uint8Array | ArrayBuffer): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}
