import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { agentRequest, createEnrollmentKey, enrolledAgent } from "./helpers";

/** Every console line written while `fn` runs, with the console method that wrote it. */
async function captured(fn: () => Promise<unknown>): Promise<Array<{ method: string; text: string }>> {
  const lines: Array<{ method: string; text: string }> = [];
  const spies = (["log", "warn", "error"] as const).map((method) =>
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => void lines.push({ method, text: args.map(String).join(" ") })),
  );
  try {
    await fn();
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
  return lines;
}

const requestLines = (lines: Array<{ text: string }>) =>
  lines.map((l) => JSON.parse(l.text) as Record<string, unknown>).filter((l) => l.event === "http.request");

describe("structured logs", () => {
  afterEach(() => {
    delete (env as { LOG_LEVEL?: string }).LOG_LEVEL;
  });

  it("logs one JSON line per request with time, level, request id, route pattern, status, duration and agent id", async () => {
    const agent = await enrolledAgent("log-policy");
    const ack = () => agentRequest("POST", `/api/fleet/agents/${agent.id}/acks`, { key: agent.key, body: { events: [] } });
    // An answered ack is a fleet's steady traffic: at the default level it writes nothing.
    expect(requestLines(await captured(ack))).toEqual([]);
    (env as { LOG_LEVEL?: string }).LOG_LEVEL = "debug";
    const lines = await captured(ack);
    const logged = requestLines(lines);
    expect(logged).toEqual([
      {
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        level: "debug",
        event: "http.request",
        request_id: "01K3BWR7Q4M9ZJ8E2YV6T1N5PD",
        method: "POST",
        route: "/api/fleet/agents/:id/acks",
        status: 200,
        duration_ms: expect.any(Number),
        agent_id: agent.id,
      },
    ]);
    expect(Date.parse(logged[0]!.time as string)).toBeLessThanOrEqual(Date.now());
  });

  it("names the refusal, and never writes a key or the Authorization header", async () => {
    const key = await createEnrollmentKey("log-policy");
    const secret = key.api_key;
    const lines = await captured(async () => {
      // A wrong agent key and an enrollment that carries a real enrollment key.
      await agentRequest("POST", "/api/fleet/agents/0123/acks", { key: btoa(`${key.api_key_id}:not-the-key`), body: { events: [] } });
      await agentRequest("POST", "/api/fleet/agents/enroll", { key: secret, body: { type: "PERMANENT", metadata: { local: {}, user_provided: {} } } });
    });
    const logged = requestLines(lines);
    // The answered enrollment is logged once, at info, by the agent's store (its request line is debug).
    expect(logged.map((l) => [l.route, l.status, l.error])).toEqual([["/api/fleet/agents/:id/acks", 401, "Unauthorized"]]);
    const enrolled = lines.map((l) => JSON.parse(l.text) as Record<string, unknown>).filter((l) => l.event === "agent.enrolled");
    expect(enrolled).toEqual([
      { time: expect.any(String), level: "info", event: "agent.enrolled", agent_id: expect.any(String), policy_id: "log-policy", replaced: false },
    ]);
    const all = lines.map((l) => l.text).join("\n");
    expect(all).not.toContain(secret);
    expect(all).not.toContain(btoa(`${key.api_key_id}:not-the-key`));
    expect(all).not.toMatch(/ApiKey|authorization/i);
  });

  it("drops lines below LOG_LEVEL", async () => {
    (env as { LOG_LEVEL?: string }).LOG_LEVEL = "warn";
    const quiet = await captured(() => agentRequest("GET", "/api/status"));
    expect(requestLines(quiet)).toEqual([]);
    (env as { LOG_LEVEL?: string }).LOG_LEVEL = "debug";
    const loud = await captured(() => agentRequest("GET", "/api/status"));
    expect(requestLines(loud).map((l) => [l.level, l.route, l.status])).toEqual([["info", "/api/status", 200]]);
  });
});
