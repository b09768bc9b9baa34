import { DurableObject } from "cloudflare:workers";
import { useLogSettings } from "../src/log";
import { fleetConfig, type Env } from "../src/config";
import { mirrorMonitorFor } from "../src/durable-stubs";
import type { Failure } from "../src/errors";
import type { UploadInfo } from "../src/files/upload-info";
import type { ChunkRecord, UploadBegin } from "../src/protocol/upload";
import { AgentUploadIndex, type IndexedUpload } from "./agent-upload-index";
import { AlarmSchedule } from "./alarm-schedule";
import { EsOutbox, OUTBOX_SCHEMA } from "./es-outbox";
import { migrateOnStart } from "./sql-schema";
import { UploadState, type ChunkTicket } from "./upload-state";

const SCHEMA = [
  `CREATE TABLE upload (
     k INTEGER PRIMARY KEY CHECK (k = 1),
     upload_id TEXT NOT NULL,
     agent_id TEXT NOT NULL,
     action_id TEXT NOT NULL,
     source TEXT NOT NULL,
     size INTEGER NOT NULL,
     name TEXT NOT NULL,
     mime_type TEXT NOT NULL,
     start_ms INTEGER NOT NULL,
     status TEXT NOT NULL,
     transithash TEXT,
     updated_at TEXT NOT NULL,
     doc TEXT NOT NULL);
   CREATE TABLE chunks (pos INTEGER PRIMARY KEY, sha2 TEXT NOT NULL, size INTEGER NOT NULL, last INTEGER NOT NULL, r2_key TEXT NOT NULL);
   CREATE TABLE agent_uploads (upload_id TEXT PRIMARY KEY, action_id TEXT NOT NULL, created_at TEXT NOT NULL);`,
  OUTBOX_SCHEMA,
  // Chunks of a READY upload still to copy into `.fleet-fileds-fromhost-data-<src>`.
  `CREATE TABLE es_chunks (pos INTEGER PRIMARY KEY, r2_key TEXT NOT NULL, sha2 TEXT NOT NULL, last INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0);`,
];

/**
 * Agent file uploads, one Durable Object class in two roles chosen by the object's name:
 * `upload:<uuid>` is one upload's state machine (`UploadState`, upload-state.ts) and `agent:<agentId>`
 * is that agent's upload index (`AgentUploadIndex`, agent-upload-index.ts). Both roles share the
 * class (and its schema) so existing objects keep their data; each object only ever uses one role.
 */
export class Uploads extends DurableObject<Env> {
  readonly #upload: UploadState;
  readonly #index: AgentUploadIndex;
  readonly #alarms: AlarmSchedule;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    useLogSettings(env);
    const owner = () => `upload:${this.#upload.id() ?? ctx.id.toString()}`;
    this.#alarms = new AlarmSchedule(ctx.storage);
    const wake = (at: number) => this.#alarms.request(at);
    const outbox = new EsOutbox(ctx, env, {
      flushDelayMs: fleetConfig(env).mirrorFlushMs,
      report: (backlog) => mirrorMonitorFor(env, owner()).report(owner(), backlog),
      wake,
    });
    this.#upload = new UploadState(ctx, env, outbox, wake);
    this.#index = new AgentUploadIndex(ctx.storage.sql);
    migrateOnStart(ctx, SCHEMA);
  }

  // ---- upload role (`upload:<uuid>`) ----

  async create(begin: UploadBegin): Promise<{ ok: true } | Failure> {
    return this.#upload.create(begin);
  }

  async info(): Promise<UploadInfo | null> {
    return this.#upload.info();
  }

  async checkChunk(pos: number, nowMs: number): Promise<ChunkTicket | Failure> {
    return this.#upload.checkChunk(pos, nowMs);
  }

  async recordChunk(chunk: ChunkRecord, key: string): Promise<{ replaced: string | null } | Failure> {
    return this.#upload.recordChunk(chunk, key);
  }

  async dropChunk(pos: number): Promise<string | null> {
    return this.#upload.dropChunk(pos);
  }

  async complete(transitHash: string): Promise<{ ok: true } | Failure> {
    return this.#upload.complete(transitHash);
  }

  async parts(): Promise<{ info: UploadInfo; keys: string[] } | Failure> {
    return this.#upload.parts();
  }

  /** Only upload objects set alarms (mirroring and the sweep of orphaned chunk bytes). */
  override async alarm(): Promise<void> {
    await this.#alarms.run(() => this.#upload.alarm());
  }

  // ---- per-agent index role (`agent:<agentId>`) ----

  async indexUpload(uploadId: string, actionId: string, createdAt: string): Promise<void> {
    this.#index.add(uploadId, actionId, createdAt);
  }

  /** The agent's uploads, newest first. */
  async indexed(limit: number): Promise<IndexedUpload[]> {
    return this.#index.newest(limit);
  }
}
