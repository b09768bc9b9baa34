import { artifactMeta } from "../artifacts/meta";
import type { ArtifactMeta, ArtifactSource, StoredArtifact } from "../artifacts/source";
import { esRequest } from "./client";
import type { EsConfig } from "./config";
import { ARTIFACTS_INDEX } from "./indices";

/** Concurrent `.fleet-artifacts` reads per isolate (fleet-server: 8 per process, then 429). */
const MAX_IN_FLIGHT = 4;

let inFlight = 0;
const waiting: Array<() => void> = [];
/** One read per artifact version at a time; concurrent requests for it share the answer. */
const pending = new Map<string, Promise<StoredArtifact | null>>();

interface ArtifactDocument extends Partial<Omit<ArtifactMeta, "decoded_size" | "encoded_size">> {
  decoded_size?: number | string;
  encoded_size?: number | string;
  body?: string;
}

/**
 * Artifacts Kibana writes into Elasticsearch's `.fleet-artifacts` (fleet-protocol.md §2.6): a term
 * query on `identifier` and `decoded_sha256`, `body` base64-decoded. A missing index or no hit is
 * "not found". The route checks the record against the URL and the bytes against `encoded_sha256`
 * and then keeps them in the edge cache, so a fleet costs about one read per Cloudflare location.
 * Throttle, kept small: identical concurrent reads are coalesced (fleet-server: one per sha2) and at
 * most `MAX_IN_FLIGHT` reads run per isolate; the rest wait their turn rather than get 429.
 */
export class EsArtifactSource implements ArtifactSource {
  readonly name = "elasticsearch";
  constructor(private readonly config: EsConfig) {}

  get(identifier: string, decodedSha256: string): Promise<StoredArtifact | null> {
    const key = `${this.config.url}|${identifier}|${decodedSha256.toLowerCase()}`;
    let read = pending.get(key);
    if (!read) {
      read = throttled(() => this.#read(identifier, decodedSha256.toLowerCase())).finally(() => pending.delete(key));
      pending.set(key, read);
    }
    return read;
  }

  async #read(identifier: string, decodedSha256: string): Promise<StoredArtifact | null> {
    const { status, body } = await esRequest<{ hits?: { hits: Array<{ _source?: ArtifactDocument }> } }>(this.config, {
      method: "POST",
      path: `/${ARTIFACTS_INDEX}/_search`,
      body: {
        size: 1,
        query: { bool: { filter: [{ term: { identifier } }, { term: { decoded_sha256: decodedSha256 } }] } },
      },
      accept: [404],
      timeoutMs: 10_000,
    });
    const doc = status === 200 ? body.hits?.hits[0]?._source : undefined;
    if (!doc) return null;
    return {
      meta: artifactMeta(doc),
      body: fromBase64(doc.body ?? ""),
    };
  }
}

async function throttled<T>(run: () => Promise<T>): Promise<T> {
  while (inFlight >= MAX_IN_FLIGHT) await new Promise<void>((resolve) => waiting.push(resolve));
  inFlight++;
  try {
    return await run();
  } finally {
    inFlight--;
    waiting.shift()?.();
  }
}

/** Base64 as Elasticsearch stores `binary` and Kibana writes it; bad input yields bytes that fail the hash check. */
function fromBase64(text: string): Uint8Array {
  let binary: string;
  try {
    binary = atob(text.replace(/\s+/g, ""));
  } catch {
    return new Uint8Array();
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
