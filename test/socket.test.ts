import { SELF, env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { agentObject, hubShard } from "../src/durable-stubs";
import type { DeliveredAction } from "../src/protocol/action";
import { SocketServerMessage } from "../src/protocol/socket";
import {
  BASE,
  ackEvent,
  agentHeaders,
  agentRequest,
  checkinRequest,
  createEnrollmentKey,
  enrollBody,
  enrolledAgent,
  json,
  putPolicy,
  queueAction,
  untilParked,
  type Enrolled,
} from "./helpers";

type Message = { v: number; type: string; id?: unknown; status?: number; body: { actions?: DeliveredAction[] } & Record<string, unknown> };

/** An agent's socket with a queue of what the server sent, in order. */
async function connect(agent: Enrolled) {
  const res = await SELF.fetch(`${BASE}/api/fleet/agents/${agent.id}/ws`, {
    headers: { ...agentHeaders(), Authorization: `ApiKey ${agent.key}`, Upgrade: "websocket" },
  });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  ws.accept();
  const inbox: Message[] = [];
  const waiting: Array<(m: Message) => void> = [];
  let closed: { code: number; reason: string } | null = null;
  ws.addEventListener("message", (event) => {
    const message = JSON.parse(event.data as string) as Message;
    const next = waiting.shift();
    if (next) next(message);
    else inbox.push(message);
  });
  // A block body: a handler that returns a value (the assignment's) makes workerd warn on every close.
  ws.addEventListener("close", (event) => {
    closed = { code: event.code, reason: event.reason };
  });
  return {
    send: (message: unknown) => ws.send(JSON.stringify(message)),
    next: (): Promise<Message> =>
      inbox.length > 0
        ? Promise.resolve(inbox.shift()!)
        : new Promise((resolve, reject) => {
            waiting.push(resolve);
            setTimeout(() => reject(new Error("no message within 5 s")), 5000);
          }),
    closed: () => closed,
    close: () => ws.close(1000, "done"),
  };
}

const checkin = (id: number, body: Record<string, unknown> = {}) => ({ v: 1, type: "checkin", id, body: { status: "online", message: "Running", ...body } });

describe("WebSocket channel (v1)", () => {
  it("answers check-ins and acks as messages and pushes new revisions and actions the moment they exist", async () => {
    const agent = await enrolledAgent("ws-p");
    const socket = await connect(agent);

    socket.send(checkin(1, { status: "starting" }));
    const first = await socket.next();
    expect(first).toMatchObject({ v: 1, type: "checkin", id: 1, status: 200, body: { ack_token: "", action: "checkin" } });
    expect(first.body.actions).toEqual([expect.objectContaining({ id: "policy:ws-p:1", type: "POLICY_CHANGE", agent_id: agent.id })]);
    // Spliced from the revision's policy serialised once: still a well-formed v1 message.
    expect(SocketServerMessage.safeParse(first).success).toBe(true);

    socket.send({ v: 1, type: "ack", id: "a1", body: { events: [ackEvent(agent, "policy:ws-p:1", "POLICY_CHANGE")] } });
    expect(await socket.next()).toEqual({ v: 1, type: "ack", id: "a1", status: 200, body: { action: "acks", items: [{ status: 200, message: "OK" }] } });

    socket.send(checkin(2, { agent_policy_id: "ws-p", policy_revision_idx: 1 }));
    expect(await socket.next()).toEqual({ v: 1, type: "checkin", id: 2, status: 200, body: { ack_token: "", action: "checkin" } });

    await putPolicy("ws-p", { agent: { logging: { level: "debug" } } });
    const pushed = await socket.next();
    expect(pushed).toMatchObject({ v: 1, type: "actions", body: { ack_token: "", actions: [{ id: "policy:ws-p:2", type: "POLICY_CHANGE" }] } });
    expect(SocketServerMessage.safeParse(pushed).success).toBe(true);
    expect(pushed.body.actions![0]).toEqual({
      agent_id: agent.id,
      created_at: expect.any(String),
      data: { policy: expect.objectContaining({ id: "ws-p", revision: 2 }) },
      id: "policy:ws-p:2",
      input_type: "",
      type: "POLICY_CHANGE",
    });

    const action = await queueAction(agent.id, { type: "SETTINGS", data: { log_level: "info" } });
    const actions = await socket.next();
    expect(actions).toMatchObject({ v: 1, type: "actions", body: { ack_token: action.id, actions: [{ id: action.id, type: "SETTINGS", data: { log_level: "info" } }] } });

    socket.close();
  });

  it("hands delivery to an HTTP check-in of the agent, closing its socket (4000)", async () => {
    const agent = await enrolledAgent("ws-poll-p");
    const socket = await connect(agent);
    socket.send(checkin(1, { status: "starting" }));
    expect((await socket.next()).body.actions?.[0]).toMatchObject({ id: "policy:ws-poll-p:1" });
    socket.send({ v: 1, type: "ack", id: "a1", body: { events: [ackEvent(agent, "policy:ws-poll-p:1", "POLICY_CHANGE")] } });
    expect(await socket.next()).toMatchObject({ type: "ack", status: 200 });
    const pushed = await queueAction(agent.id, { type: "SETTINGS", data: { log_level: "info" } });
    expect(await socket.next()).toMatchObject({ type: "actions", body: { actions: [{ id: pushed.id }] } });

    // The agent falls back to long polling (its socket may be gone without a close reaching the
    // server): the poll delivers what was pushed but never acked, and the socket is closed.
    const poll = await checkinRequest(agent, { agent_policy_id: "ws-poll-p", policy_revision_idx: 1, poll_timeout: "10m" });
    expect(await poll.json()).toMatchObject({ ack_token: pushed.id, action: "checkin", actions: [{ id: pushed.id, type: "SETTINGS" }] });
    for (let i = 0; i < 50 && !socket.closed(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(socket.closed()).toMatchObject({ code: 4000, reason: "superseded by an HTTP check-in" });

    // From now on polls deliver: a parked one is released by the next action and the next revision.
    const parked = checkinRequest(agent, { agent_policy_id: "ws-poll-p", policy_revision_idx: 1, ack_token: pushed.id, poll_timeout: "10m" });
    await untilParked("ws-poll-p");
    const next = await queueAction(agent.id, { type: "SETTINGS", data: { log_level: "debug" } });
    expect(await (await parked).json()).toMatchObject({ ack_token: next.id, actions: [{ id: next.id }] });
    const again = checkinRequest(agent, { agent_policy_id: "ws-poll-p", policy_revision_idx: 1, ack_token: next.id, poll_timeout: "10m" });
    await untilParked("ws-poll-p");
    await putPolicy("ws-poll-p", { agent: { logging: { level: "debug" } } });
    expect(await (await again).json()).toMatchObject({ actions: [{ id: "policy:ws-poll-p:2", type: "POLICY_CHANGE" }] });
  });

  it("answers bad messages in the error shape and keeps the socket", async () => {
    const agent = await enrolledAgent("ws-bad-p");
    const socket = await connect(agent);
    socket.send({ v: 1, type: "checkin", id: 7, body: { message: "no status" } });
    expect(await socket.next()).toEqual({ v: 1, type: "error", id: 7, status: 400, body: { statusCode: 400, error: "BadRequest", message: "Bad request: body.status: checkin status missing" } });
    socket.send({ v: 2, type: "checkin", id: 8, body: { status: "online" } });
    expect(await socket.next()).toMatchObject({ type: "error", id: 8, status: 400 });
    socket.send(checkin(9));
    expect(await socket.next()).toMatchObject({ type: "checkin", id: 9, status: 200 });
    socket.close();
  });

  it("closes the socket when the agent is unenrolled", async () => {
    const agent = await enrolledAgent("ws-unenroll-p");
    const socket = await connect(agent);
    await SELF.fetch(`${BASE}/api/fleet/agents/${agent.id}/unenroll`, { method: "POST", headers: { Authorization: "Bearer test-admin-token" } });
    const pushed = await socket.next();
    const unenroll = pushed.body.actions?.find((a) => a.type === "UNENROLL");
    socket.send({ v: 1, type: "ack", id: 1, body: { events: [ackEvent(agent, unenroll!.id, "UNENROLL")] } });
    expect(await socket.next()).toMatchObject({ type: "ack", status: 200 });
    for (let i = 0; i < 50 && !socket.closed(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(socket.closed()).toMatchObject({ code: 4001 });
  });

  it("closes an agent's older socket (4000) when it opens a newer one, which answers and gets pushes", async () => {
    const agent = await enrolledAgent("ws-twice-p");
    const older = await connect(agent);
    older.send(checkin(1, { status: "starting" }));
    expect((await older.next()).body.actions?.[0]).toMatchObject({ id: "policy:ws-twice-p:1" });

    const newer = await connect(agent);
    for (let i = 0; i < 50 && !older.closed(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(older.closed()).toMatchObject({ code: 4000 });
    newer.send(checkin(2, { agent_policy_id: "ws-twice-p", policy_revision_idx: 1 }));
    expect(await newer.next()).toEqual({ v: 1, type: "checkin", id: 2, status: 200, body: { ack_token: "", action: "checkin" } });

    await putPolicy("ws-twice-p", { agent: { logging: { level: "debug" } } });
    expect(await newer.next()).toMatchObject({ type: "actions", body: { actions: [{ id: "policy:ws-twice-p:2", type: "POLICY_CHANGE" }] } });
    newer.close();
  });

  it("answers a socket that was replaced meanwhile with 409 and closes it as superseded (4000), not as unauthorized", async () => {
    const agent = await enrolledAgent("ws-race-p");
    const socket = await connect(agent);
    // A newer connection has registered in the agent's store, and the shard has not swapped sockets yet.
    expect(await agentObject(env, agent.id).attachSocket("a-newer-connection")).toBeNull();
    socket.send(checkin(1));
    expect(await socket.next()).toEqual({
      v: 1,
      type: "error",
      id: 1,
      status: 409,
      body: { statusCode: 409, error: "Conflict", message: "this socket no longer speaks for the agent: a newer socket or an HTTP check-in replaced it" },
    });
    for (let i = 0; i < 50 && !socket.closed(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(socket.closed()).toMatchObject({ code: 4000 });
  });

  it("answers keepalive pings with pongs, an exact ping from the runtime without waking the shard", async () => {
    const agent = await enrolledAgent("ws-ping-p");
    const socket = await connect(agent);
    const autoResponded = () =>
      runInDurableObject(hubShard(env, "ws-ping-p", agent.id).shard as unknown as DurableObjectStub, async (_instance, state: DurableObjectState) =>
        state.getWebSockets().map((ws) => state.getWebSocketAutoResponseTimestamp(ws) !== null),
      );
    expect(await autoResponded()).toEqual([false]);
    socket.send({ v: 1, type: "ping" });
    expect(await socket.next()).toEqual({ v: 1, type: "pong" });
    expect(await autoResponded()).toEqual([true]);
    // Another spelling reaches the shard, which answers the same.
    socket.send({ type: "ping", v: 1 });
    expect(await socket.next()).toEqual({ v: 1, type: "pong" });
    socket.close();
  });

  it("authenticates like a check-in and requires the upgrade", async () => {
    const agent = await enrolledAgent("ws-auth-p");
    const forged = await SELF.fetch(`${BASE}/api/fleet/agents/${agent.id}/ws`, {
      headers: { ...agentHeaders(), Authorization: `ApiKey ${btoa("nobody:nothing")}`, Upgrade: "websocket" },
    });
    expect(forged.status).toBe(401);
    const plain = await SELF.fetch(`${BASE}/api/fleet/agents/${agent.id}/ws`, { headers: { ...agentHeaders(), Authorization: `ApiKey ${agent.key}` } });
    expect(plain.status).toBe(426);
    expect(await json(plain)).toEqual({ statusCode: 426, error: "UpgradeRequired", message: "this route speaks WebSocket: send Upgrade: websocket" });
  });
});

describe("WebSocket channel and reassignment", () => {
  it("closes the socket with 4002 when the agent moves to another policy, and the new socket gets the new policy", async () => {
    const agent = await enrolledAgent("ws-from-p");
    await putPolicy("ws-to-p");
    const socket = await connect(agent);
    socket.send(checkin(1, { status: "starting" }));
    await socket.next();
    const moved = await SELF.fetch(`${BASE}/api/fleet/agents/${agent.id}/reassign`, {
      method: "POST",
      headers: { Authorization: "Bearer test-admin-token", "Content-Type": "application/json" },
      body: JSON.stringify({ policy_id: "ws-to-p" }),
    });
    expect(moved.status).toBe(200);
    for (let i = 0; i < 50 && !socket.closed(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(socket.closed()).toMatchObject({ code: 4002 });
    const again = await connect(agent);
    again.send(checkin(2, { agent_policy_id: "ws-from-p", policy_revision_idx: 1 }));
    expect((await again.next()).body.actions?.[0]).toMatchObject({ id: "policy:ws-to-p:1", type: "POLICY_CHANGE" });
    again.close();
  });
});

describe("WebSocket channel and re-enrollment", () => {
  it("cuts a socket opened with a key that a replace-token enrollment replaced", async () => {
    const agent = await enrolledAgent("ws-replace-p", { id: "ws-host", replace_token: "t1" });
    const socket = await connect(agent);
    socket.send(checkin(1, { status: "starting" }));
    await socket.next();
    const key = await createEnrollmentKey("ws-replace-p");
    const again = await agentRequest("POST", "/api/fleet/agents/enroll", { key: key.api_key, body: enrollBody({ id: "ws-host", replace_token: "t1" }) });
    expect(again.status).toBe(200);
    for (let i = 0; i < 50 && !socket.closed(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(socket.closed()).toMatchObject({ code: 4003 });
  });
});
