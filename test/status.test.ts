import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { BASE, agentRequest, createEnrollmentKey, enrolledAgent, json } from "./helpers";

describe("GET /api/status", () => {
  it("answers HEALTHY without credentials, with the API version and a generated request id", async () => {
    const res = await SELF.fetch(`${BASE}/api/status`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ name: "fleet-server", status: "HEALTHY" });
    expect(res.headers.get("Elastic-Api-Version")).toBe("2023-06-01");
    expect(res.headers.get("X-Request-Id")).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers.get("Content-Type")).toBe("application/json");
  });

  it("echoes the agent's request id and accepts the bare trailing ?", async () => {
    const res = await agentRequest("GET", "/api/status");
    expect(res.status).toBe(200);
    expect(res.headers.get("X-Request-Id")).toBe("01K3BWR7Q4M9ZJ8E2YV6T1N5PD");
  });

  it("adds the server version for an agent's access key", async () => {
    const agent = await enrolledAgent("status-policy");
    const res = await agentRequest("GET", "/api/status", { key: agent.key });
    expect(await res.json()).toEqual({
      name: "fleet-server",
      status: "HEALTHY",
      version: { number: "9.6.0", build_hash: "edge", build_time: "2026-11-28T00:00:00Z" },
    });
  });

  it("adds the version for an enrollment key too (the MIGRATE probe), but not for a forged key", async () => {
    const key = await createEnrollmentKey("status-policy");
    const withEk = await json(await agentRequest("GET", "/api/status", { key: key.api_key }));
    expect(withEk.version).toBeDefined();
    const forged = await json(await agentRequest("GET", "/api/status", { key: btoa(`${key.api_key_id}:wrong`) }));
    expect(forged).toEqual({ name: "fleet-server", status: "HEALTHY" });
  });
});

describe("Elastic-Api-Version", () => {
  it("rejects a malformed version with fleet-server's message and sets the default header", async () => {
    const res = await agentRequest("GET", "/api/status", { headers: { "Elastic-Api-Version": "2023-13" } });
    expect(res.status).toBe(400);
    expect(res.headers.get("Elastic-Api-Version")).toBe("2023-06-01");
    expect(res.headers.get("Content-Type")).toBe("application/json; charset=utf-8");
    expect(res.headers.get("X-Content-Type-Options")).toBe("nosniff");
    expect(await res.json()).toEqual({
      statusCode: 400,
      error: "ErrInvalidAPIVersionFormat",
      message: 'received "2023-13", expected a valid date string formatted as YYYY-MM-DD. invalid version format',
    });
  });

  it("rejects an unsupported date", async () => {
    const res = await agentRequest("GET", "/api/status", { headers: { "Elastic-Api-Version": "2024-01-01" } });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      statusCode: 400,
      error: "ErrUnsupportedAPIVersion",
      message: 'received "2024-01-01", is not supported. supported versions are: [2023-06-01] version is not supported',
    });
    expect(res.headers.get("Elastic-Api-Version")).toBe("2023-06-01");
  });
});

describe("unknown routes", () => {
  it("answer 404 in the error shape", async () => {
    const res = await SELF.fetch(`${BASE}/api/fleet/nothing-here`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ statusCode: 404, error: "NotFound", message: "not found" });
  });
});
