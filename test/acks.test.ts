import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { agentStoreName } from "../src/agents/agent-stores";
import { agentObject } from "../src/durable-stubs";
import type { AgentDoc } from "../src/protocol/agent-doc";
import { ackEvent, ackRequest, adminRequest, agentRequest, checkinRequest, enrolledAgent, json, putPolicy, queueAction } from "./helpers";

const record = async (id: string): Promise<AgentDoc> => (await agentObject(env, id).record())!;

/** The results stored for an agent, read straight from its store's SQLite. */
async function storedResults(agentId: string): Promise<Array<{ action_id: string; body: Record<string, unknown> }>> {
  const { runInDurableObject } = await import("cloudflare:test");
  return runInDurableObject(env.AGENT_STORES.get(env.AGENT_STORES.idFromName(agentStoreName(agentId))), async (_instance, state: DurableObjectState) =>
    state.storage.sql
      .exec<{ action_id: string; body: string }>("SELECT action_id, body FROM action_results WHERE agent_id = ? ORDER BY action_id", agentId)
      .toArray()
      .map((row) => ({ action_id: row.action_id, body: JSON.parse(row.body) as Record<string, unknown> })),
  );
}

describe("POST /api/fleet/agents/{id}/acks", () => {
  it("moves the agent's revision on a POLICY_CHANGE ack and answers OK (checklist 10)", async () => {
    const agent = await enrolledAgent("ack-policy");
    const res = await ackRequest(agent, [ackEvent(agent, "policy:ack-policy:1", "POLICY_CHANGE")]);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ action: "acks", items: [{ status: 200, message: "OK" }] });
    expect((await record(agent.id)).policy_revision_idx).toBe(1);
    // Agents re-ack on restart; it stays a success and the revision never moves back.
    await putPolicy("ack-policy", { agent: { logging: { level: "debug" } } });
    await ackRequest(agent, [ackEvent(agent, "policy:ack-policy:2:1", "POLICY_CHANGE")]);
    const again = await ackRequest(agent, [ackEvent(agent, "policy:ack-policy:1", "POLICY_CHANGE")]);
    expect(again.status).toBe(200);
    expect((await record(agent.id)).policy_revision_idx).toBe(2);
  });

  it("ignores POLICY_CHANGE acks of another policy or with an error", async () => {
    const agent = await enrolledAgent("ack-policy-other");
    await ackRequest(agent, [ackEvent(agent, "policy:elsewhere:7", "POLICY_CHANGE"), ackEvent(agent, "policy:ack-policy-other:1", "POLICY_CHANGE", { error: "invalid policy" })]);
    expect((await record(agent.id)).policy_revision_idx).toBe(0);
  });

  it("answers per item in order, with the worst status, and stores results (checklist 11)", async () => {
    const agent = await enrolledAgent("ack-partial");
    const action = await queueAction(agent.id, { type: "SETTINGS", data: { log_level: "debug" } });
    const res = await ackRequest(agent, [
      ackEvent(agent, action.id, "SETTINGS", { error: "could not apply" }),
      ackEvent(agent, "nope", "SETTINGS"),
      ackEvent(agent, action.id, "SETTINGS", { agent_id: "someone-else" }),
    ]);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      action: "acks",
      errors: true,
      items: [
        { status: 200, message: "OK" },
        { status: 404, message: "Not Found" },
        { status: 400, message: "Bad Request" },
      ],
    });
    expect(await storedResults(agent.id)).toEqual([
      { action_id: action.id, body: { action_id: action.id, agent_id: agent.id, "@timestamp": "2026-08-22T14:03:27.512345678Z", error: "could not apply" } },
    ]);
  });

  it("reads the legacy event layout and keeps the first result of a re-sent ack", async () => {
    const agent = await enrolledAgent("ack-legacy");
    const action = await queueAction(agent.id, { type: "INPUT_ACTION", input_type: "osquery", data: { id: "q1", query: "select * from uptime;" } });
    const legacy = `{"events":[{"type":"ACTION_RESULT","subtype":"ACKNOWLEDGED","timestamp":"2026-08-22T15:06:01.893+00:00","action_id":"${action.id}","agent_id":"${agent.id}","message":"Action \\"${action.id}\\" of type \\"INPUT_ACTION\\" acknowledged.","action_input_type":"osquery","action_data":{"id":"q1","query":"select * from uptime;"},"action_response":{"osquery":{"count":1}},"started_at":"2026-08-22T15:06:01.640587Z","completed_at":"2026-08-22T15:06:01.892113Z"}]}`;
    const res = await agentRequest("POST", `/api/fleet/agents/${agent.id}/acks`, { key: agent.key, body: legacy });
    expect(await res.json()).toEqual({ action: "acks", items: [{ status: 200, message: "OK" }] });
    await ackRequest(agent, [ackEvent(agent, action.id, "INPUT_ACTION", { error: "late duplicate" })]);
    expect(await storedResults(agent.id)).toEqual([
      {
        action_id: action.id,
        body: {
          action_id: action.id,
          agent_id: agent.id,
          "@timestamp": "2026-08-22T15:06:01.893+00:00",
          action_input_type: "osquery",
          action_data: { id: "q1", query: "select * from uptime;" },
          action_response: { osquery: { count: 1 } },
          started_at: "2026-08-22T15:06:01.640587Z",
          completed_at: "2026-08-22T15:06:01.892113Z",
        },
      },
    ]);
  });

  it("answers an empty event list with the bare acks body", async () => {
    const agent = await enrolledAgent("ack-empty");
    const res = await ackRequest(agent, []);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ action: "acks" });
  });

  it("rejects a malformed body without touching the agent", async () => {
    const agent = await enrolledAgent("ack-bad");
    const res = await agentRequest("POST", `/api/fleet/agents/${agent.id}/acks`, { key: agent.key, body: { events: "nope" } });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ statusCode: 400, error: "BadRequest", message: "Bad request: events: Invalid input: expected array, received string" });
  });

  it("deactivates the agent and revokes its key when it acks UNENROLL (checklist 12)", async () => {
    const agent = await enrolledAgent("ack-unenroll");
    const queued = await adminRequest("POST", `/api/fleet/agents/${agent.id}/unenroll`);
    expect(queued.status).toBe(200);
    const checkin = await json<{ actions: Array<{ id: string; type: string; data: unknown }> }>(await checkinRequest(agent));
    expect(checkin.actions).toEqual([expect.objectContaining({ type: "UNENROLL", data: null })]);
    const unenrollId = checkin.actions[0]!.id;

    const res = await ackRequest(agent, [ackEvent(agent, unenrollId, "UNENROLL")]);
    expect(res.status).toBe(200);
    const stored = await record(agent.id);
    expect(stored.active).toBe(false);
    expect(stored.unenrolled_at).toEqual(expect.any(String));

    const after = await checkinRequest(agent);
    expect(after.status).toBe(401);
    expect(await after.json()).toEqual({ statusCode: 401, error: "ErrUnauthorized", message: "unauthorized" });
    // Admins cannot queue more actions for an unenrolled agent.
    const late = await adminRequest("POST", `/api/fleet/agents/${agent.id}/actions`, { action: { type: "SETTINGS", data: { log_level: "info" } } });
    expect(late.status).toBe(409);
  });
});

