import { SELF, env } from "cloudflare:test";
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import {
  AgentCapabilities,
  AgentToServerFlags,
  CommandType,
  AgentToServerSchema,
  RemoteConfigStatuses,
  ServerErrorResponseType,
  ServerToAgentFlags,
  ServerToAgentSchema,
  type ServerToAgent,
} from "../src/opamp/gen/opamp_pb";
import { agentObject } from "../src/durable-stubs";
import { idToUid, newUuidV7, uidToId } from "../src/opamp/wire";
import { BASE, adminRequest, createEnrollmentKey, eventually, gzip, json, putPolicy } from "./helpers";

const CAPABILITIES = BigInt(
  AgentCapabilities.AgentCapabilities_ReportsStatus |
    AgentCapabilities.AgentCapabilities_AcceptsRemoteConfig |
    AgentCapabilities.AgentCapabilities_ReportsRemoteConfig |
    AgentCapabilities.AgentCapabilities_AcceptsOpAMPConnectionSettings,
);

const collectorSections = (size = 0) => ({
  receivers: { otlp: { protocols: { http: {} } } },
  exporters: { debug: { verbosity: "basic", note: "x".repeat(size) } },
  service: { pipelines: { traces: { receivers: ["otlp"], exporters: ["debug"] } } },
});

function encode(init: MessageInitShape<typeof AgentToServerSchema>): Uint8Array {
  return toBinary(AgentToServerSchema, create(AgentToServerSchema, { capabilities: CAPABILITIES, ...init }));
}

async function post(body: Uint8Array | string, auth: string | null, headers: Record<string, string> = {}): Promise<Response> {
  return SELF.fetch(`${BASE}/v1/opamp`, {
    method: "POST",
    headers: { "Content-Type": "application/x-protobuf", ...(auth ? { Authorization: auth } : {}), ...headers },
    body,
  });
}

async function answer(res: Response): Promise<ServerToAgent> {
  expect(res.status).toBe(200);
  expect(res.headers.get("Content-Type")).toBe("application/x-protobuf");
  return fromBinary(ServerToAgentSchema, new Uint8Array(await res.arrayBuffer()));
}

/** A policy with collector sections, its enrollment token, and a collector enrolled with it. */
async function setup(policyId: string, size = 0) {
  await putPolicy(policyId, collectorSections(size));
  const token = `ApiKey ${(await createEnrollmentKey(policyId)).api_key}`;
  return { token };
}

async function enrolled(policyId: string) {
  const { token } = await setup(policyId);
  const uid = newUuidV7();
  const first = await answer(await post(encode({ instanceUid: idToUid(uid), sequenceNum: 0n }), token));
  const header = first.connectionSettings?.opamp?.headers?.headers.find((h) => h.key === "Authorization")?.value;
  expect(header).toMatch(/^ApiKey /);
  return { token, uid, credential: header!, first };
}

