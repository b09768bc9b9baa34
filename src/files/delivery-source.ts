import type { Env } from "../config";
import { findAgentFile, findLibraryFile, readChunk, type StoredDelivery } from "../es/deliveries";
import { esConfig, type EsConfig } from "../es/config";
import { FleetError } from "../errors";
import type { ByteRange } from "../protocol/range";
import { deliveryDataKey, deliveryMeta, deliveryTargetKey } from "./deliveries";
import { log } from "../log";

/** A file an agent may download, wherever it is stored. */
export interface DeliverableFile {
  size: number;
  mimeType: string;
  sha256: string;
  /** The bytes, all of them or one range; null when they vanished since the file was found. */
  open(range?: ByteRange): Promise<ReadableStream<Uint8Array> | null>;
}

/** Integrations allowed to read library files with `?source=` (fleet-server's allow-list). */
const PRODUCT_ORIGIN_FILE_USERS = new Map([["endpoint-security", "endpoint"]]);

/**
 * Finds file `fileId` for the agent (fleet-protocol.md §2.8). Without `source`: a file an admin
 * published here (R2), else one Kibana published for the agent in Elasticsearch. With `source`: a
 * file of the requesting integration's library, which only Elasticsearch holds.
 */
export async function locateDelivery(env: Env, fileId: string, agentId: string, source: string, productOrigin: string): Promise<DeliverableFile | null> {
  const config = esConfig(env);
  const library = sanitizedIndexInput(source);
  if (library !== "") {
    const integration = PRODUCT_ORIGIN_FILE_USERS.get(sanitizedIndexInput(productOrigin));
    if (!integration) throw new FleetError("ClientFileForbidden");
    const stored = config ? await findLibraryFile(config, fileId, integration, library) : null;
    return stored && config ? fromElasticsearch(config, stored) : null;
  }
  const published = await fromR2(env.FILES, fileId, agentId);
  if (published || !config) return published;
  const stored = await findAgentFile(config, fileId, agentId);
  return stored && fromElasticsearch(config, stored);
}

/** One `head` for the agent's marker, one for the bytes' metadata (see deliveries.ts). */
async function fromR2(bucket: R2Bucket, fileId: string, agentId: string): Promise<DeliverableFile | null> {
  const [target, head] = await Promise.all([bucket.head(deliveryTargetKey(fileId, agentId)), bucket.head(deliveryDataKey(fileId))]);
  if (!target || !head) return null;
  const meta = deliveryMeta(fileId, head.customMetadata, head.size);
  return {
    size: meta.size,
    mimeType: meta.mime_type,
    sha256: meta.sha256,
    open: async (range) => (await bucket.get(deliveryDataKey(fileId), range ? { range: { offset: range.start, length: range.length } } : undefined))?.body ?? null,
  };
}

/**
 * Streams the chunks that cover the range, one chunk document in memory at a time. The length is
 * fixed up front, so a chunk shorter than the metadata promised aborts the response rather than
 * ending it early as if complete.
 */
function fromElasticsearch(config: EsConfig, file: StoredDelivery): DeliverableFile {
  return {
    size: file.size,
    mimeType: file.mimeType,
    sha256: file.sha256,
    open: async (range = { start: 0, length: file.size }) => {
      const first = Math.floor(range.start / file.chunkSize);
      const last = Math.floor((range.start + range.length - 1) / file.chunkSize);
      let next = first;
      const chunks = new ReadableStream<Uint8Array>(
        {
          async pull(controller) {
            if (next > last || range.length === 0) return controller.close();
            const bytes = await readChunk(config, file.chunks[next]!);
            const offset = next * file.chunkSize;
            const from = Math.max(range.start - offset, 0);
            const to = Math.min(range.start + range.length - offset, bytes.length);
            next++;
            controller.enqueue(bytes.subarray(from, to));
          },
        },
        { highWaterMark: 0 },
      );
      const fixed = new FixedLengthStream(range.length);
      void chunks.pipeTo(fixed.writable).catch((err: unknown) => {
        log.error("file.delivery_failed", { chunk: next - 1, error: (err as Error).message });
      });
      return fixed.readable;
    },
  };
}

/** fleet-server's `sanitizedIndexInput`: lower-cased, trimmed, index-name metacharacters removed. */
function sanitizedIndexInput(text: string): string {
  return text.trim().toLowerCase().replace(/[*?"<>\\/,|#]/g, "");
}
