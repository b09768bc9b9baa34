import type { BulkItemResult } from "./bulk";
import { cborMap } from "./cbor";
import { EsError, esRequest } from "./client";
import type { EsConfig } from "./config";
import type { JsonObject } from "../protocol/parse";
import { log } from "../log";

/**
 * fleet-server's upload documents (fleet-protocol.md §2.7): metadata in
 * `.fleet-fileds-fromhost-meta-<src>` under `<action_id>.<agent_id>`, chunks in
 * `.fleet-fileds-fromhost-data-<src>` under `<that id>.<n>` as CBOR `{"@timestamp","last","bid","sha2","data"}`.
 * Where Elasticsearch's Fleet plugin is installed these indices are data streams, which accept only
 * `create` on the stream and an `if_seq_no` write on a backing index: what this module sends.
 */

/** `_id` of an upload's metadata document, which is also the `bid` of its chunks (Kibana's file id). */
export const uploadDocumentId = (actionId: string, agentId: string): string => `${actionId}.${agentId}`;

/**
 * Overwrites a document where it is (a plain index, or a data stream's backing index), found by
 * `_id` after a refresh, with `if_seq_no`/`if_primary_term`; creates it when it does not exist.
 * A document whose `upload_id` differs from the body's belongs to another upload of the same
 * action and agent (fleet-server refuses that second upload; this server accepts it): it is left
 * alone. Returns a `_bulk`-like item: 2xx delivered, anything else is retried.
 */
export async function replaceDocument(config: EsConfig, index: string, id: string, body: JsonObject): Promise<BulkItemResult> {
  try {
    await esRequest(config, { method: "POST", path: `/${index}/_refresh`, accept: [404] });
    const found = await esRequest<{ hits?: { hits: Array<{ _index: string; _seq_no: number; _primary_term: number; _source?: JsonObject }> } }>(config, {
      method: "POST",
      path: `/${index}/_search`,
      body: { size: 1, seq_no_primary_term: true, _source: ["upload_id"], query: { ids: { values: [id] } } },
      accept: [404],
    });
    const hit = found.status === 200 ? found.body.hits?.hits[0] : undefined;
    if (!hit) {
      const created = await esRequest(config, { method: "PUT", path: `/${index}/_create/${encodeURIComponent(id)}`, body, accept: [409] });
      // Created meanwhile by someone else: look again on the next attempt.
      return created.status === 409 ? { status: 409, error: "created concurrently" } : { status: created.status };
    }
    if (body.upload_id !== undefined && hit._source?.upload_id !== undefined && hit._source.upload_id !== body.upload_id) {
      log.warn("mirror.upload_superseded", { index, id, upload_id: body.upload_id, owner: hit._source.upload_id });
      return { status: 200 };
    }
    const written = await esRequest(config, {
      method: "PUT",
      path: `/${hit._index}/_doc/${encodeURIComponent(id)}?if_seq_no=${hit._seq_no}&if_primary_term=${hit._primary_term}`,
      body,
      accept: [409],
    });
    return written.status === 409 ? { status: 409, error: "changed concurrently" } : { status: written.status };
  } catch (err) {
    if (err instanceof EsError && !err.transient) return { status: err.status, error: `${err.type}: ${err.reason}` };
    throw err;
  }
}

/**
 * One chunk document, written as fleet-server writes it: CBOR, so `data` is a byte string that
 * Kibana's file client (`GET …/_doc/<bid>.<n>` with `Accept: application/cbor`) reads back as bytes.
 * An existing document (409) is a chunk already delivered.
 */
export async function putChunk(config: EsConfig, index: string, chunk: { bid: string; pos: number; last: boolean; sha2: string; data: Uint8Array; timestamp: string }): Promise<void> {
  const bytes = cborMap([
    ["@timestamp", chunk.timestamp],
    ["last", chunk.last],
    ["bid", chunk.bid],
    ["sha2", chunk.sha2],
    ["data", chunk.data],
  ]);
  await esRequest(config, {
    method: "PUT",
    path: `/${index}/_create/${encodeURIComponent(`${chunk.bid}.${chunk.pos}`)}`,
    raw: { contentType: "application/cbor", bytes },
    accept: [409],
    timeoutMs: 60_000,
  });
}
