import type { Env } from "../src/config";
import { esConfig } from "../src/es/config";
import { putChunk, uploadDocumentId } from "../src/es/files";
import { uploadDataIndex, uploadMetaIndex } from "../src/es/indices";
import type { Failure } from "../src/errors";
import { log } from "../src/log";
import type { UploadInfo } from "../src/files/upload-info";
import type { JsonObject } from "../src/protocol/parse";
import {
  CHUNK_SIZE,
  UPLOAD_EXPIRY_MS,
  canUpload,
  chunkCount,
  verifyChunks,
  type ChunkRecord,
  type UploadBegin,
  type UploadStatus,
} from "../src/protocol/upload";
import type { EsOutbox } from "./es-outbox";

export interface ChunkTicket {
  agentId: string;
  /** Whether this chunk number is the file's last (fleet-server's chunk `last` flag). */
  last: boolean;
}

interface UploadRow extends Record<string, SqlStorageValue> {
  upload_id: string;
  agent_id: string;
  action_id: string;
  source: string;
  size: number;
  name: string;
  mime_type: string;
  start_ms: number;
  status: string;
  transithash: string | null;
  updated_at: string;
  doc: string;
}

/** Sweep of chunk bytes nothing refers to, shortly after an upload stops accepting chunks. */
const SWEEP_DELAY_MS = UPLOAD_EXPIRY_MS + 60 * 60 * 1000;
/** Chunks copied to Elasticsearch per alarm (4 MiB each). */
const CHUNKS_PER_ALARM = 4;

/**
 * One agent file upload as a state machine (the `upload`, `chunks` and `es_chunks` tables of an
 * `Uploads` object named `upload:<uuid>`): its metadata, status and the list of stored chunks (the
 * bytes are in R2 under `uploads/<id>/`). Each chunk PUT and the completion go through it, so status
 * checks and the final validation see one consistent state without a global lock. Methods return
 * `{error}` instead of throwing.
 */
export class UploadState {
  readonly #ctx: DurableObjectState;
  readonly #storage: DurableObjectStorage;
  readonly #env: Env;
  readonly #files: R2Bucket;
  readonly #outbox: EsOutbox;
  /** Wakes the object (its alarm, shared with the outbox) no later than the given time. */
  readonly #wake: (at: number) => Promise<void>;

  constructor(ctx: DurableObjectState, env: Env, outbox: EsOutbox, wake: (at: number) => Promise<void>) {
    this.#ctx = ctx;
    this.#storage = ctx.storage;
    this.#env = env;
    this.#files = env.FILES;
    this.#outbox = outbox;
    this.#wake = wake;
  }

