import { SELF } from "cloudflare:test";
import { BASE, adminRequest, agentHeaders, agentRequest, putPolicy, type Enrolled } from "../helpers";
import { artifactDoc, manifestInput, sha256Hex, toBase64, type ArtifactFixture } from "../support/artifact-fixture";

export async function publishArtifact(a: ArtifactFixture): Promise<void> {
  const res = await adminRequest("PUT", `/api/fleet/artifacts/${a.identifier}`, artifactDoc(a));
  if (res.status !== 200) throw new Error(`publish artifact: ${res.status} ${await res.text()}`);
}

export async function policyListing(policyId: string, artifacts: ArtifactFixture[]) {
  await putPolicy(policyId, { inputs: [manifestInput(artifacts)] });
}

export function getArtifact(key: string, identifier: string, sha2: string, headers: Record<string, string> = {}) {
  return agentRequest("GET", `/api/fleet/artifacts/${identifier}/${sha2}`, { key, headers });
}

/** The begin body a 9.6 agent sends for diagnostics (elastic-agent-client.md §8.1). */
export function beginBody(agent: Enrolled, size: number, overrides: Record<string, unknown> = {}) {
  return {
    action_id: "6e4d2c1b-0a9f-4e8d-b7c6-5a4b3c2d1e0f",
    agent_id: agent.id,
    src: "agent",
    file: {
      size,
      name: "elastic-agent-diagnostics-2026-08-22T15-03-01Z-00.zip",
      ext: "zip",
      mime_type: "application/zip",
      hash: { sha256: "", md5: "" },
    },
    contents: null,
    ...overrides,
  };
}

export async function beginUpload(agent: Enrolled, size: number, overrides: Record<string, unknown> = {}): Promise<string> {
  const res = await agentRequest("POST", "/api/fleet/uploads", { key: agent.key, body: beginBody(agent, size, overrides) });
  if (res.status !== 200) throw new Error(`begin: ${res.status} ${await res.text()}`);
  return (await res.json<{ upload_id: string }>()).upload_id;
}

export async function putChunk(key: string, uploadId: string, n: number | string, bytes: Uint8Array, sha2?: string) {
  return agentRequest("PUT", `/api/fleet/uploads/${uploadId}/${n}`, {
    key,
    body: bytes,
    headers: { "X-Chunk-Sha2": sha2 ?? (await sha256Hex(bytes)) },
  });
}

export function completeUpload(key: string, uploadId: string, transithash: string) {
  return agentRequest("POST", `/api/fleet/uploads/${uploadId}`, { key, body: { transithash: { sha256: transithash } } });
}

/** sha256 over the concatenated raw 32-byte chunk digests (elastic-agent-client.md §8.3). */
export async function transitHash(chunks: Uint8Array[]): Promise<string> {
  const all = new Uint8Array(32 * chunks.length);
  for (const [i, chunk] of chunks.entries()) all.set(new Uint8Array(await crypto.subtle.digest("SHA-256", chunk)), 32 * i);
  return sha256Hex(all);
}

export async function publishFile(fileId: string, body: Uint8Array, targets: string[], extra: Record<string, unknown> = {}) {
  const res = await adminRequest("PUT", `/api/fleet/files/${fileId}`, { name: `${fileId}.bin`, target_agents: targets, body: toBase64(body), ...extra });
  if (res.status !== 200) throw new Error(`publish file: ${res.status} ${await res.text()}`);
  return res.json();
}

export function getFile(key: string, fileId: string, headers: Record<string, string> = {}, query = "") {
  return SELF.fetch(`${BASE}/api/fleet/file/${fileId}${query}`, { headers: { ...agentHeaders(), Authorization: `ApiKey ${key}`, ...headers } });
}

export const errorHeaders = { "content-type": "application/json; charset=utf-8", "x-content-type-options": "nosniff" };
