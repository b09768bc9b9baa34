import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { artifactKey } from "../../src/artifacts/source";
import { adminRequest, agentRequest, createEnrollmentKey, enrolledAgent, json } from "../helpers";
import { artifactDoc, artifactFixture, toBase64 } from "../support/artifact-fixture";
import { errorHeaders, getArtifact, policyListing, publishArtifact } from "./file-helpers";

const bytesOf = async (res: Response) => new Uint8Array(await res.arrayBuffer());

describe("GET /api/fleet/artifacts/{id}/{sha2}", () => {
  it("serves the stored encoded bytes to an agent whose policy lists the artifact, with an ETag", async () => {
    const a = await artifactFixture("endpoint-exceptionlist-linux-v1", { entries: [{ type: "simple", value: "x" }] });
    await publishArtifact(a);
    await policyListing("art-ok", [a]);
    const agent = await enrolledAgent("art-ok");
    const res = await getArtifact(agent.key, a.identifier, a.decoded_sha256);
    expect(res.status).toBe(200);
    expect(await bytesOf(res)).toEqual(a.encoded);
    expect(res.headers.get("content-type")).toBe("application/octet-stream");
    expect(res.headers.get("etag")).toBe(`"${a.encoded_sha256}"`);
    expect(res.headers.get("cache-control")).toBe("private, no-cache");
    expect(res.headers.get("elastic-api-version")).toBe("2023-06-01");

    const again = await getArtifact(agent.key, a.identifier, a.decoded_sha256, { "If-None-Match": `"${a.encoded_sha256}"` });
    expect(again.status).toBe(304);
    expect(again.headers.get("etag")).toBe(`"${a.encoded_sha256}"`);
    expect(await again.text()).toBe("");
    const weak = await getArtifact(agent.key, a.identifier, a.decoded_sha256, { "If-None-Match": `"other", W/"${a.encoded_sha256}"` });
    expect(weak.status).toBe(304);
    const stale = await getArtifact(agent.key, a.identifier, a.decoded_sha256, { "If-None-Match": `"0000"` });
    expect(stale.status).toBe(200);
    expect(await bytesOf(stale)).toEqual(a.encoded);
  });

  it("serves many agents from the edge cache: one read of the source", async () => {
    const a = await artifactFixture("endpoint-trustlist-linux-v1", { entries: ["cached"] });
    await publishArtifact(a);
    await policyListing("art-cache", [a]);
    const first = await enrolledAgent("art-cache");
    const second = await enrolledAgent("art-cache", { id: "art-cache-second" });
    expect((await getArtifact(first.key, a.identifier, a.decoded_sha256)).status).toBe(200);
    // The source loses the bytes; the second agent is still served, from the cache.
    await env.FILES.delete(artifactKey(a.identifier, a.decoded_sha256));
    const res = await getArtifact(second.key, a.identifier, a.decoded_sha256);
    expect(res.status).toBe(200);
    expect(await bytesOf(res)).toEqual(a.encoded);
  });

  it("does not let the cache bypass authorization: 403 for an agent whose policy does not list it", async () => {
    const a = await artifactFixture("endpoint-blocklist-linux-v1", { entries: ["secret"] });
    const other = await artifactFixture("endpoint-blocklist-linux-v1", { entries: ["another version"] });
    await publishArtifact(a);
    await policyListing("art-listed", [a]);
    await policyListing("art-unlisted", [other]);
    const allowed = await enrolledAgent("art-listed");
    expect((await getArtifact(allowed.key, a.identifier, a.decoded_sha256)).status).toBe(200); // now cached
    const outsider = await enrolledAgent("art-unlisted");
    const res = await getArtifact(outsider.key, a.identifier, a.decoded_sha256);
    expect(res.status).toBe(403);
    expect(Object.fromEntries(res.headers)).toMatchObject(errorHeaders);
    expect(await res.json()).toEqual({ statusCode: 403, error: "Forbidden", message: "agent not authorized for artifact" });
  });

  it("is 403 for an identifier the policy does not list at all, and for a policy without inputs", async () => {
    const a = await artifactFixture("endpoint-eventfilterlist-linux-v1", { entries: [] });
    await publishArtifact(a);
    await policyListing("art-other-id", [await artifactFixture("endpoint-hostisolationexceptionlist-linux-v1", [])]);
    const agent = await enrolledAgent("art-other-id");
    const res = await getArtifact(agent.key, a.identifier, a.decoded_sha256);
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ statusCode: 403, error: "Forbidden", message: "agent not authorized for artifact" });
    const plain = await enrolledAgent("art-plain-policy");
    expect((await getArtifact(plain.key, a.identifier, a.decoded_sha256)).status).toBe(403);
  });

  it("is 404 NotFound when the policy lists an artifact nobody published", async () => {
    const a = await artifactFixture("endpoint-exceptionlist-windows-v1", { entries: ["never published"] });
    await policyListing("art-missing", [a]);
    const agent = await enrolledAgent("art-missing");
    const res = await getArtifact(agent.key, a.identifier, a.decoded_sha256);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ statusCode: 404, error: "NotFound", message: "not found" });
  });

  it("is 500 when the stored bytes no longer match encoded_sha256 (and nothing is cached)", async () => {
    const a = await artifactFixture("endpoint-exceptionlist-macos-v1", { entries: ["tampered"] });
    await publishArtifact(a);
    const stored = await env.FILES.get(artifactKey(a.identifier, a.decoded_sha256));
    await env.FILES.put(artifactKey(a.identifier, a.decoded_sha256), new Uint8Array([1, 2, 3]), { customMetadata: stored!.customMetadata! });
    await policyListing("art-tampered", [a]);
    const agent = await enrolledAgent("art-tampered");
    const res = await getArtifact(agent.key, a.identifier, a.decoded_sha256);
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ statusCode: 500, error: "InternalServerError", message: "internal error" });
  });

  it("is 400 for a sha2 that is not 64 hex characters (fleet-server: 500), after authentication", async () => {
    const agent = await enrolledAgent("art-badsha");
    const res = await getArtifact(agent.key, "endpoint-exceptionlist-linux-v1", "abc");
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ statusCode: 400, error: "BadRequest", message: "malformed sha256" });
    const unauth = await agentRequest("GET", "/api/fleet/artifacts/x/abc");
    expect(unauth.status).toBe(401);
  });

  it("finds the agent by its key: auth errors as fleet-server", async () => {
    const a = await artifactFixture("endpoint-auth-v1", { entries: [] });
    const path = `/api/fleet/artifacts/${a.identifier}/${a.decoded_sha256}`;
    const none = await agentRequest("GET", path);
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({ statusCode: 401, error: "ErrNoAuthHeader", message: "no authorization header" });

    // A genuine key that is no agent's: an enrollment key.
    await enrolledAgent("art-auth");
    const enrollmentKey = await createEnrollmentKey("art-auth");
    const notAgent = await agentRequest("GET", path, { key: enrollmentKey.api_key });
    expect(notAgent.status).toBe(404);
    expect(await notAgent.json()).toEqual({ statusCode: 404, error: "AgentNotFound", message: "agent could not be found" });

    // An agent's key id with a wrong secret.
    const agent = await enrolledAgent("art-auth", { id: "art-auth-agent" });
    const [keyId] = atob(agent.key).split(":");
    const forged = await agentRequest("GET", path, { key: btoa(`${keyId}:not-the-secret`) });
    expect(forged.status).toBe(401);
    expect(await forged.json()).toEqual({ statusCode: 401, error: "ErrUnauthorized", message: "unauthorized" });
    // A key that names no agent and is not an enrollment key.
    const unknown = await agentRequest("GET", path, { key: btoa("nobody:secret") });
    expect(unknown.status).toBe(401);
    expect(await unknown.json()).toEqual({ statusCode: 401, error: "ErrUnauthorized", message: "unauthorized" });
  });
});