describe("POST /api/fleet/agents/{id}/audit/unenroll", () => {
  it("records the reason, answers 200 with no body, and refuses a second orphaned report", async () => {
    const agent = await enrolledAgent("audit");
    const res = await agentRequest("POST", `/api/fleet/agents/${agent.id}/audit/unenroll`, {
      key: agent.key,
      body: { reason: "orphaned", timestamp: "2026-08-22T16:10:05.221340117Z" },
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("");
    expect(await record(agent.id)).toMatchObject({ audit_unenrolled_reason: "orphaned", audit_unenrolled_time: "2026-08-22T16:10:05.221340117Z" });

    const again = await agentRequest("POST", `/api/fleet/agents/${agent.id}/audit/unenroll`, {
      key: agent.key,
      body: { reason: "uninstall", timestamp: "2026-08-22T16:11:00Z" },
    });
    expect(again.status).toBe(409);
    expect(await again.json()).toEqual({ statusCode: 409, error: "ErrAuditReasonConflict", message: "agent document contains audit_unenroll_reason" });

    // The next check-in clears the audit trail.
    await checkinRequest(agent);
    const stored = await record(agent.id);
    expect(stored.audit_unenrolled_reason).toBeUndefined();
  });

  it("rejects unknown reasons", async () => {
    const agent = await enrolledAgent("audit-bad");
    const res = await agentRequest("POST", `/api/fleet/agents/${agent.id}/audit/unenroll`, { key: agent.key, body: { reason: "bored", timestamp: "2026-08-22T16:10:05Z" } });
    expect(res.status).toBe(400);
    expect((await json(res)).error).toBe("BadRequest");
  });
});
