import { createHash, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { artifactDoc, artifactFixture, manifestInput, type ArtifactFixture } from "../support/artifact-fixture";
import { decodeCbor } from "../../src/es/cbor";
import { adminCall, startDevServer, type DevServer } from "../support/dev-server";
import { fleetSchemaCheck } from "../support/fleet-schema";
import { bytesOf } from "../support/test-bytes";
import { es, eventually, searchServer } from "../support/search-server";

const search = searchServer();
const check = fleetSchemaCheck();
const META = ".fleet-fileds-fromhost-meta-agent";
const DATA = ".fleet-fileds-fromhost-data-agent";
const TO_HOST_META = ".fleet-fileds-tohost-meta-endpoint";
const TO_HOST_DATA = ".fleet-fileds-tohost-data-endpoint";
const LIBRARY_META = ".endpoint-fleetfiles-downloads-meta";
const LIBRARY_DATA = ".endpoint-fleetfiles-downloads-data";
const CHUNK = 4 * 1024 * 1024;

let server: DevServer;

const agentHeaders = { "User-Agent": "Elastic Agent v9.6.0", "Elastic-Api-Version": "2023-06-01" };
const sha256 = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex");

const admin = <T = { item: Record<string, string> }>(method: string, path: string, body?: unknown) => adminCall<T>(server, method, path, body);

function agentFetch(method: string, path: string, key: string, body?: string | Uint8Array, headers: Record<string, string> = {}) {
  return fetch(`${server.url}${path}`, {
    method,
    headers: { ...agentHeaders, Authorization: `ApiKey ${key}`, ...(typeof body === "string" ? { "Content-Type": "application/json" } : {}), ...headers },
    ...(body !== undefined ? { body: typeof body === "string" ? body : Buffer.from(body) } : {}),
  });
}

async function policyListing(policyId: string, artifacts: ArtifactFixture[]): Promise<string> {
  await admin("PUT", `/api/fleet/agent_policies/${policyId}`, {
    name: policyId,
    policy: { outputs: { default: { type: "elasticsearch", hosts: [search!.url] } }, inputs: [manifestInput(artifacts)] },
  });
  return policyId;
}

async function enroll(policyId: string): Promise<{ id: string; key: string }> {
  const token = (await admin("POST", "/api/fleet/enrollment_api_keys", { policy_id: policyId, name: randomUUID() })).item.api_key!;
  const res = await agentFetch("POST", "/api/fleet/agents/enroll?", token, JSON.stringify({ type: "PERMANENT", id: "", replace_token: "", metadata: { local: {}, user_provided: {}, tags: [] } }));
  expect(res.status).toBe(200);
  const item = ((await res.json()) as { item: { id: string; access_api_key: string } }).item;
  return { id: item.id, key: item.access_api_key };
}

const metaDoc = async (id: string, status?: string) => {
  const res = await es<{ found: boolean; _source: Record<string, unknown> }>(search!, "GET", `/${META}/_doc/${encodeURIComponent(id)}`);
  if (res.status !== 200 || !res.body.found) return undefined;
  return status === undefined || (res.body._source.file as { Status?: string }).Status === status ? res.body._source : undefined;
};

/** A chunk read back exactly as Kibana's file client reads it: `GET …/_doc/<id>` in CBOR, `data` and `last` only. */
async function kibanaChunk(id: string): Promise<{ data: Uint8Array; last: boolean } | undefined> {
  const res = await fetch(`${search!.url}/${DATA}/_doc/${encodeURIComponent(id)}?_source_includes=data,last`, {
    headers: { Authorization: search!.authorization, Accept: "application/cbor" },
  });
  if (res.status !== 200) return undefined;
  const doc = decodeCbor(new Uint8Array(await res.arrayBuffer())) as { found: boolean; _source: { data: Uint8Array; last: boolean } };
  return doc.found ? doc._source : undefined;
}

function beginPayload(agentId: string, actionId: string, size: number) {
  return {
    action_id: actionId,
    agent_id: agentId,
    src: "agent",
    file: { size, name: "elastic-agent-diagnostics-2026-08-22T15-03-01Z-00.zip", ext: "zip", mime_type: "application/zip", hash: { sha256: "", md5: "" } },
    host: { hostname: "web-01" },
  };
}

async function begin(agent: { id: string; key: string }, actionId: string, size: number): Promise<string> {
  const res = await agentFetch("POST", "/api/fleet/uploads", agent.key, JSON.stringify(beginPayload(agent.id, actionId, size)));
  expect(res.status).toBe(200);
  return ((await res.json()) as { upload_id: string }).upload_id;
}

const keyword = { type: "keyword" };

/**
 * The `.fleet-fileds-tohost-*` templates as Elasticsearch's Fleet plugin installs them (data streams,
 * `file.Status` and `file.Meta.target_agents` keywords): the test node has no Fleet plugin.
 */
async function installToHostTemplates(): Promise<void> {
  const template = (pattern: string, properties: Record<string, unknown>) =>
    es(search!, "PUT", `/_index_template/test-${pattern.slice(1, -2)}`, {
      index_patterns: [pattern],
      data_stream: {},
      priority: 200,
      template: { settings: { "index.hidden": true }, mappings: { dynamic: false, properties } },
    });
  await template(".fleet-fileds-tohost-meta-*", {
    "@timestamp": { type: "date" },
    file: { properties: { Status: keyword, ChunkSize: { type: "integer" }, name: keyword, Meta: { properties: { target_agents: keyword } } } },
  });
  await template(".fleet-fileds-tohost-data-*", {
    "@timestamp": { type: "date" },
    bid: keyword,
    data: { type: "binary", store: true },
    sha2: { type: "keyword", index: false },
    last: { type: "boolean", index: false },
  });
}

/** What Kibana writes for a file to deliver: the metadata document, then chunks `<id>.<n>` with `last` on the final one. */
async function publishFile(indices: { meta: string; data: string }, fileId: string, bytes: Uint8Array, chunkSize: number, file: Record<string, unknown>, chunks = Math.ceil(bytes.length / chunkSize)) {
  const now = new Date().toISOString();
  const meta = await es(search!, "PUT", `/${indices.meta}/_create/${fileId}?refresh=true`, {
    "@timestamp": now,
    file: { name: "payload.bin", size: bytes.length, ChunkSize: chunkSize, mime_type: "application/x-test", hash: { sha256: sha256(bytes) }, ...file },
  });
  expect(meta.status).toBe(201);
  for (let n = 0; n < chunks; n++) {
    const part = bytes.subarray(n * chunkSize, (n + 1) * chunkSize);
    const chunk = await es(search!, "PUT", `/${indices.data}/_create/${fileId}.${n}?refresh=true`, {
      "@timestamp": now,
      bid: fileId,
      ...(n === chunks - 1 ? { last: true } : {}),
      sha2: sha256(part),
      data: Buffer.from(part).toString("base64"),
    });
    expect(chunk.status).toBe(201);
  }
}

describe.skipIf(!search)("Files and artifacts in Elasticsearch (real Elasticsearch)", () => {
  beforeAll(async () => {
    await es(search!, "DELETE", `/.fleet-artifacts,${META},${DATA},${LIBRARY_META},${LIBRARY_DATA}?ignore_unavailable=true`);
    await installToHostTemplates();
    server = await startDevServer({ ...search!.vars, ES_MIRROR_FLUSH: "100ms" });
  });
  afterAll(async () => server?.stop());

  it("serves an artifact Kibana wrote into .fleet-artifacts to an agent whose policy lists it, and refuses others", async () => {
    const a = await artifactFixture("endpoint-exceptionlist-linux-v1", { entries: [{ type: "simple", value: randomUUID() }] });
    const listed = await enroll(await policyListing(`art-es-${randomUUID()}`, [a]));
    const path = `/api/fleet/artifacts/${a.identifier}/${a.decoded_sha256}`;

    // No `.fleet-artifacts` index yet: not found, not an error.
    const missing = await agentFetch("GET", path, listed.key);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ statusCode: 404, error: "NotFound" });

    // Kibana's write: the index as Elasticsearch's Fleet plugin maps it, then the document.
    const doc = artifactDoc(a);
    if (check) expect(check("artifact", doc)).toEqual([]);
    const keyword = { type: "keyword" };
    await es(search!, "PUT", "/.fleet-artifacts", {
      settings: { number_of_shards: 1, hidden: true },
      mappings: {
        dynamic: false,
        properties: {
          identifier: keyword, compression_algorithm: keyword, encryption_algorithm: keyword, encoded_sha256: keyword, decoded_sha256: keyword,
          encoded_size: { type: "long" }, decoded_size: { type: "long" }, created: { type: "date" }, package_name: keyword, body: { type: "binary" },
        },
      },
    });
    const written = await es(search!, "POST", "/.fleet-artifacts/_doc?refresh=true", doc);
    expect(written.status).toBe(201);

    const res = await agentFetch("GET", path, listed.key);
    expect(res.status).toBe(200);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(a.encoded);
    expect(res.headers.get("etag")).toBe(`"${a.encoded_sha256}"`);

    // Another version of the same identifier is in the index too; a policy listing only that one
    // does not get this one.
    const other = await artifactFixture(a.identifier, { entries: ["another version"] });
    await es(search!, "POST", "/.fleet-artifacts/_doc?refresh=true", artifactDoc(other));
    const outsider = await enroll(await policyListing(`art-es-${randomUUID()}`, [other]));
    const refused = await agentFetch("GET", path, outsider.key);
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({ statusCode: 403, error: "Forbidden", message: "agent not authorized for artifact" });
    const own = await agentFetch("GET", `/api/fleet/artifacts/${other.identifier}/${other.decoded_sha256}`, outsider.key);
    expect(own.status).toBe(200);
    expect(new Uint8Array(await own.arrayBuffer())).toEqual(other.encoded);
  });

  it("refuses an Elasticsearch artifact whose body does not match encoded_sha256", async () => {
    const a = await artifactFixture("endpoint-trustlist-linux-v1", { entries: [randomUUID()] });
    const agent = await enroll(await policyListing(`art-es-${randomUUID()}`, [a]));
    await es(search!, "POST", "/.fleet-artifacts/_doc?refresh=true", { ...artifactDoc(a), body: Buffer.from("tampered").toString("base64") });
    const res = await agentFetch("GET", `/api/fleet/artifacts/${a.identifier}/${a.decoded_sha256}`, agent.key);
    expect(res.status).toBe(500);
  });

  it("mirrors a diagnostics upload: AWAITING_UPLOAD at begin, READY with transithash at completion, chunks as Kibana reads them", async () => {
    const agent = await enroll(await policyListing(`upl-es-${randomUUID()}`, []));
    const actionId = randomUUID();
    const file = bytesOf(CHUNK + 1000, 7);
    const chunks = [file.subarray(0, CHUNK), file.subarray(CHUNK)];
    const docId = `${actionId}.${agent.id}`;

    const uploadId = await begin(agent, actionId, file.byteLength);
    const awaiting = await eventually(() => metaDoc(docId, "AWAITING_UPLOAD"), "the AWAITING_UPLOAD metadata document");
    expect(awaiting.upload_id).toBe(uploadId);

    for (const [n, chunk] of chunks.entries()) {
      const res = await agentFetch("PUT", `/api/fleet/uploads/${uploadId}/${n}`, agent.key, chunk, { "X-Chunk-SHA2": sha256(chunk) });
      expect(res.status).toBe(200);
    }
    const transithash = sha256(Buffer.concat(chunks.map((c) => createHash("sha256").update(c).digest())));
    const done = await agentFetch("POST", `/api/fleet/uploads/${uploadId}`, agent.key, JSON.stringify({ transithash: { sha256: transithash } }));
    expect(done.status).toBe(200);

    const ready = await eventually(() => metaDoc(docId, "READY"), "the READY metadata document");
    // schema.json has no definition for upload documents: the exact fields fleet-server writes.
    expect(ready).toEqual({
      ...beginPayload(agent.id, actionId, file.byteLength),
      file: { ...beginPayload(agent.id, actionId, file.byteLength).file, ChunkSize: CHUNK, Status: "READY" },
      upload_id: uploadId,
      upload_start: awaiting.upload_start,
      "@timestamp": awaiting["@timestamp"],
      namespaces: [],
      transithash: { sha256: transithash },
    });
    expect(typeof ready.upload_start).toBe("number");

    // What Kibana's diagnostics list does: the file of this agent and action.
    await es(search!, "POST", `/${META}/_refresh`);
    const listed = await es<{ hits: { hits: Array<{ _id: string; _source: { file: { Status: string; name: string } } }> } }>(search!, "POST", `/${META}/_search`, {
      query: { bool: { filter: [{ term: { agent_id: agent.id } }, { term: { action_id: actionId } }] } },
    });
    expect(listed.body.hits.hits.map((h) => [h._id, h._source.file.Status])).toEqual([[docId, "READY"]]);

    // What Kibana's download does: chunk `<file id>.<n>` in CBOR, until `last`.
    const first = await kibanaChunk(`${docId}.0`);
    const second = await kibanaChunk(`${docId}.1`);
    expect(first?.last).toBe(false);
    expect(second?.last).toBe(true);
    expect(Buffer.concat([first!.data, second!.data]).equals(Buffer.from(file))).toBe(true);
    const raw = await es<{ _source: Record<string, unknown> }>(search!, "GET", `/${DATA}/_doc/${encodeURIComponent(`${docId}.1`)}?_source_excludes=data`);
    expect(raw.body._source).toEqual({ "@timestamp": expect.any(String), last: true, bid: docId, sha2: sha256(chunks[1]!) });
  });

  it("delivers a file Kibana published in .fleet-fileds-tohost-* to its target agents, whole and by range", async () => {
    const policyId = await policyListing(`put-file-${randomUUID()}`, []);
    const [agent, other] = [await enroll(policyId), await enroll(policyId)];
    const bytes = bytesOf(2500, 7);
    const fileId = `file-${randomUUID()}`;
    await publishFile({ meta: TO_HOST_META, data: TO_HOST_DATA }, fileId, bytes, 1000, { Status: "READY", Meta: { target_agents: [agent.id] } });

    const whole = await agentFetch("GET", `/api/fleet/file/${fileId}`, agent.key);
    expect(whole.status).toBe(200);
    expect(Object.fromEntries(["content-type", "content-length", "x-file-sha2", "accept-ranges"].map((h) => [h, whole.headers.get(h)]))).toEqual({
      "content-type": "application/x-test",
      "content-length": "2500",
      "x-file-sha2": sha256(bytes),
      "accept-ranges": "bytes",
    });
    expect(Buffer.from(await whole.arrayBuffer()).equals(Buffer.from(bytes))).toBe(true);

    // A range across the first chunk boundary, and a suffix range inside the last chunk.
    const across = await agentFetch("GET", `/api/fleet/file/${fileId}`, agent.key, undefined, { Range: "bytes=900-1100" });
    expect(across.status).toBe(206);
    expect(across.headers.get("content-range")).toBe("bytes 900-1100/2500");
    expect(Buffer.from(await across.arrayBuffer()).equals(Buffer.from(bytes.subarray(900, 1101)))).toBe(true);
    const tail = await agentFetch("GET", `/api/fleet/file/${fileId}`, agent.key, undefined, { Range: "bytes=-100" });
    expect(Buffer.from(await tail.arrayBuffer()).equals(Buffer.from(bytes.subarray(2400)))).toBe(true);

    const notTarget = await agentFetch("GET", `/api/fleet/file/${fileId}`, other.key);
    expect(await notTarget.json()).toEqual({ statusCode: 404, error: "ErrNoFile", message: "file not found" });

    // Not READY yet, or READY with a chunk missing: nothing is served.
    const pending = `file-${randomUUID()}`;
    await publishFile({ meta: TO_HOST_META, data: TO_HOST_DATA }, pending, bytes, 1000, { Status: "AWAITING_UPLOAD", Meta: { target_agents: [agent.id] } });
    expect((await agentFetch("GET", `/api/fleet/file/${pending}`, agent.key)).status).toBe(404);
    const partial = `file-${randomUUID()}`;
    await publishFile({ meta: TO_HOST_META, data: TO_HOST_DATA }, partial, bytes, 1000, { Status: "READY", Meta: { target_agents: [agent.id] } }, 2);
    expect((await agentFetch("GET", `/api/fleet/file/${partial}`, agent.key)).status).toBe(404);

    // Metadata promising more bytes than the chunks hold: the download fails rather than ends short.
    const short = `file-${randomUUID()}`;
    await publishFile({ meta: TO_HOST_META, data: TO_HOST_DATA }, short, bytes.subarray(0, 2400), 1000, { Status: "READY", size: 2500, Meta: { target_agents: [agent.id] } });
    const truncated = await agentFetch("GET", `/api/fleet/file/${short}`, agent.key);
    expect(truncated.headers.get("content-length")).toBe("2500");
    await expect(truncated.arrayBuffer()).rejects.toThrow();
  });

  it("serves an integration library file (?source=) to the integration the allow-list names", async () => {
    const agent = await enroll(await policyListing(`lib-file-${randomUUID()}`, []));
    for (const index of [LIBRARY_META, LIBRARY_DATA]) {
      await es(search!, "PUT", `/${index}`, { mappings: { properties: { bid: keyword, data: { type: "binary", store: true }, "@timestamp": { type: "date" } } } });
    }
    const bytes = bytesOf(1500, 3);
    const fileId = `lib-${randomUUID()}`;
    await publishFile({ meta: LIBRARY_META, data: LIBRARY_DATA }, fileId, bytes, 1024, { Status: "READY" });

    const path = `/api/fleet/file/${fileId}?source=downloads`;
    const served = await agentFetch("GET", path, agent.key, undefined, { "X-elastic-product-origin": "endpoint-security" });
    expect(served.status).toBe(200);
    expect(Buffer.from(await served.arrayBuffer()).equals(Buffer.from(bytes))).toBe(true);
    const stranger = await agentFetch("GET", path, agent.key, undefined, { "X-elastic-product-origin": "constructor" });
    expect(await stranger.json()).toEqual({ statusCode: 403, error: "ErrClientFileForbidden", message: "client forbidden" });
    expect((await agentFetch("GET", `/api/fleet/file/lib-${randomUUID()}?source=downloads`, agent.key, undefined, { "X-elastic-product-origin": "endpoint-security" })).status).toBe(404);
    for (const source of ["no%20such%20library", "downloads-meta%2F_doc%2Fx%3F"]) {
      const badName = await agentFetch("GET", `/api/fleet/file/${fileId}?source=${source}`, agent.key, undefined, { "X-elastic-product-origin": "endpoint-security" });
      expect(await badName.json()).toEqual({ statusCode: 404, error: "ErrNoFile", message: "file not found" });
    }
  });

  it("mirrors a failed completion as UPLOAD_ERROR and copies no chunk", async () => {
    const agent = await enroll(await policyListing(`upl-es-${randomUUID()}`, []));
    const actionId = randomUUID();
    const chunk = bytesOf(5000, 11);
    const docId = `${actionId}.${agent.id}`;
    const uploadId = await begin(agent, actionId, chunk.byteLength);
    expect((await agentFetch("PUT", `/api/fleet/uploads/${uploadId}/0`, agent.key, chunk, { "X-Chunk-SHA2": sha256(chunk) })).status).toBe(200);
    const failed = await agentFetch("POST", `/api/fleet/uploads/${uploadId}`, agent.key, JSON.stringify({ transithash: { sha256: "0".repeat(64) } }));
    expect(failed.status).toBe(400);
    expect(await failed.json()).toMatchObject({ error: "ErrFailValidation" });

    const errored = await eventually(() => metaDoc(docId, "UPLOAD_ERROR"), "the UPLOAD_ERROR metadata document");
    expect(errored).toMatchObject({ upload_id: uploadId, agent_id: agent.id, action_id: actionId, src: "agent", file: { Status: "UPLOAD_ERROR", ChunkSize: CHUNK, size: chunk.byteLength } });
    expect(errored).not.toHaveProperty("transithash");
    expect(await kibanaChunk(`${docId}.0`)).toBeUndefined();
  });
});