describe("admin: publishing artifacts", () => {
  it("verifies hashes and sizes on publish, lists and deletes", async () => {
    const a = await artifactFixture("endpoint-admin-v1", { entries: ["admin"] });
    const put = await adminRequest("PUT", `/api/fleet/artifacts/${a.identifier}`, artifactDoc(a));
    expect(put.status).toBe(200);
    const { item } = await json<{ item: Record<string, unknown> }>(put);
    expect(item).toEqual({
      identifier: a.identifier,
      decoded_sha256: a.decoded_sha256,
      decoded_size: a.decoded.byteLength,
      encoded_sha256: a.encoded_sha256,
      encoded_size: a.encoded.byteLength,
      compression_algorithm: "zlib",
      encryption_algorithm: "none",
      created: "2026-08-22T10:00:00.000Z",
      package_name: "endpoint",
    });
    const list = await json<{ items: Array<Record<string, unknown>> }>(await adminRequest("GET", "/api/fleet/artifacts"));
    expect(list.items).toContainEqual(item);

    const cases: Array<[Record<string, unknown>, string]> = [
      [{ encoded_sha256: "0".repeat(64) }, `encoded_sha256: the body's sha256 is ${a.encoded_sha256}`],
      [{ decoded_sha256: "0".repeat(64) }, `decoded_sha256: the decoded body's sha256 is ${a.decoded_sha256}`],
      [{ encoded_size: 1 }, `encoded_size: the body has ${a.encoded.byteLength} bytes`],
      [{ decoded_size: 1 }, `decoded_size: the decoded body has ${a.decoded.byteLength} bytes`],
      [{ identifier: "other" }, "identifier: must match the identifier in the path"],
      [{ body: "***" }, "body: standard base64"],
      [{ compression_algorithm: "none" }, `decoded_size: the decoded body has ${a.encoded.byteLength} bytes`],
      [{ body: toBase64(new Uint8Array([1, 2, 3])), encoded_size: 3, encoded_sha256: "039058c6f2c0cb492c533b0a4d14ef77cc0f78abccced5287d84a1a2011cfb81" }, "body: not valid zlib data"],
    ];
    for (const [override, message] of cases) {
      const res = await adminRequest("PUT", `/api/fleet/artifacts/${a.identifier}`, artifactDoc(a, override));
      expect(res.status, message).toBe(400);
      expect(await res.json()).toEqual({ statusCode: 400, error: "BadRequest", message });
    }
    const enc = await adminRequest("PUT", `/api/fleet/artifacts/${a.identifier}`, artifactDoc(a, { encryption_algorithm: "aes" }));
    expect(enc.status).toBe(400);

    const noToken = await adminRequest("PUT", `/api/fleet/artifacts/${a.identifier}`, artifactDoc(a), "wrong");
    expect(noToken.status).toBe(401);
    const del = await adminRequest("DELETE", `/api/fleet/artifacts/${a.identifier}?decoded_sha256=${a.decoded_sha256}`);
    expect(del.status).toBe(200);
    expect(await del.json()).toEqual({ id: a.identifier, decoded_sha256: a.decoded_sha256, action: "deleted" });
    expect(await env.FILES.head(artifactKey(a.identifier, a.decoded_sha256))).toBeNull();
    expect((await adminRequest("DELETE", `/api/fleet/artifacts/${a.identifier}?decoded_sha256=${a.decoded_sha256}`)).status).toBe(404);
    expect((await adminRequest("DELETE", `/api/fleet/artifacts/${a.identifier}`)).status).toBe(400);
  });
});
