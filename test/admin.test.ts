import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { BASE, adminRequest, agentRequest, enrolledAgent, json, policyBody, putPolicy } from "./helpers";

describe("admin authentication", () => {
  it("refuses requests without the admin token, in the error shape", async () => {
    const none = await SELF.fetch(`${BASE}/api/fleet/agent_policies/p/full`);
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({ statusCode: 401, error: "Unauthorized", message: "missing or invalid admin credentials" });
    const wrong = await adminRequest("GET", "/api/fleet/agent_policies/p/full", undefined, "not-the-token");
    expect(wrong.status).toBe(401);
  });

  it("never accepts an agent's access key on admin routes", async () => {
    const agent = await enrolledAgent("admin-agent-key");
    const res = await SELF.fetch(`${BASE}/api/fleet/agent_policies/admin-agent-key/full`, { headers: { Authorization: `ApiKey ${agent.key}` } });
    expect(res.status).toBe(401);
  });

  it("never accepts the admin token on agent routes", async () => {
    const agent = await enrolledAgent("admin-token-agent");
    const res = await agentRequest("POST", `/api/fleet/agents/${agent.id}/checkin`, { body: { status: "online" }, headers: { Authorization: "Bearer test-admin-token" } });
    expect(res.status).toBe(400);
    expect((await json(res)).error).toBe("ErrMalformedHeader");
  });
});

describe("PUT /api/fleet/agent_policies/{id}", () => {
  it("creates revision 1, keeps it for equal content, and publishes revision 2 on a change", async () => {
    const first = await adminRequest("PUT", "/api/fleet/agent_policies/rev-p", policyBody());
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({
      item: { id: "rev-p", name: "Linux servers", namespace: "default", revision: 1, updated_at: expect.any(String) },
      changed: true,
    });
    // Same content in another key order is not a change.
    const body = policyBody();
    const reordered = { policy: { ...body.policy }, namespace: body.namespace, name: body.name };
    const same = await json<{ item: { revision: number }; changed: boolean }>(await adminRequest("PUT", "/api/fleet/agent_policies/rev-p", reordered));
    expect(same).toMatchObject({ item: { revision: 1 }, changed: false });
    const changed = await putPolicy("rev-p", { agent: { logging: { level: "debug" } } });
    expect(changed).toMatchObject({ item: { revision: 2 }, changed: true });

    const full = await json<{ item: Record<string, unknown> }>(await adminRequest("GET", "/api/fleet/agent_policies/rev-p/full"));
    expect(full.item).toMatchObject({ id: "rev-p", revision: 2, agent: { logging: { level: "debug" } } });
  });

  it("names the offending field of an invalid policy", async () => {
    const noOutputs = await adminRequest("PUT", "/api/fleet/agent_policies/bad-p", { name: "x", policy: { outputs: {} } });
    expect(noOutputs.status).toBe(400);
    expect(await noOutputs.json()).toEqual({ statusCode: 400, error: "BadRequest", message: "policy.outputs: a policy needs at least one output" });
    const noName = await adminRequest("PUT", "/api/fleet/agent_policies/bad-p", { policy: policyBody().policy });
    expect((await json(noName)).message).toMatch(/^name: /);
    const badId = await adminRequest("PUT", "/api/fleet/agent_policies/has:colon", policyBody());
    expect(badId.status).toBe(400);
    const missing = await adminRequest("GET", "/api/fleet/agent_policies/bad-p/full");
    expect(missing.status).toBe(404);
  });

  it("rejects a body that is not declared as JSON instead of reading it as empty", async () => {
    const res = await SELF.fetch(`${BASE}/api/fleet/agent_policies/form-p`, {
      method: "PUT",
      headers: { Authorization: "Bearer test-admin-token", "Content-Type": "application/x-www-form-urlencoded" },
      body: "name=x",
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ statusCode: 400, error: "BadRequest", message: "Content-Type must be application/json" });
  });
});

describe("enrollment keys and actions", () => {
  it("refuses a key for an unknown policy", async () => {
    const res = await adminRequest("POST", "/api/fleet/enrollment_api_keys", { policy_id: "no-such-policy" });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ statusCode: 404, error: "NotFound", message: "agent policy no-such-policy not found" });
  });

  it("returns the key once, with Kibana's fields", async () => {
    await putPolicy("key-p");
    const res = await adminRequest("POST", "/api/fleet/enrollment_api_keys", { policy_id: "key-p", name: "prod" });
    const body = await json<{ item: Record<string, unknown>; action: string }>(res);
    expect(body.action).toBe("created");
    expect(Object.keys(body.item).sort()).toEqual(["active", "api_key", "api_key_id", "created_at", "id", "name", "policy_id"]);
    expect(atob(body.item.api_key as string).startsWith(`${body.item.api_key_id as string}:`)).toBe(true);
    expect((await adminRequest("DELETE", "/api/fleet/enrollment_api_keys/unknown")).status).toBe(404);
  });

  it("validates actions before storing them", async () => {
    const agent = await enrolledAgent("action-validation");
    const badType = await adminRequest("POST", `/api/fleet/agents/${agent.id}/actions`, { action: { type: "REBOOT" } });
    expect(badType.status).toBe(400);
    const badData = await adminRequest("POST", `/api/fleet/agents/${agent.id}/actions`, { action: { type: "UPGRADE", data: { source_uri: "x" } } });
    expect(await badData.json()).toEqual({ statusCode: 400, error: "BadRequest", message: "action.data.version: Invalid input: expected string, received undefined" });
    const past = await adminRequest("POST", `/api/fleet/agents/${agent.id}/actions`, { action: { type: "SETTINGS", data: { log_level: "info" }, expiration: "2020-01-01T00:00:00Z" } });
    expect(past.status).toBe(400);
    const unknownAgent = await adminRequest("POST", "/api/fleet/agents/nobody/actions", { action: { type: "SETTINGS", data: { log_level: "info" } } });
    expect(unknownAgent.status).toBe(404);
  });

  it("answers a queued action with Kibana's item shape", async () => {
    const agent = await enrolledAgent("action-shape");
    // Dates from the clock: a fixed expiration would be in the past one day and refused.
    const startTime = isoSeconds(Date.now() + 60 * 60_000);
    const expiration = isoSeconds(Date.now() + 24 * 60 * 60_000);
    const res = await adminRequest("POST", `/api/fleet/agents/${agent.id}/actions`, {
      action: { type: "UPGRADE", data: { version: "9.6.0" }, start_time: startTime, expiration },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      item: {
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        type: "UPGRADE",
        data: { version: "9.6.0" },
        agents: [agent.id],
        created_at: expect.any(String),
        expiration,
        start_time: startTime,
      },
    });
  });
});

/** An RFC 3339 time to the second, as Kibana writes action times. */
function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}
