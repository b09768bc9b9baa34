import type { Env } from "../config";
import { EsArtifactSource } from "../es/artifacts";
import { esConfig } from "../es/config";
import { artifactMeta } from "./meta";

/**
 * Artifact metadata in the field names of Kibana's `.fleet-artifacts` documents (fleet-server
 * `model.Artifact`), without the body.
 */
export interface ArtifactMeta {
  identifier: string;
  decoded_sha256: string;
  decoded_size: number;
  encoded_sha256: string;
  encoded_size: number;
  compression_algorithm: string;
  encryption_algorithm: string;
  created: string;
  package_name?: string;
}

export interface StoredArtifact {
  meta: ArtifactMeta;
  /** The encoded bytes exactly as stored (still compressed), what agents receive. */
  body: Uint8Array;
}

/**
 * Where artifact bytes come from. The artifacts route asks each source in order and serves the first
 * hit (after its integrity check and through the edge cache): R2, filled by the admin publish route,
 * then, when Elasticsearch is configured, what Kibana writes into `.fleet-artifacts`
 * (`src/es/artifacts.ts`: term query on `identifier` + `decoded_sha256`, base64 `body`).
 */
export interface ArtifactSource {
  readonly name: string;
  get(identifier: string, decodedSha256: string): Promise<StoredArtifact | null>;
}

/** R2 layout: `artifacts/<identifier>/<decoded_sha256>`, metadata in the object's custom metadata. */
export const artifactKey = (identifier: string, decodedSha256: string): string =>
  `artifacts/${encodeURIComponent(identifier)}/${decodedSha256.toLowerCase()}`;

export class R2ArtifactSource implements ArtifactSource {
  readonly name = "r2";
  constructor(private readonly bucket: R2Bucket) {}

  async get(identifier: string, decodedSha256: string): Promise<StoredArtifact | null> {
    const object = await this.bucket.get(artifactKey(identifier, decodedSha256));
    if (!object) return null;
    return { meta: metaFromCustom(object.customMetadata ?? {}), body: new Uint8Array(await object.arrayBuffer()) };
  }

  async put(artifact: StoredArtifact): Promise<void> {
    await this.bucket.put(artifactKey(artifact.meta.identifier, artifact.meta.decoded_sha256), artifact.body, {
      httpMetadata: { contentType: "application/octet-stream" },
      customMetadata: metaToCustom(artifact.meta),
      sha256: artifact.meta.encoded_sha256,
    });
  }

  async delete(identifier: string, decodedSha256: string): Promise<boolean> {
    const key = artifactKey(identifier, decodedSha256);
    if (!(await this.bucket.head(key))) return false;
    await this.bucket.delete(key);
    return true;
  }

  async list(): Promise<ArtifactMeta[]> {
    const items: ArtifactMeta[] = [];
    let cursor: string | undefined;
    do {
      // `include` is honoured by the runtime but missing from workers-types' R2ListOptions.
      const options = { prefix: "artifacts/", include: ["customMetadata"], ...(cursor ? { cursor } : {}) } as R2ListOptions;
      const page = await this.bucket.list(options);
      for (const object of page.objects) items.push(metaFromCustom(object.customMetadata ?? {}));
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
    return items;
  }
}

/** The sources agents' artifact requests consult, in order: R2, then Elasticsearch when configured. */
export function artifactSources(env: Env): ArtifactSource[] {
  const es = esConfig(env);
  return es ? [new R2ArtifactSource(env.FILES), new EsArtifactSource(es)] : [new R2ArtifactSource(env.FILES)];
}

function metaToCustom(meta: ArtifactMeta): Record<string, string> {
  const custom: Record<string, string> = {};
  for (const [key, value] of Object.entries(meta)) if (value !== undefined) custom[key] = String(value);
  return custom;
}

const metaFromCustom = (custom: Record<string, string>): ArtifactMeta => artifactMeta(custom);