  async create(begin: UploadBegin): Promise<{ ok: true } | Failure> {
    if (this.#row()) return { error: "Conflict", detail: `upload ${begin.uploadId} exists` };
    this.#storage.transactionSync(() => {
      this.#storage.sql.exec(
        `INSERT INTO upload (k, upload_id, agent_id, action_id, source, size, name, mime_type, start_ms, status, updated_at, doc)
         VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, 'AWAITING_UPLOAD', ?, ?)`,
        begin.uploadId,
        begin.agentId,
        begin.actionId,
        begin.source,
        begin.size,
        begin.name,
        begin.mimeType,
        begin.startMs,
        new Date(begin.startMs).toISOString(),
        JSON.stringify(begin.doc),
      );
      // fleet-server creates this document at begin; the first upload of an action and agent owns it.
      this.#outbox.add({ index: uploadMetaIndex(begin.source), id: uploadDocumentId(begin.actionId, begin.agentId), op: "create", body: begin.doc });
    });
    await this.#wake(begin.startMs + SWEEP_DELAY_MS);
    return { ok: true };
  }

  async info(): Promise<UploadInfo | null> {
    const row = this.#row();
    return row ? this.#toInfo(row) : null;
  }

  /** fleet-server's `Uploader.Chunk` checks, in its order: unknown, expired, stopped, chunk number. */
  async checkChunk(pos: number, nowMs: number): Promise<ChunkTicket | Failure> {
    const row = this.#row();
    if (!row) return { error: "InvalidFileID" };
    if (nowMs > row.start_ms + UPLOAD_EXPIRY_MS) return { error: "UploadExpired" };
    if (!canUpload(row.status as UploadStatus)) return { error: "UploadStopped" };
    const count = chunkCount(row.size);
    if (pos < 0 || pos >= count) return { error: "InvalidChunkNum" };
    return { agentId: row.agent_id, last: pos === count - 1 };
  }

  /**
   * Records a chunk whose bytes are already in R2 under `key`. Returns the key of the chunk it
   * replaces (a re-sent chunk with other bytes), which the caller deletes.
   */
  async recordChunk(chunk: ChunkRecord, key: string): Promise<{ replaced: string | null } | Failure> {
    const row = this.#row();
    if (!row) return { error: "InvalidFileID" };
    if (!canUpload(row.status as UploadStatus)) return { error: "UploadStopped" };
    const previous = this.#storage.sql.exec<{ r2_key: string }>("SELECT r2_key FROM chunks WHERE pos = ?", chunk.pos).toArray()[0];
    this.#storage.sql.exec(
      `INSERT INTO chunks (pos, sha2, size, last, r2_key) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (pos) DO UPDATE SET sha2 = excluded.sha2, size = excluded.size, last = excluded.last, r2_key = excluded.r2_key`,
      chunk.pos,
      chunk.sha2,
      chunk.size,
      chunk.last ? 1 : 0,
      key,
    );
    this.#touch();
    return { replaced: previous && previous.r2_key !== key ? previous.r2_key : null };
  }

  /**
   * A chunk failed its hash check. fleet-server has already overwritten the position and deletes it,
   * so whatever was stored there is gone; returns the R2 key to delete.
   */
  async dropChunk(pos: number): Promise<string | null> {
    const row = this.#row();
    if (!row || !canUpload(row.status as UploadStatus)) return null;
    const previous = this.#storage.sql.exec<{ r2_key: string }>("SELECT r2_key FROM chunks WHERE pos = ?", pos).toArray()[0];
    if (!previous) return null;
    this.#storage.sql.exec("DELETE FROM chunks WHERE pos = ?", pos);
    this.#touch();
    return previous.r2_key;
  }

  /**
   * fleet-server's `Uploader.Complete`: not writable → ErrStatusNoUploads; wrong count or gaps →
   * ErrMissingChunks (status unchanged); sizes, last flags or transit hash wrong → UPLOAD_ERROR, every
   * chunk deleted, ErrFailValidation; else READY with the transit hash.
   */
  async complete(transitHash: string): Promise<{ ok: true } | Failure> {
    // No chunk may be recorded between reading the chunk list and setting the status.
    const outcome = await this.#ctx.blockConcurrencyWhile(async (): Promise<{ ok: true } | (Failure & { keys?: string[] })> => {
      const row = this.#row();
      if (!row) return { error: "InvalidFileID" };
      if (!canUpload(row.status as UploadStatus)) return { error: "StatusNoUploads" };
      const chunks = this.#chunks();
      const verdict = await verifyChunks(chunks, row.size, transitHash);
      if (verdict === "missing") return { error: "MissingChunks" };
      if (verdict === "invalid") {
        this.#storage.transactionSync(() => {
          this.#storage.sql.exec("DELETE FROM chunks");
          this.#setStatus("UPLOAD_ERROR", null);
          this.#mirrorStatus();
        });
        return { error: "FailValidation", keys: chunks.map((chunk) => chunk.r2_key) };
      }
      this.#storage.transactionSync(() => {
        this.#setStatus("READY", transitHash.toLowerCase());
        if (this.#outbox.enabled) {
          // The bytes follow the status: the alarm copies them before it sends the READY document.
          this.#storage.sql.exec("INSERT OR REPLACE INTO es_chunks (pos, r2_key, sha2, last) SELECT pos, r2_key, sha2, last FROM chunks");
        }
        this.#mirrorStatus();
      });
      return { ok: true };
    });
    if ("error" in outcome) {
      if (outcome.keys && outcome.keys.length > 0) await this.#files.delete(outcome.keys);
      return { error: outcome.error };
    }
    return outcome;
  }

  /** The R2 keys of a READY upload in file order, for the admin download. */
  async parts(): Promise<{ info: UploadInfo; keys: string[] } | Failure> {
    const row = this.#row();
    if (!row) return { error: "NotFound", detail: "file not found" };
    if (row.status !== "READY") return { error: "NotFound", detail: `file ${row.upload_id} is not ready (status ${row.status})` };
    return { info: this.#toInfo(row), keys: this.#chunks().map((chunk) => chunk.r2_key) };
  }

  /**
   * Mirrors to Elasticsearch (chunks of a READY upload first, then the metadata outbox, so Kibana
   * never sees READY before the bytes) and, once the upload has expired, sweeps orphaned chunk bytes.
   */
  async alarm(): Promise<void> {
    const row = this.#row();
    if (!row) return;
    if (await this.#mirrorChunks(row)) await this.#outbox.drain();
    const sweepAt = row.start_ms + SWEEP_DELAY_MS;
    if (Date.now() >= sweepAt) await this.#sweep(row);
    else await this.#wake(sweepAt);
  }

  /** Copies a few pending chunks from R2 to the data index. True when none is left. */
  async #mirrorChunks(row: UploadRow): Promise<boolean> {
    const config = esConfig(this.#env);
    const sql = this.#storage.sql;
    if (!config) return true;
    const batch = sql
      .exec<{ pos: number; r2_key: string; sha2: string; last: number; attempts: number }>("SELECT * FROM es_chunks ORDER BY pos LIMIT ?", CHUNKS_PER_ALARM)
      .toArray();
    const bid = uploadDocumentId(row.action_id, row.agent_id);
    for (const chunk of batch) {
      try {
        const object = await this.#files.get(chunk.r2_key);
        if (object) {
          const data = new Uint8Array(await object.arrayBuffer());
          await putChunk(config, uploadDataIndex(row.source), { bid, pos: chunk.pos, last: chunk.last === 1, sha2: chunk.sha2, data, timestamp: new Date().toISOString() });
        } else {
          log.error("mirror.chunk_missing", { upload_id: row.upload_id, pos: chunk.pos });
        }
        sql.exec("DELETE FROM es_chunks WHERE pos = ?", chunk.pos);
      } catch (err) {
        sql.exec("UPDATE es_chunks SET attempts = attempts + 1 WHERE pos = ?", chunk.pos);
        const delay = Math.min(1000 * 2 ** Math.min(chunk.attempts + 1, 10), 5 * 60_000);
        log.warn("mirror.chunk_failed", { upload_id: row.upload_id, pos: chunk.pos, error: (err as Error).message });
        await this.#wake(Date.now() + delay);
        return false;
      }
    }
    if (sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM es_chunks").one().n === 0) return true;
    await this.#wake(Date.now());
    return false;
  }

  /** Deletes chunk bytes no record refers to (left by a race with completion or a failed write). */
  async #sweep(row: UploadRow): Promise<void> {
    const referenced = new Set(this.#chunks().map((chunk) => chunk.r2_key));
    let cursor: string | undefined;
    do {
      const page = await this.#files.list({ prefix: `uploads/${row.upload_id}/`, ...(cursor ? { cursor } : {}) });
      const orphans = page.objects.map((object) => object.key).filter((key) => !referenced.has(key));
      if (orphans.length > 0) await this.#files.delete(orphans);
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
  }

  /** The upload's id, once created. */
  id(): string | null {
    return this.#row()?.upload_id ?? null;
  }

  #row(): UploadRow | undefined {
    return this.#storage.sql.exec<UploadRow>("SELECT * FROM upload WHERE k = 1").toArray()[0];
  }

  #chunks(): Array<ChunkRecord & { r2_key: string }> {
    return this.#storage.sql
      .exec<{ pos: number; sha2: string; size: number; last: number; r2_key: string }>("SELECT pos, sha2, size, last, r2_key FROM chunks ORDER BY pos")
      .toArray()
      .map((row) => ({ pos: row.pos, sha2: row.sha2, size: row.size, last: row.last === 1, r2_key: row.r2_key }));
  }

  #touch(): void {
    this.#storage.sql.exec("UPDATE upload SET updated_at = ? WHERE k = 1", new Date().toISOString());
  }

  /** Queues the metadata document in its current state, in the caller's transaction. */
  #mirrorStatus(): void {
    const row = this.#row()!;
    this.#outbox.add({
      index: uploadMetaIndex(row.source),
      id: uploadDocumentId(row.action_id, row.agent_id),
      op: "replace",
      body: JSON.parse(row.doc) as JsonObject,
    });
  }

  #setStatus(status: UploadStatus, transitHash: string | null): void {
    const row = this.#row()!;
    const doc = JSON.parse(row.doc) as JsonObject;
    doc.file = { ...(doc.file as JsonObject), Status: status };
    if (transitHash) doc.transithash = { sha256: transitHash };
    this.#storage.sql.exec(
      "UPDATE upload SET status = ?, transithash = ?, updated_at = ?, doc = ? WHERE k = 1",
      status,
      transitHash,
      new Date().toISOString(),
      JSON.stringify(doc),
    );
  }

  #toInfo(row: UploadRow): UploadInfo {
    const received = this.#storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM chunks").one().n;
    return {
      upload_id: row.upload_id,
      agent_id: row.agent_id,
      action_id: row.action_id,
      src: row.source,
      name: row.name,
      mime_type: row.mime_type,
      size: row.size,
      chunk_size: CHUNK_SIZE,
      chunk_count: chunkCount(row.size),
      chunks_received: received,
      status: row.status as UploadStatus,
      upload_start: new Date(row.start_ms).toISOString(),
      expired: Date.now() > row.start_ms + UPLOAD_EXPIRY_MS,
      updated_at: row.updated_at,
      ...(row.transithash ? { transithash: row.transithash } : {}),
      doc: JSON.parse(row.doc) as JsonObject,
    };
  }
}
