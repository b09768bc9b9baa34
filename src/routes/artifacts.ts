import { Hono } from "hono";
import { parseApiKeyHeader } from "../auth/api-key";
import { authenticateByAccessKey } from "../auth/key-owner";
import { artifactSources, type StoredArtifact } from "../artifacts/source";
import type { AppEnv, Env } from "../config";
import { agentObject, policyHub } from "../durable-stubs";
import { FleetError } from "../errors";
import type { JsonObject, JsonValue } from "../protocol/parse";
import { isSha256Hex, sha256Bytes } from "../protocol/upload";
import { log } from "../log";

/** How long a verified artifact stays in the edge cache (fleet-server's artifact cache TTL). */
const EDGE_TTL_SECONDS = 24 * 60 * 60;

/**
 * `GET /api/fleet/artifacts/{id}/{sha2}` (fleet-protocol.md §2.6). The agent is found by its access
 * key, and only gets artifacts its policy lists (`inputs[].artifact_manifest.artifacts[id].decoded_sha256`).
 * Bytes come from the edge cache, else from the first `ArtifactSource` that has them (checked against
 * `encoded_sha256` before they are cached). The cache is consulted only after the per-agent checks,
 * under a key no client can request, so it never answers for an unauthorized agent.
 */
export const artifacts = new Hono<AppEnv>().get("/api/fleet/artifacts/:id/:sha2", async (c) => {
  const identifier = c.req.param("id");
  const sha2 = c.req.param("sha2");
  const agent = await authenticateByAccessKey(c.env, parseApiKeyHeader(c.req.header("Authorization")));
  // fleet-server answers 500 for this; a malformed request is a 400 here.
  if (!isSha256Hex(sha2)) throw new FleetError("BadRequest", "malformed sha256");
  await authorizeArtifact(c.env, agent, identifier, sha2);

  const cached = await edgeCache()?.match(cacheKey(identifier, sha2));
  let body: ArrayBuffer | Uint8Array;
  let etag: string;
  if (cached) {
    body = await cached.arrayBuffer();
    etag = cached.headers.get("ETag") ?? "";
  } else {
    const artifact = await fetchArtifact(c.env, identifier, sha2);
    body = artifact.body;
    etag = `"${artifact.meta.encoded_sha256.toLowerCase()}"`;
    const store = edgeCache()?.put(
      cacheKey(identifier, sha2),
      new Response(artifact.body.slice(), {
        headers: { "Content-Type": "application/octet-stream", ETag: etag, "Cache-Control": `public, max-age=${EDGE_TTL_SECONDS}` },
      }),
    );
    if (store) c.executionCtx.waitUntil(store.catch((err: unknown) => log.warn("artifact.cache_put_failed", { error: String(err) })));
  }
  const headers = new Headers({ ETag: etag, "Cache-Control": "private, no-cache" });
  if (etagMatches(c.req.header("If-None-Match"), etag)) return new Response(null, { status: 304, headers });
  headers.set("Content-Type", "application/octet-stream");
  return new Response(body, { status: 200, headers });
});

/** fleet-server's `authorizeArtifact`: the agent's policy must list this id with this decoded sha256. */
async function authorizeArtifact(env: Env, agent: { agentId: string; policyId: string }, identifier: string, sha2: string): Promise<void> {
  let policyId = agent.policyId;
  if (!policyId) policyId = (await agentObject(env, agent.agentId).record())?.agent_policy_id ?? "";
  if (!policyId) throw new FleetError("AgentPolicyIDMissing");
  const latest = await policyHub(env, policyId).latest();
  if (!latest || !policyHasArtifact(latest.policy, identifier, sha2)) throw new FleetError("UnauthorizedArtifact");
}

export function policyHasArtifact(policy: JsonObject, identifier: string, sha2: string): boolean {
  const inputs = policy.inputs;
  if (!Array.isArray(inputs)) return false;
  return inputs.some((input) => {
    const entry = member(member(member(input, "artifact_manifest"), "artifacts"), identifier);
    return member(entry, "decoded_sha256") === sha2;
  });
}

function member(value: JsonValue | undefined, key: string): JsonValue | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  return Object.hasOwn(value, key) ? value[key] : undefined;
}

async function fetchArtifact(env: Env, identifier: string, sha2: string): Promise<StoredArtifact> {
  for (const source of artifactSources(env)) {
    const artifact = await source.get(identifier, sha2);
    if (!artifact) continue;
    // fleet-server's sanity checks: the record matches the URL and the bytes match encoded_sha256.
    if (artifact.meta.identifier !== identifier || artifact.meta.decoded_sha256.toLowerCase() !== sha2.toLowerCase()) {
      log.error("artifact.record_mismatch", { identifier, sha2, source: source.name });
      throw new FleetError("Internal");
    }
    if ((await sha256Bytes(artifact.body)) !== artifact.meta.encoded_sha256.toLowerCase()) {
      log.error("artifact.bytes_mismatch", { identifier, sha2, source: source.name });
      throw new FleetError("Internal");
    }
    return artifact;
  }
  throw new FleetError("ArtifactNotFound");
}

/** A key in a host nobody can request, so only this route reads or writes the entry. */
export const cacheKey = (identifier: string, sha2: string): Request =>
  new Request(`https://artifact-cache.fleet.invalid/${encodeURIComponent(identifier)}/${sha2.toLowerCase()}`);

/** The Cache API where the runtime has it (it is a no-op on workers.dev, live on custom domains). */
export function edgeCache(): Cache | undefined {
  return typeof caches === "undefined" ? undefined : caches.default;
}

/** RFC 9110 weak comparison of an `If-None-Match` list against our strong ETag. */
function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header || !etag) return false;
  return header.split(",").some((raw) => {
    const candidate = raw.trim();
    return candidate === "*" || candidate.replace(/^W\//, "") === etag;
  });
}
