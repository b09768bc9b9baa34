/**
 * Endpoint artifacts as Kibana builds them (zlib-compressed JSON, sha256 of both forms), the
 * `.fleet-artifacts` document it writes, and the policy input that lists them. Web APIs only, so
 * the workerd tests and the Node tests against a real Elasticsearch share one builder. (The casts
 * to `Uint8Array<ArrayBuffer>` are for the DOM typing of the Node tests: no SharedArrayBuffer here.)
 */

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

/** zlib (RFC 1950), what Kibana compresses artifacts with. */
export async function zlib(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

export interface ArtifactFixture {
  identifier: string;
  decoded: Uint8Array;
  encoded: Uint8Array;
  decoded_sha256: string;
  encoded_sha256: string;
}

export async function artifactFixture(identifier: string, content: unknown): Promise<ArtifactFixture> {
  const decoded = new TextEncoder().encode(JSON.stringify(content));
  const encoded = await zlib(decoded);
  return { identifier, decoded, encoded, decoded_sha256: await sha256Hex(decoded), encoded_sha256: await sha256Hex(encoded) };
}

/** The `.fleet-artifacts` document Kibana writes (also the body of the admin publish route). */
export function artifactDoc(a: ArtifactFixture, overrides: Record<string, unknown> = {}) {
  return {
    identifier: a.identifier,
    compression_algorithm: "zlib",
    encryption_algorithm: "none",
    encoded_sha256: a.encoded_sha256,
    encoded_size: a.encoded.byteLength,
    decoded_sha256: a.decoded_sha256,
    decoded_size: a.decoded.byteLength,
    created: "2026-08-22T10:00:00.000Z",
    package_name: "endpoint",
    body: toBase64(a.encoded),
    ...overrides,
  };
}

/** An Endpoint-style input whose `artifact_manifest` lists the given artifacts, as Kibana's manifest does. */
export function manifestInput(artifacts: ArtifactFixture[]) {
  const entries: Record<string, unknown> = {};
  for (const a of artifacts) {
    entries[a.identifier] = {
      encryption_algorithm: "none",
      decoded_sha256: a.decoded_sha256,
      decoded_size: a.decoded.byteLength,
      encoded_sha256: a.encoded_sha256,
      encoded_size: a.encoded.byteLength,
      compression_algorithm: "zlib",
      relative_url: `/api/fleet/artifacts/${a.identifier}/${a.decoded_sha256}`,
    };
  }
  return { id: "endpoint-1", type: "endpoint", use_output: "default", artifact_manifest: { manifest_version: "1.0.1", schema_version: "v1", artifacts: entries } };
}
