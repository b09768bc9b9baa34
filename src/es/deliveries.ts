import { esRequest } from "./client";
import type { EsConfig } from "./config";
import { log } from "../log";

/**
 * Files Kibana publishes for agents in Elasticsearch (fleet-protocol.md §2.8): metadata in
 * `.fleet-fileds-tohost-meta-<integration>` (`_id` = file id, `file.Meta.target_agents`,
 * `file.Status`), chunks in `.fleet-fileds-tohost-data-<integration>` under `<file id>.<n>` with
 * `bid` = file id and the bytes in `data`. Integration libraries (`?source=<lib>`) keep the same
 * two documents in `.<integration>-fleetfiles-<lib>-meta` / `-data`, read by id without a target.
 * Only read here: Elasticsearch's Fleet plugin owns these indices (data streams on a full stack,
 * so a chunk is read from the backing index its search hit names).
 */
const TO_HOST_META = ".fleet-fileds-tohost-meta-*";
const TO_HOST_DATA = ".fleet-fileds-tohost-data-*";
const libraryIndex = (integration: string, library: string, kind: "meta" | "data") => `.${integration}-fleetfiles-${library}-${kind}`;

/** fleet-server's chunk size when the metadata names none (the file-storage spec's maximum). */
const DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024;

export interface StoredDelivery {
  size: number;
  chunkSize: number;
  mimeType: string;
  sha256: string;
  /** Chunk documents in file order: chunk `n` holds bytes `[n × chunkSize, (n + 1) × chunkSize)`. */
  chunks: Array<{ index: string; id: string }>;
}

interface FileMeta {
  file?: { size?: number; ChunkSize?: number; mime_type?: string; hash?: { sha256?: string } };
}

/** A file for this agent: its metadata names the agent and says READY. Null when there is none. */
export async function findAgentFile(config: EsConfig, fileId: string, agentId: string): Promise<StoredDelivery | null> {
  const found = await esRequest<{ hits?: { hits: Array<{ _source?: FileMeta }> } }>(config, {
    method: "POST",
    path: `/${TO_HOST_META}/_search`,
    body: {
      size: 1,
      query: { bool: { filter: [{ ids: { values: [fileId] } }, { term: { "file.Meta.target_agents": agentId } }, { term: { "file.Status": "READY" } }] } },
    },
    accept: [404],
    timeoutMs: 10_000,
  });
  const meta = found.status === 200 ? found.body.hits?.hits[0]?._source : undefined;
  return meta ? withChunks(config, fileId, meta, TO_HOST_DATA) : null;
}

/** A file of an integration's library (`?source=`), for any agent the integration lets ask. */
export async function findLibraryFile(config: EsConfig, fileId: string, integration: string, library: string): Promise<StoredDelivery | null> {
  const found = await esRequest<{ found?: boolean; _source?: FileMeta }>(config, {
    method: "GET",
    path: `/${encodeURIComponent(libraryIndex(integration, library, "meta"))}/_doc/${encodeURIComponent(fileId)}`,
    accept: [404],
    timeoutMs: 10_000,
  });
  const meta = found.status === 200 && found.body.found ? found.body._source : undefined;
  return meta ? withChunks(config, fileId, meta, libraryIndex(integration, library, "data")) : null;
}

/**
 * A chunk's bytes: `data`'s stored value, in CBOR as fleet-server reads it (the Fleet plugin's
 * templates store `data`), so the bytes arrive as bytes.
 */
export async function readChunk(config: EsConfig, chunk: { index: string; id: string }): Promise<Uint8Array> {
  const { body } = await esRequest<{ fields?: { data?: unknown[] } }>(config, {
    method: "GET",
    path: `/${encodeURIComponent(chunk.index)}/_doc/${encodeURIComponent(chunk.id)}?stored_fields=data&_source=false`,
    cbor: true,
    timeoutMs: 30_000,
  });
  const data = body.fields?.data?.[0];
  return data instanceof Uint8Array ? data : new Uint8Array();
}

/**
 * The file's chunk documents, found by `bid` and ordered by the number in their id. A file whose
 * chunks are not exactly 0…n−1, or too few for its size, is not served (Kibana may still be writing it).
 */
async function withChunks(config: EsConfig, fileId: string, meta: FileMeta, dataIndex: string): Promise<StoredDelivery | null> {
  const size = meta.file?.size ?? 0;
  const chunkSize = meta.file?.ChunkSize && meta.file.ChunkSize > 0 ? meta.file.ChunkSize : DEFAULT_CHUNK_SIZE;
  const found = await esRequest<{ hits?: { hits: Array<{ _index: string; _id: string }> } }>(config, {
    method: "POST",
    path: `/${encodeURIComponent(dataIndex)}/_search`,
    body: { size: 10_000, _source: false, query: { term: { bid: fileId } } },
    accept: [404],
    timeoutMs: 10_000,
  });
  const hits = found.status === 200 ? (found.body.hits?.hits ?? []) : [];
  const chunks = hits
    .map((hit) => ({ index: hit._index, id: hit._id, position: Number(hit._id.slice(fileId.length + 1)) }))
    .sort((a, b) => a.position - b.position);
  const complete = chunks.length === Math.ceil(size / chunkSize) && chunks.every((chunk, i) => chunk.position === i && chunk.id === `${fileId}.${i}`);
  if (!complete) {
    log.warn("file.delivery_incomplete", { file_id: fileId, size, chunk_size: chunkSize, chunks: chunks.length });
    return null;
  }
  return {
    size,
    chunkSize,
    mimeType: meta.file?.mime_type ?? "",
    sha256: meta.file?.hash?.sha256 ?? "",
    chunks: chunks.map(({ index, id }) => ({ index, id })),
  };
}
