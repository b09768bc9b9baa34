import { SELF, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { MAX_ACK_EVENTS } from "../src/protocol/ack";
import { CHECKIN_FIELD_LIMITS } from "../src/protocol/checkin";
import { MAX_JSON_DEPTH } from "../src/protocol/json-limits";
import { MAX_SOCKET_MESSAGE_BYTES } from "../src/protocol/socket";
import { beginBody, completeUpload, putChunk, transitHash } from "./files/file-helpers";
import {
  ADMIN_TOKEN,
  BASE,
  ackEvent,
  ackRequest,
  adminRequest,
  agentHeaders,
  agentRequest,
  checkinRequest,
  createEnrollmentKey,
  enrollBody,
  enrolledAgent,
  gzip,
  json,
  policyBody,
  putPolicy,
  queueAction,
  type Enrolled,
} from "./helpers";

/**
 * Issue #16: every bad input gets a clear 4xx naming what was wrong, never a 500, and leaves
 * nothing stored. Each case is the attack the issue describes, over HTTP and over the socket.
 */

type ErrorJson = { statusCode: number; error: string; message?: string };

async function expectError(res: Response, status: number, error: string, message?: string | RegExp) {
  const body = await json<ErrorJson>(res);
  expect({ status: res.status, statusCode: body.statusCode, error: body.error }).toEqual({ status, statusCode: status, error });
  if (typeof message === "string") expect(body.message).toBe(message);
  else if (message) expect(body.message).toMatch(message);
}

/** `{"a":{"a":…{}…}}` nested `levels` deep. */
const deep = (levels: number): unknown => JSON.parse(`${'{"a":'.repeat(levels - 1)}{}${"}".repeat(levels - 1)}`);
const DEPTH_MESSAGE = new RegExp(`JSON nests deeper than ${MAX_JSON_DEPTH} levels`);

const agentDetail = async (agent: Enrolled) =>
  (await json<{ item: Record<string, unknown> }>(await adminRequest("GET", `/api/fleet/agents/${agent.id}`))).item;

function gzipCheckin(agent: Enrolled, body: unknown) {
  return gzip(JSON.stringify(body)).then((bytes) =>
    agentRequest("POST", `/api/fleet/agents/${agent.id}/checkin`, { key: agent.key, body: bytes, headers: { "Content-Encoding": "gzip" } }),
  );
}

describe("check-in fields past what a record stores (item 1)", () => {
  it("a 3 MiB message inflated from a 3 KB gzip is a 400 naming the field and its limit; the record keeps the last message", async () => {
    const agent = await enrolledAgent("hard-big");
    expect((await checkinRequest(agent, { message: "Running" })).status).toBe(200);
    const res = await gzipCheckin(agent, { status: "online", message: "x".repeat(3 << 20) });
    await expectError(res, 400, "BadRequest", `Bad request: message: larger than the limit of ${CHECKIN_FIELD_LIMITS.message} bytes (as JSON)`);
    expect((await agentDetail(agent)).last_checkin_message).toBe("Running");
  });

  it("components past their limit are refused by name; a large legitimate list is stored whole", async () => {
    const agent = await enrolledAgent("hard-big");
    // ~150 components with 8 units each, long messages: ~600 KB, what a very large install reports.
    const components = Array.from({ length: 150 }, (_, i) => ({
      id: `filestream-${i}`,
      type: "filestream",
      status: "HEALTHY",
      message: `Healthy: communicating with pid '${1000 + i}' ${"m".repeat(500)}`,
      units: Array.from({ length: 8 }, (_, u) => ({ id: `filestream-${i}-unit-${u}`, type: "input", status: "HEALTHY", message: "Healthy".repeat(60) })),
    }));
    expect(JSON.stringify(components).length).toBeGreaterThan(500_000);
    const ok = await gzipCheckin(agent, { status: "online", message: "Running", components });
    expect(ok.status).toBe(200);
    expect((await agentDetail(agent)).components).toHaveLength(150);

    const tooMany = [...components, ...components];
    const refused = await gzipCheckin(agent, { status: "online", message: "Running", components: tooMany });
    await expectError(refused, 400, "BadRequest", `Bad request: components: larger than the limit of ${CHECKIN_FIELD_LIMITS.components} bytes (as JSON)`);
    expect((await agentDetail(agent)).components).toHaveLength(150);
  });

  it("local_metadata past its limit is refused by name and the stored metadata stays", async () => {
    const agent = await enrolledAgent("hard-big");
    const before = (await agentDetail(agent)).local_metadata;
    const res = await gzipCheckin(agent, { status: "online", local_metadata: { blob: "y".repeat(CHECKIN_FIELD_LIMITS.local_metadata) } });
    await expectError(res, 400, "BadRequest", `Bad request: local_metadata: larger than the limit of ${CHECKIN_FIELD_LIMITS.local_metadata} bytes (as JSON)`);
    expect((await agentDetail(agent)).local_metadata).toEqual(before);
  });
});

describe("JSON nested 3,000 levels deep (item 2)", () => {
  it("check-in local_metadata and upgrade_details.metadata: 400 naming the limit, nothing recorded", async () => {
    const agent = await enrolledAgent("hard-deep");
    const before = await agentDetail(agent);
    await expectError(await checkinRequest(agent, { local_metadata: deep(3000) }), 400, "BadRequest", DEPTH_MESSAGE);
    await expectError(
      await checkinRequest(agent, { upgrade_details: { target_version: "9.6.0", state: "UPG_DOWNLOADING", metadata: deep(3000) } }),
      400,
      "BadRequest",
      DEPTH_MESSAGE,
    );
    const after = await agentDetail(agent);
    expect(after.local_metadata).toEqual(before.local_metadata);
    expect(after.upgrade_details).toBeNull();
  });

  it("a body exactly at the limit is read", async () => {
    const agent = await enrolledAgent("hard-deep");
    // The body is level 1, local_metadata level 2: MAX_JSON_DEPTH - 1 levels below it.
    expect((await checkinRequest(agent, { local_metadata: deep(MAX_JSON_DEPTH - 1) })).status).toBe(200);
    await expectError(await checkinRequest(agent, { local_metadata: deep(MAX_JSON_DEPTH) }), 400, "BadRequest", DEPTH_MESSAGE);
  });

  it("enroll metadata: 400, no agent created", async () => {
    await putPolicy("hard-deep-enroll");
    const key = await createEnrollmentKey("hard-deep-enroll");
    const res = await agentRequest("POST", "/api/fleet/agents/enroll", {
      key: key.api_key,
      body: enrollBody({ id: "hard-deep-enrolled", metadata: { local: deep(3000), user_provided: {}, tags: null } }),
    });
    await expectError(res, 400, "BadRequest", DEPTH_MESSAGE);
    expect((await adminRequest("GET", "/api/fleet/agents/hard-deep-enrolled")).status).toBe(404);
  });

  it("acks action_data and data: 400, the action stays pending", async () => {
    const agent = await enrolledAgent("hard-deep");
    const action = await queueAction(agent.id, { type: "INPUT_ACTION", input_type: "osquery", data: { query: "select 1" } });
    for (const extra of [{ action_data: deep(3000) }, { data: deep(3000) }]) {
      await expectError(await ackRequest(agent, [ackEvent(agent, action.id, "INPUT_ACTION", extra)]), 400, "BadRequest", DEPTH_MESSAGE);
    }
    const detail = await agentDetail(agent);
    expect(detail.action_results).toBe(0);
    expect((detail.pending_actions as Array<{ id: string }>).map((a) => a.id)).toContain(action.id);
  });

  it("admin policy PUT and INPUT_ACTION data: 400 BadRequest, no revision and no action", async () => {
    const agent = await enrolledAgent("hard-deep-admin");
    const revision = (await putPolicy("hard-deep-admin")).item.revision;
    await expectError(await adminRequest("PUT", "/api/fleet/agent_policies/hard-deep-admin", policyBody({ agent: deep(3000) })), 400, "BadRequest", DEPTH_MESSAGE);
    const full = await json<{ item: { revision: number } }>(await adminRequest("GET", "/api/fleet/agent_policies/hard-deep-admin/full"));
    expect(full.item.revision).toBe(revision);

    const res = await adminRequest("POST", `/api/fleet/agents/${agent.id}/actions`, { action: { type: "INPUT_ACTION", input_type: "osquery", data: deep(3000) } });
    await expectError(res, 400, "BadRequest", DEPTH_MESSAGE);
    expect((await agentDetail(agent)).pending_actions).toEqual([]);
  });

  it("upload begin: 400, no upload listed", async () => {
    const agent = await enrolledAgent("hard-deep");
    const res = await agentRequest("POST", "/api/fleet/uploads", { key: agent.key, body: beginBody(agent, 10, { contents: deep(3000) }) });
    await expectError(res, 400, "BadRequest", DEPTH_MESSAGE);
    expect((await json<{ items: unknown[] }>(await adminRequest("GET", `/api/fleet/agents/${agent.id}/uploads`))).items).toEqual([]);
  });
});

describe("ack event count (item 3)", () => {
  it("650k empty events (2 MiB) are a 400 naming the count limit", async () => {
    const agent = await enrolledAgent("hard-acks");
    const body = `{"events":[${Array.from({ length: 650_000 }, () => "{}").join(",")}]}`;
    expect(body.length).toBeLessThanOrEqual(2 << 20);
    const res = await agentRequest("POST", `/api/fleet/agents/${agent.id}/acks`, { key: agent.key, body });
    await expectError(res, 400, "BadRequest", `Bad request: events: more than ${MAX_ACK_EVENTS} events in one request`);
    expect((await agentDetail(agent)).action_results).toBe(0);
  });

  it("exactly the limit is answered item by item", async () => {
    const agent = await enrolledAgent("hard-acks");
    const res = await ackRequest(agent, Array.from({ length: MAX_ACK_EVENTS }, () => ({})));
    const body = await json<{ items: Array<{ status: number }> }>(res);
    expect(body.items).toHaveLength(MAX_ACK_EVENTS);
    expect(res.status).toBe(Math.max(...new Set(body.items.map((item) => item.status))));
  });
});

describe("ids that cannot name anything stored (item 4)", () => {
  const long = "f".repeat(1500);

  it("GET /api/fleet/file/<1,500 characters> is 404 ErrNoFile", async () => {
    const agent = await enrolledAgent("hard-ids");
    await expectError(await agentRequest("GET", `/api/fleet/file/${long}`, { key: agent.key }), 404, "ErrNoFile", "file not found");
    await expectError(await agentRequest("GET", `/api/fleet/file/a%2Fb`, { key: agent.key }), 404, "ErrNoFile", "file not found");
  });

  it("agent, artifact, upload and admin routes answer their own not-found", async () => {
    const agent = await enrolledAgent("hard-ids");
    await expectError(await agentRequest("POST", `/api/fleet/agents/${long}/checkin`, { key: agent.key, body: { status: "online" } }), 404, "AgentNotFound");
    await expectError(await agentRequest("GET", `/api/fleet/artifacts/${long}/${"0".repeat(64)}`, { key: agent.key }), 404, "NotFound");
    await expectError(await agentRequest("POST", `/api/fleet/uploads/${long}`, { key: agent.key, body: { transithash: { sha256: "00" } } }), 400, "ErrInvalidFileID");
    await expectError(await adminRequest("GET", `/api/fleet/agents/${long}`), 404, "NotFound", /^agentId: no such id/);
    await expectError(await adminRequest("DELETE", `/api/fleet/files/${long}`), 404, "NotFound", /^fileId: no such id/);
  });
});

describe("smaller ones (item 6)", () => {
  it("an upload declared 10 bytes and sent one 100-byte chunk fails validation and is not READY", async () => {
    const agent = await enrolledAgent("hard-upload");
    const res = await agentRequest("POST", "/api/fleet/uploads", { key: agent.key, body: beginBody(agent, 10) });
    const { upload_id } = await json<{ upload_id: string }>(res);
    const chunk = new Uint8Array(100).fill(7);
    expect((await putChunk(agent.key, upload_id, 0, chunk)).status).toBe(200);
    await expectError(await completeUpload(agent.key, upload_id, await transitHash([chunk])), 400, "ErrFailValidation");
    const items = (await json<{ items: Array<{ id: string; status: string }> }>(await adminRequest("GET", `/api/fleet/agents/${agent.id}/uploads`))).items;
    expect(items.map((item) => item.status)).toEqual(["UPLOAD_ERROR"]);
    expect((await env.FILES.list({ prefix: `uploads/${upload_id}/` })).objects).toEqual([]);
  });

  it("upload begin takes only the src values agents send", async () => {
    const agent = await enrolledAgent("hard-upload");
    const res = await agentRequest("POST", "/api/fleet/uploads", { key: agent.key, body: beginBody(agent, 10, { src: "../evil" }) });
    await expectError(res, 400, "BadRequest", "Bad request: src: must be one of agent, endpoint");
    expect((await json<{ items: unknown[] }>(await adminRequest("GET", `/api/fleet/agents/${agent.id}/uploads`))).items).toEqual([]);
    expect((await agentRequest("POST", "/api/fleet/uploads", { key: agent.key, body: beginBody(agent, 10, { src: "endpoint" }) })).status).toBe(200);
  });

  it("an admin API key with anything after its secret is refused; the key itself works", async () => {
    const created = await json<{ item: { api_key: string } }>(await adminRequest("POST", "/api/fleet/admin_api_keys", { name: "hardening" }));
    const key = created.item.api_key;
    expect((await adminRequest("GET", "/api/fleet/agent_policies", undefined, key)).status).toBe(200);
    await expectError(await adminRequest("GET", "/api/fleet/agent_policies", undefined, `${key}.junk`), 401, "Unauthorized");
  });

  it("two Authorization headers are 400 ErrMalformedHeader, as fleet-server answers", async () => {
    const agent = await enrolledAgent("hard-auth");
    const headers = new Headers(agentHeaders());
    headers.append("Authorization", `ApiKey ${agent.key}`);
    headers.append("Authorization", `ApiKey ${agent.key}`);
    const res = await SELF.fetch(`${BASE}/api/fleet/agents/${agent.id}/checkin?`, { method: "POST", headers, body: JSON.stringify({ status: "online" }) });
    await expectError(res, 400, "ErrMalformedHeader", "malformed authorization header");
  });

  it("a bad path parameter is named as the parameter, not as the body", async () => {
    await expectError(await adminRequest("PUT", "/api/fleet/agent_policies/bad:id", policyBody()), 400, "BadRequest", /^id: /);
    await expectError(await adminRequest("POST", "/api/fleet/agent_policies/p/revisions/zero/rollback"), 400, "BadRequest", /^revision: /);
  });

  it("a known path with the wrong method is 405 with Allow; an unknown path stays 404", async () => {
    const res = await agentRequest("GET", "/api/fleet/agents/some-agent/checkin");
    expect(res.headers.get("Allow")).toBe("POST");
    await expectError(res, 405, "MethodNotAllowed");
    const admin = await SELF.fetch(`${BASE}/api/fleet/agent_policies/p`, { method: "PATCH", headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(admin.headers.get("Allow")).toBe("DELETE, GET, HEAD, PUT");
    await expectError(admin, 405, "MethodNotAllowed");
    await expectError(await agentRequest("GET", "/api/fleet/nothing-here"), 404, "NotFound");
  });

  it("admin and agent routes share one vocabulary of error names", async () => {
    await expectError(await adminRequest("GET", "/api/fleet/agent_policies/no-such-policy"), 404, "NotFound");
    await expectError(await adminRequest("GET", "/api/fleet/agent_policies?perPage=0"), 400, "BadRequest");
  });
});

/** A server message on the socket, as far as these tests read it. */
type SocketReply = { id?: unknown; status?: number; body: Record<string, unknown> };

/** A socket of `agent`, with what the server sent and how it closed. */
async function openSocket(agent: Enrolled) {
  const res = await SELF.fetch(`${BASE}/api/fleet/agents/${agent.id}/ws`, { headers: { ...agentHeaders(), Authorization: `ApiKey ${agent.key}`, Upgrade: "websocket" } });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  ws.accept();
  const inbox: SocketReply[] = [];
  let closed: { code: number; reason: string } | null = null;
  ws.addEventListener("message", (event) => {
    inbox.push(JSON.parse(event.data as string) as SocketReply);
  });
  ws.addEventListener("close", (event) => {
    closed = { code: event.code, reason: event.reason };
  });
  const until = async <T>(read: () => T | null | undefined): Promise<T> => {
    for (let i = 0; i < 500; i++) {
      const value = read();
      if (value) return value;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error("nothing arrived on the socket");
  };
  return {
    ws,
    reply: (id: number) => until(() => inbox.find((m) => m.id === id)),
    closed: () => until(() => closed),
  };
}

describe("the same inputs over the socket", () => {
  it("a 4 MiB message closes the socket with 1009, not a 500 to retry", async () => {
    const agent = await enrolledAgent("hard-ws");
    const socket = await openSocket(agent);
    socket.ws.send(JSON.stringify({ v: 1, type: "checkin", id: 1, body: { status: "online", message: "x".repeat(4 << 20) } }));
    expect(await socket.closed()).toEqual({ code: 1009, reason: `message exceeds ${MAX_SOCKET_MESSAGE_BYTES} bytes` });
    expect((await agentDetail(agent)).last_checkin_message).not.toBe("x".repeat(4 << 20));
  });

  it("a check-in field past its limit is answered 400 by name and not recorded", async () => {
    const agent = await enrolledAgent("hard-ws");
    const socket = await openSocket(agent);
    socket.ws.send(JSON.stringify({ v: 1, type: "checkin", id: 2, body: { status: "online", message: "x".repeat(CHECKIN_FIELD_LIMITS.message) } }));
    const reply = await socket.reply(2);
    expect(reply).toEqual({
      v: 1,
      type: "error",
      id: 2,
      status: 400,
      body: { statusCode: 400, error: "BadRequest", message: `Bad request: body.message: larger than the limit of ${CHECKIN_FIELD_LIMITS.message} bytes (as JSON)` },
    });
    expect((await agentDetail(agent)).last_checkin_message).toBeNull();
    socket.ws.close(1000, "done");
  });

  it("a deeply nested ack gets a 400 reply naming its id; the action stays pending", async () => {
    const agent = await enrolledAgent("hard-ws");
    const action = await queueAction(agent.id, { type: "INPUT_ACTION", input_type: "osquery", data: { query: "select 1" } });
    const socket = await openSocket(agent);
    socket.ws.send(JSON.stringify({ v: 1, type: "ack", id: 3, body: { events: [ackEvent(agent, action.id, "INPUT_ACTION", { action_data: deep(3000) })] } }));
    const reply = await socket.reply(3);
    expect(reply.status).toBe(400);
    expect(reply.body.error).toBe("BadRequest");
    expect(reply.body.message).toMatch(DEPTH_MESSAGE);
    expect((await agentDetail(agent)).action_results).toBe(0);
    socket.ws.close(1000, "done");
  });

  it("an ack of more events than the limit gets a 400 reply", async () => {
    const agent = await enrolledAgent("hard-ws");
    const socket = await openSocket(agent);
    socket.ws.send(JSON.stringify({ v: 1, type: "ack", id: 4, body: { events: Array.from({ length: MAX_ACK_EVENTS + 1 }, () => ({})) } }));
    const reply = await socket.reply(4);
    expect(reply.body).toEqual({ statusCode: 400, error: "BadRequest", message: `Bad request: body.events: more than ${MAX_ACK_EVENTS} events in one request` });
    socket.ws.close(1000, "done");
  });
});
