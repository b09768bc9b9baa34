import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { agentObject } from "../src/durable-stubs";
import type { AgentDoc } from "../src/protocol/agent-doc";
import { adminRequest, agentRequest, checkinRequest, createEnrollmentKey, enrollBody, json, putPolicy } from "./helpers";

const enroll = (key: string, body: unknown, headers: Record<string, string> = {}) =>
  agentRequest("POST", "/api/fleet/agents/enroll", { key, body, headers });

const storedAgent = (id: string): Promise<AgentDoc | null> => agentObject(env, id).record();

describe("POST /api/fleet/agents/enroll", () => {
  it("creates a PERMANENT agent: sorted tags, rewritten agent id, a fresh access key (checklist 3)", async () => {
    await putPolicy("enroll-p");
    const key = await createEnrollmentKey("enroll-p");
    const res = await enroll(key.api_key, enrollBody({ metadata: { local: { elastic: { agent: { id: "x" } } }, user_provided: {}, tags: ["b", "a", "b"] } }));
    expect(res.status).toBe(200);
    const body = await json<{ action: string; item: Record<string, unknown> }>(res);
    const item = body.item;
    expect(body.action).toBe("created");
    expect(Object.keys(item)).toEqual([
      "access_api_key",
      "access_api_key_id",
      "active",
      "enrolled_at",
      "id",
      "local_metadata",
      "policy_id",
      "status",
      "tags",
      "type",
      "user_provided_metadata",
    ]);
    expect(item.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(item).toMatchObject({
      active: true,
      policy_id: "enroll-p",
      type: "PERMANENT",
      status: "online",
      tags: ["a", "b"],
      user_provided_metadata: null,
      local_metadata: { elastic: { agent: { id: item.id } } },
    });
    expect(new Date(item.enrolled_at as string).toISOString()).toBe(item.enrolled_at);
    const [keyId, secret] = atob(item.access_api_key as string).split(":");
    expect(keyId).toBe(item.access_api_key_id);
    expect(secret!.length).toBeGreaterThanOrEqual(40);

    const stored = await storedAgent(item.id as string);
    expect(stored).toMatchObject({ active: true, action_seq_no: [-1], agent: { id: item.id, version: "9.6.0" }, tags: ["a", "b"] });
    // Only the hash of the secret is kept, and never in the document.
    expect(JSON.stringify(stored)).not.toContain(secret);
  });

  it("answers fleet-server's auth and User-Agent errors (checklist 4)", async () => {
    await putPolicy("enroll-errors");
    const key = await createEnrollmentKey("enroll-errors");
    const noAuth = await agentRequest("POST", "/api/fleet/agents/enroll", { body: enrollBody() });
    expect(noAuth.status).toBe(401);
    expect(await noAuth.json()).toEqual({ statusCode: 401, error: "ErrNoAuthHeader", message: "no authorization header" });

    const bearer = await agentRequest("POST", "/api/fleet/agents/enroll", { body: enrollBody(), headers: { Authorization: "Bearer x" } });
    expect(bearer.status).toBe(400);
    expect(await bearer.json()).toEqual({ statusCode: 400, error: "ErrMalformedHeader", message: "malformed authorization header" });

    const badUa = await enroll(key.api_key, enrollBody(), { "User-Agent": "elastic-agent 9.0.0" });
    expect(badUa.status).toBe(400);
    expect(await badUa.json()).toEqual({ statusCode: 400, error: "InvalidUserAgent", message: "user-agent is invalid" });

    const newer = await enroll(key.api_key, enrollBody(), { "User-Agent": "Elastic Agent v9.7.0" });
    expect(newer.status).toBe(400);
    expect(await newer.json()).toEqual({ statusCode: 400, error: "UnsupportedVersion", message: "version is not supported" });

    const empty = await enroll(key.api_key, "");
    expect(empty.status).toBe(400);
    expect((await json(empty)).error).toBe("BadRequest");

    const badType = await enroll(key.api_key, enrollBody({ type: "SOMETHING" }));
    expect(badType.status).toBe(400);
    expect(await badType.json()).toEqual({ statusCode: 400, error: "BadRequest", message: "Bad request: type: unknown enroll request type" });
  });

  it("rejects keys that are not active enrollment keys with 401", async () => {
    await putPolicy("enroll-keys");
    const key = await createEnrollmentKey("enroll-keys");
    const forged = await enroll(btoa(`${key.api_key_id}:not-the-secret`), enrollBody());
    expect(forged.status).toBe(401);
    expect(await forged.json()).toEqual({ statusCode: 401, error: "ErrUnauthorized", message: "unauthorized" });

    const ok = await json<{ item: { access_api_key: string } }>(await enroll(key.api_key, enrollBody()));
    // An agent's access key is not an enrollment key (fleet-server answers 500 here; it is the client's mistake).
    expect((await enroll(ok.item.access_api_key, enrollBody())).status).toBe(401);

    const revoke = await adminRequest("DELETE", `/api/fleet/enrollment_api_keys/${key.id}`);
    expect(revoke.status).toBe(200);
    expect((await json<{ item: { active: boolean } }>(revoke)).item.active).toBe(false);
    const afterRevoke = await enroll(key.api_key, enrollBody());
    expect(afterRevoke.status).toBe(401);
  });

  it("refuses malformed tokens", async () => {
    const notBase64 = await agentRequest("POST", "/api/fleet/agents/enroll", { body: enrollBody(), headers: { Authorization: "ApiKey %%%" } });
    expect(await notBase64.json()).toEqual({ statusCode: 401, error: "ErrInvalidToken", message: "token not valid utf8" });
    const noColon = await agentRequest("POST", "/api/fleet/agents/enroll", { body: enrollBody(), key: btoa("just-an-id") });
    expect(await noColon.json()).toEqual({ statusCode: 400, error: "ErrMalformedToken", message: "malformed token" });
  });

  it("replaces an agent only with its replace token (checklist 5)", async () => {
    await putPolicy("enroll-replace");
    const key = await createEnrollmentKey("enroll-replace");
    const first = await enroll(key.api_key, enrollBody({ id: "host-A", replace_token: "t1" }));
    expect(first.status).toBe(200);
    const firstItem = (await json<{ item: { id: string; access_api_key: string } }>(first)).item;
    expect(firstItem.id).toBe("host-A");
    const stored = await storedAgent("host-A");
    expect(stored?.replace_token).toMatch(/^\$pbkdf2-sha512\$100000\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);

    const noToken = await enroll(key.api_key, enrollBody({ id: "host-A" }));
    expect(noToken.status).toBe(403);
    expect(await noToken.json()).toEqual({ statusCode: 403, error: "AgentNotReplaceable", message: "existing agent cannot be replaced" });
    expect((await enroll(key.api_key, enrollBody({ id: "host-A", replace_token: "wrong" }))).status).toBe(403);

    const replaced = await enroll(key.api_key, enrollBody({ id: "host-A", replace_token: "t1" }));
    expect(replaced.status).toBe(200);
    const replacedItem = (await json<{ item: { access_api_key: string } }>(replaced)).item;
    expect(replacedItem.access_api_key).not.toBe(firstItem.access_api_key);

    const oldKey = await checkinRequest({ id: "host-A", key: firstItem.access_api_key, policyId: "enroll-replace" });
    expect(oldKey.status).toBe(401);
    const newKey = await checkinRequest({ id: "host-A", key: replacedItem.access_api_key, policyId: "enroll-replace" });
    expect(newKey.status).toBe(200);
  });

  it("does not replace an agent of another policy even with the right token", async () => {
    await putPolicy("enroll-replace-a");
    await putPolicy("enroll-replace-b");
    const keyA = await createEnrollmentKey("enroll-replace-a");
    const keyB = await createEnrollmentKey("enroll-replace-b");
    expect((await enroll(keyA.api_key, enrollBody({ id: "host-B", replace_token: "t" }))).status).toBe(200);
    expect((await enroll(keyB.api_key, enrollBody({ id: "host-B", replace_token: "t" }))).status).toBe(403);
  });

  it("re-enrolling the same enrollment_id replaces an agent that never checked in", async () => {
    await putPolicy("enroll-eid");
    const key = await createEnrollmentKey("enroll-eid");
    const first = (await json<{ item: { id: string } }>(await enroll(key.api_key, enrollBody({ enrollment_id: "vm-42" })))).item;
    const second = (await json<{ item: { id: string } }>(await enroll(key.api_key, enrollBody({ enrollment_id: "vm-42" })))).item;
    expect(second.id).not.toBe(first.id);
    expect(await storedAgent(first.id)).toBeNull();
    expect(await storedAgent(second.id)).toMatchObject({ enrollment_id: "vm-42" });
  });
});