describe("OpAMP over HTTP: the codec", () => {
  it("enrolls on the enrollment token, echoes the uid, states capabilities, offers its own credential and the config", async () => {
    const { uid, first } = await enrolled("opamp-enroll");
    expect(uidToId(first.instanceUid)).toBe(uid);
    expect(first.capabilities).toBe(BigInt(1 | 2 | 4 | 32));
    expect(first.errorResponse).toBeUndefined();
    expect(new TextDecoder().decode(first.remoteConfig!.configHash)).toMatch(/^policy:opamp-enroll:1:[0-9a-f]{32}$/);
    expect(Object.keys(first.remoteConfig!.config!.configMap)).toEqual(["collector.yaml"]);
    const agent = await json<{ item: { type: string; policy_id: string } }>(await adminRequest("GET", `/api/fleet/agents/${uid}`));
    expect(agent.item).toMatchObject({ type: "OPAMP", policy_id: "opamp-enroll" });
  });

  it("answers APPLIED with the current hash as the revision's ack, and does not offer the config again", async () => {
    const { uid, credential, first } = await enrolled("opamp-ack");
    const next = await answer(
      await post(
        encode({
          instanceUid: idToUid(uid),
          sequenceNum: 1n,
          remoteConfigStatus: { lastRemoteConfigHash: first.remoteConfig!.configHash, status: RemoteConfigStatuses.RemoteConfigStatuses_APPLIED },
        }),
        credential,
      ),
    );
    expect(next.remoteConfig).toBeUndefined();
    expect(next.connectionSettings).toBeUndefined();
    expect(next.flags).toBe(0n);
    const agent = await json<{ item: { policy_revision: number; opamp: { credential_used: boolean } } }>(await adminRequest("GET", `/api/fleet/agents/${uid}`));
    expect(agent.item.policy_revision).toBe(1);
    expect(agent.item.opamp.credential_used).toBe(true);
  });

  it("asks for full state on a sequence_num gap, not on the next number or a retry of the last", async () => {
    const { uid, credential } = await enrolled("opamp-seq");
    const send = async (seq: bigint) => (await answer(await post(encode({ instanceUid: idToUid(uid), sequenceNum: seq }), credential))).flags;
    expect(await send(1n)).toBe(0n);
    expect(await send(1n)).toBe(0n);
    expect(await send(5n)).toBe(BigInt(ServerToAgentFlags.ServerToAgentFlags_ReportFullState));
    expect(await send(6n)).toBe(0n);
  });

  it("assigns a UUIDv7 on RequestInstanceUid, and a new uid to a token holder claiming a collector that has its own credential", async () => {
    const { token, uid, credential } = await enrolled("opamp-uid");
    // The collector has used its credential once: the token no longer speaks for its uid.
    await answer(await post(encode({ instanceUid: idToUid(uid), sequenceNum: 1n }), credential));
    const clone = await answer(await post(encode({ instanceUid: idToUid(uid), sequenceNum: 0n }), token));
    const renamed = uidToId(clone.agentIdentification!.newInstanceUid);
    expect(renamed).not.toBe(uid);
    expect(uidToId(clone.instanceUid)).toBe(renamed);
    const asked = await answer(
      await post(encode({ instanceUid: idToUid(newUuidV7()), sequenceNum: 0n, flags: BigInt(AgentToServerFlags.AgentToServerFlags_RequestInstanceUid) }), token),
    );
    expect(uidToId(asked.agentIdentification!.newInstanceUid)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it("answers a malformed message BAD_REQUEST, in a ServerToAgent", async () => {
    const { token } = await setup("opamp-bad");
    const garbage = await answer(await post(new Uint8Array([0xff, 0xff, 0xff]), token));
    expect(garbage.errorResponse?.type).toBe(ServerErrorResponseType.ServerErrorResponseType_BadRequest);
    const shortUid = await answer(await post(encode({ instanceUid: new Uint8Array(3) }), token));
    expect(shortUid.errorResponse?.errorMessage).toBe("instance_uid must be 16 bytes, got 3");
  });

  it("refuses callers in the upstream error shape: no header, an unknown key, another collector's credential, a revoked one", async () => {
    const message = encode({ instanceUid: idToUid(newUuidV7()) });
    const none = await post(message, null);
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({ statusCode: 401, error: "ErrNoAuthHeader", message: "no authorization header" });
    const forged = await post(new Uint8Array([0xff]), `ApiKey ${btoa("nobody:nothing")}`);
    expect(forged.status).toBe(401);
    expect(await forged.json()).toEqual({ statusCode: 401, error: "ErrUnauthorized", message: "unauthorized" });
    const { uid, credential } = await enrolled("opamp-auth");
    const other = await post(message, credential);
    expect(other.status).toBe(403);
    expect(await other.json()).toMatchObject({ statusCode: 403, error: "ErrAgentIdentity" });
    // Unenrolling a collector revokes its credential at once (it reads no UNENROLL action).
    expect((await adminRequest("POST", `/api/fleet/agents/${uid}/unenroll`, {})).status).toBe(200);
    const revoked = await post(encode({ instanceUid: idToUid(uid), sequenceNum: 1n }), credential);
    expect(revoked.status).toBe(401);
    expect(await revoked.json()).toEqual({ statusCode: 401, error: "ErrUnauthorized", message: "unauthorized" });
  });

  it("answers overload with 429 and Retry-After (the collector's own 30 requests per 10 s)", async () => {
    const { uid, credential } = await enrolled("opamp-busy");
    let refused: Response | null = null;
    for (let seq = 1n; seq <= 40n && !refused; seq++) {
      const res = await post(encode({ instanceUid: idToUid(uid), sequenceNum: seq }), credential);
      if (res.status === 429) refused = res;
      else await res.arrayBuffer();
    }
    expect(refused?.status).toBe(429);
    expect(Number(refused!.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect(await refused!.json()).toMatchObject({ statusCode: 429, error: "RateLimit" });
  });

  it("refuses, with BAD_REQUEST, parts larger than a record keeps (effective config files over 512 KiB together)", async () => {
    const { uid, credential } = await enrolled("opamp-oversized");
    // Each file is kept up to 256 KiB; three of 200 KiB pass that but not the total.
    const file = { body: new TextEncoder().encode(`receivers: ${"x".repeat(200 * 1024)}\n`) };
    const configMap = { "a.yaml": file, "b.yaml": file, "c.yaml": file };
    const reply = await answer(await post(encode({ instanceUid: idToUid(uid), sequenceNum: 1n, effectiveConfig: { configMap: { configMap } } }), credential));
    expect(reply.errorResponse).toMatchObject({ type: ServerErrorResponseType.ServerErrorResponseType_BadRequest, errorMessage: "effective_config exceeds 524288 bytes" });
    expect(reply.capabilities).toBe(0n);
    expect(uidToId(reply.instanceUid)).toBe(uid);
  });

  it("sends an admin's restart alone with the next answer, once, to a collector that accepts it; refuses it for others", async () => {
    const { uid, credential } = await enrolled("opamp-restart");
    const restart = () => adminRequest("POST", `/api/fleet/agents/${uid}/restart`);
    const refused = await restart();
    expect(refused.status).toBe(409);
    expect(await refused.json()).toMatchObject({ message: `collector ${uid} does not accept restart commands (no AcceptsRestartCommand capability)` });
    const withRestart = CAPABILITIES | BigInt(AgentCapabilities.AgentCapabilities_AcceptsRestartCommand);
    const poll = async (seq: bigint) => answer(await post(encode({ instanceUid: idToUid(uid), sequenceNum: seq, capabilities: withRestart }), credential));
    expect((await poll(1n)).command).toBeUndefined();
    const requested = await restart();
    expect(requested.status).toBe(200);
    expect(await requested.json()).toMatchObject({ item: { id: uid, type: "RESTART" } });
    const commanded = await poll(2n);
    expect(commanded.command?.type).toBe(CommandType.CommandType_Restart);
    expect(commanded.remoteConfig).toBeUndefined();
    expect(commanded.flags).toBe(0n);
    const after = await poll(3n);
    expect(after.command).toBeUndefined();
    // The config it was still owed follows.
    expect(after.remoteConfig).toBeDefined();
  });

  it("refuses a collector any Fleet action but unenroll, which counts as done in action status", async () => {
    const { uid } = await enrolled("opamp-actions");
    const diagnostics = await adminRequest("POST", `/api/fleet/agents/${uid}/request_diagnostics`, {});
    expect(diagnostics.status).toBe(409);
    expect(await diagnostics.json()).toMatchObject({ message: `agent ${uid} is an OpenTelemetry collector (OPAMP): it takes no REQUEST_DIAGNOSTICS action` });
    const unenroll = await json<{ item: { id: string } }>(await adminRequest("POST", `/api/fleet/agents/${uid}/unenroll`, {}));
    await eventually(async () => {
      const status = await json<{ items: Array<{ actionId: string; status: string; nbAgentsAck: number; nbAgentsFailed: number }> }>(
        await adminRequest("GET", "/api/fleet/agents/action_status?perPage=100"),
      );
      expect(status.items.find((item) => item.actionId === unenroll.item.id)).toMatchObject({ status: "COMPLETE", nbAgentsAck: 1, nbAgentsFailed: 0 });
    });
  });

  it("needs Content-Type application/x-protobuf", async () => {
    const { token } = await setup("opamp-type");
    const res = await post(encode({ instanceUid: idToUid(newUuidV7()) }), token, { "Content-Type": "application/json" });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ statusCode: 400, error: "BadRequest", message: "Bad request: Content-Type must be application/x-protobuf" });
  });

  it("accepts gzip bodies, gzips answers when asked, and refuses messages over 4 MiB after decompression with 413", async () => {
    const { token } = await setup("opamp-gzip", 4096);
    const uid = newUuidV7();
    const res = await post(await gzip(encode({ instanceUid: idToUid(uid), sequenceNum: 0n })), token, { "Content-Encoding": "gzip", "Accept-Encoding": "gzip" });
    expect(res.headers.get("Content-Encoding")).toBe("gzip");
    // The test's fetch undoes Content-Encoding itself, as Go's transport does.
    const inflated = new Uint8Array(await res.arrayBuffer());
    const decoded = fromBinary(ServerToAgentSchema, inflated);
    expect(uidToId(decoded.instanceUid)).toBe(uid);
    expect(decoded.remoteConfig?.config?.configMap["collector.yaml"]?.body.length).toBeGreaterThan(4096);

    const big = encode({ instanceUid: idToUid(newUuidV7()), customMessage: { capability: "x", type: "y", data: new Uint8Array((4 << 20) + 1) } });
    const tooBig = await post(big, token);
    expect(tooBig.status).toBe(413);
    const bomb = await post(await gzip(big), token, { "Content-Encoding": "gzip" });
    expect(bomb.status).toBe(413);
    expect(await bomb.json()).toMatchObject({ statusCode: 413, error: "ErrPayloadSizeTooLarge" });
  });
});

describe("OpAMP over WebSocket: the codec", () => {
  async function open(credential: string) {
    const res = await SELF.fetch(`${BASE}/v1/opamp`, { headers: { Authorization: credential, Upgrade: "websocket" } });
    expect(res.status).toBe(101);
    const ws = res.webSocket!;
    ws.accept();
    const inbox: Array<ArrayBuffer | Blob | string> = [];
    const waiting: Array<() => void> = [];
    let closed: { code: number; reason: string } | null = null;
    ws.addEventListener("message", (event) => {
      inbox.push(event.data as ArrayBuffer | Blob | string);
      waiting.splice(0).forEach((w) => w());
    });
    ws.addEventListener("close", (event) => {
      closed = { code: event.code, reason: event.reason };
      waiting.splice(0).forEach((w) => w());
    });
    const until = async <T>(get: () => T | null | undefined): Promise<T> => {
      for (let i = 0; i < 100; i++) {
        const value = get();
        if (value !== null && value !== undefined) return value;
        await new Promise<void>((resolve) => {
          waiting.push(resolve);
          setTimeout(resolve, 100);
        });
      }
      throw new Error("nothing arrived");
    };
    return {
      ws,
      send: (payload: Uint8Array | string) => ws.send(payload),
      next: async () => {
        const data = await until(() => inbox.shift());
        // workerd's client side hands binary messages over as Blobs.
        if (typeof data === "string") throw new Error(`a text message: ${data}`);
        const bytes = new Uint8Array(data instanceof Blob ? await data.arrayBuffer() : data);
        expect(bytes[0]).toBe(0);
        return fromBinary(ServerToAgentSchema, bytes.subarray(1));
      },
      closed: () => until(() => closed),
    };
  }
  const framed = (bytes: Uint8Array) => new Uint8Array([0, ...bytes]);

  it("answers each framed message once, pushes a new revision, refuses a non-zero header with BAD_REQUEST", async () => {
    const { uid, credential } = await enrolled("opamp-ws");
    const socket = await open(credential);
    socket.send(framed(encode({ instanceUid: idToUid(uid), sequenceNum: 1n })));
    const reply = await socket.next();
    expect(uidToId(reply.instanceUid)).toBe(uid);
    // Not yet applied: the config of revision 1 is offered on the socket too (the agent reported no hash).
    expect(new TextDecoder().decode(reply.remoteConfig!.configHash)).toMatch(/^policy:opamp-ws:1:/);
    await putPolicy("opamp-ws", { ...collectorSections(), exporters: { debug: { verbosity: "detailed" } } });
    const pushed = await socket.next();
    expect(new TextDecoder().decode(pushed.remoteConfig!.configHash)).toMatch(/^policy:opamp-ws:2:/);
    socket.send(new Uint8Array([1, ...encode({ instanceUid: idToUid(uid) })]));
    expect((await socket.next()).errorResponse?.errorMessage).toBe("the WebSocket message header must be 0");
    socket.send("text");
    expect(await socket.closed()).toMatchObject({ code: 1003 });
  });

  it("answers overload on a socket with UNAVAILABLE and retry_info; a newer socket of the collector replaces it (4000)", async () => {
    const { uid, credential } = await enrolled("opamp-ws-busy");
    const socket = await open(credential);
    let unavailable: ServerToAgent | null = null;
    for (let seq = 1n; seq <= 40n && !unavailable; seq++) {
      socket.send(framed(encode({ instanceUid: idToUid(uid), sequenceNum: seq })));
      const reply = await socket.next();
      if (reply.errorResponse) unavailable = reply;
    }
    expect(unavailable!.errorResponse!.type).toBe(ServerErrorResponseType.ServerErrorResponseType_Unavailable);
    expect(unavailable!.errorResponse!.Details.case).toBe("retryInfo");
    expect(unavailable!.errorResponse!.Details.value!.retryAfterNanoseconds).toBeGreaterThan(0n);
    await open(credential);
    expect(await socket.closed()).toMatchObject({ code: 4000 });
  });

  it("pushes a requested restart on the collector's socket", async () => {
    const { uid, credential } = await enrolled("opamp-ws-restart");
    const socket = await open(credential);
    const capabilities = CAPABILITIES | BigInt(AgentCapabilities.AgentCapabilities_AcceptsRestartCommand);
    socket.send(framed(encode({ instanceUid: idToUid(uid), sequenceNum: 1n, capabilities })));
    await socket.next();
    expect((await adminRequest("POST", `/api/fleet/agents/${uid}/restart`)).status).toBe(200);
    const pushed = await socket.next();
    expect(pushed.command?.type).toBe(CommandType.CommandType_Restart);
    expect(uidToId(pushed.instanceUid)).toBe(uid);
  });

  it("closes with 1009 on a message over the limit", async () => {
    const { credential } = await enrolled("opamp-ws-big");
    const socket = await open(credential);
    socket.send(new Uint8Array((4 << 20) + 2));
    expect(await socket.closed()).toMatchObject({ code: 1009 });
  });

  it("answers an enrollment-token socket like a poll, with the credential", async () => {
    const { token } = await setup("opamp-ws-token");
    const socket = await open(token);
    const uid = newUuidV7();
    socket.send(framed(encode({ instanceUid: idToUid(uid), sequenceNum: 0n })));
    const reply = await socket.next();
    expect(uidToId(reply.instanceUid)).toBe(uid);
    expect(reply.connectionSettings?.opamp?.headers?.headers[0]?.value).toMatch(/^ApiKey /);
    expect(reply.remoteConfig).toBeDefined();
  });
});

describe("OpAMP: pure rules", () => {
  it("redacts secret-looking values in YAML and JSON effective configs, keeping keys and block openers", async () => {
    const { redactConfig } = await import("../src/opamp/redact");
    expect(redactConfig("exporters:\n  otlp:\n    headers:\n      api_key: abc\n      Authorization: Bearer x\n    auth:\n      password: 'p'\n    endpoint: https://x")).toBe(
      'exporters:\n  otlp:\n    headers:\n      api_key: "[REDACTED]"\n      Authorization: "[REDACTED]"\n    auth:\n      password: "[REDACTED]"\n    endpoint: https://x',
    );
    expect(redactConfig('{\n  "token": "t",\n  "client_secret": "s"\n}')).toBe('{\n  "token": "[REDACTED]",\n  "client_secret": "[REDACTED]"\n}');
  });

  it("renders a revision's collector sections as one sorted JSON file whose hash names the revision", async () => {
    const { collectorConfig, hashText, revisionOfHash } = await import("../src/opamp/collector-config");
    const revision = (policy: Record<string, unknown>, n: number) =>
      ({ policy_id: "p", revision: n, name: "p", namespace: "default", created_at: "2026-01-01T00:00:00Z", policy: { outputs: {}, ...policy } }) as never;
    const a = await collectorConfig(revision({ service: { b: 1, a: 2 }, receivers: { r: {} } }, 3));
    const b = await collectorConfig(revision({ receivers: { r: {} }, service: { a: 2, b: 1 } }, 3));
    expect(a.hash).toEqual(b.hash);
    expect(new TextDecoder().decode(a.files["collector.yaml"]!.body)).toBe('{\n  "receivers": {\n    "r": {}\n  },\n  "service": {\n    "a": 2,\n    "b": 1\n  }\n}\n');
    expect(revisionOfHash(hashText(a.hash))).toEqual({ policyId: "p", revision: 3 });
    expect(revisionOfHash("something else")).toBeNull();
    expect((await collectorConfig(revision({}, 4))).files).toEqual({});
  });
});

describe("OpAMP: the Elasticsearch mirror", () => {
  it("writes a collector as fleet-server does: type OPAMP, capability names, health, redacted effective config, attributes", async () => {
    const { uid, credential, first } = await enrolled("opamp-mirror");
    const message = encode({
      instanceUid: idToUid(uid),
      sequenceNum: 1n,
      health: { healthy: true, status: "StatusOK", componentHealthMap: {} },
      agentDescription: {
        identifyingAttributes: [{ key: "service.name", value: { value: { case: "stringValue", value: "otelcol" } } }],
        nonIdentifyingAttributes: [{ key: "host.name", value: { value: { case: "stringValue", value: "h1" } } }],
      },
      effectiveConfig: { configMap: { configMap: { "c.yaml": { body: new TextEncoder().encode("token: abc\n"), contentType: "text/yaml" } } } },
      remoteConfigStatus: { lastRemoteConfigHash: first.remoteConfig!.configHash, status: RemoteConfigStatuses.RemoteConfigStatuses_APPLIED },
    });
    await answer(await post(message, credential));
    const { agentDocument } = await import("../src/es/documents");
    const detail = await json<{ item: { opamp: unknown } }>(await adminRequest("GET", `/api/fleet/agents/${uid}`));
    expect(detail.item.opamp).toMatchObject({ effective_config: { "c.yaml": { body: 'token: "[REDACTED]"\n' } } });
    const doc = await agentObject(env, uid).record();
    const body = agentDocument(doc!);
    expect(body).toMatchObject({
      type: "OPAMP",
      status: "online",
      policy_revision_idx: 1,
      capabilities: ["ReportsStatus", "AcceptsRemoteConfig", "AcceptsOpAMPConnectionSettings", "ReportsRemoteConfig"],
      health: { healthy: true, status: "StatusOK", last_error: "" },
      effective_config: { "c.yaml": { content_type: "text/yaml", body: 'token: "[REDACTED]"\n' } },
      identifying_attributes: { "service.name": "otelcol" },
      non_identifying_attributes: { "host.name": "h1" },
    });
    expect(body).not.toHaveProperty("opamp");
  });
});
