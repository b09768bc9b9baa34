import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOpAMPClient, AgentCapabilities, RemoteConfigStatuses, DIAG_CH_SEND_SUCCESS } from "@elastic/opamp-client-node";
import { adminRequest, startDevServer, type DevServer } from "../support/dev-server";
import { buildDriver, GoCollector } from "../support/opamp-go";

/**
 * OpAMP (docs/opamp.md) with clients nobody here wrote: opamp-go's own client (built from
 * test/opamp-go, over HTTP and WebSocket) and @elastic/opamp-client-node (HTTP), against `npm start`.
 */

const driver = buildDriver();
const skip = "reason" in driver;
/** A skipped describe's name carries why (the default reporter shows it). */
const skipNote = "reason" in driver ? ` (skipped: ${driver.reason.slice(0, 300)})` : "";

const collectorPolicy = (exporter: string, extra: Record<string, unknown> = {}) => ({
  name: "collectors",
  namespace: "default",
  policy: {
    outputs: { default: { type: "elasticsearch", hosts: ["https://es.example.internal:9200"] } },
    receivers: { otlp: { protocols: { grpc: { endpoint: "0.0.0.0:4317" } } }, ...extra },
    exporters: { [exporter]: { endpoint: "https://otlp.example.internal", headers: { authorization: "Bearer s3cret-token" } } },
    service: { pipelines: { metrics: { receivers: ["otlp", ...Object.keys(extra)], exporters: [exporter] } } },
  },
});

interface AgentItem {
  id: string;
  type: string;
  status: string;
  policy_revision: number;
  last_checkin_status: string | null;
  last_checkin_message: string | null;
  hostname: string | null;
  agent: { version: string | null };
  local_metadata: { host?: { hostname?: string }; os?: { family?: string } } | null;
  components: Array<{ id: string; status: string }> | null;
  opamp: {
    credential_used: boolean;
    remote_config_status?: { hash: string; status: string; error_message?: string };
    effective_config?: Record<string, { body: string }>;
  } | null;
}

async function enrollmentToken(server: DevServer, policyId: string): Promise<string> {
  const created = await adminRequest<{ item: { api_key: string } }>(server, "POST", "/api/fleet/enrollment_api_keys", { policy_id: policyId, name: `opamp-${policyId}` });
  expect(created.status).toBe(200);
  return created.body.item.api_key;
}

async function putPolicy(server: DevServer, id: string, body: unknown): Promise<number> {
  const put = await adminRequest<{ item: { revision: number } }>(server, "PUT", `/api/fleet/agent_policies/${id}`, body);
  expect(put.status).toBe(200);
  return put.body.item.revision;
}

/** Retries `check` until it passes (the admin views follow agents within about a second). */
async function eventually<T>(check: () => Promise<T>, ms = 15_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() - started > ms) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function agent(server: DevServer, id: string): Promise<AgentItem> {
  const one = await adminRequest<{ item: AgentItem }>(server, "GET", `/api/fleet/agents/${id}`);
  expect(one.status).toBe(200);
  return one.body.item;
}

const states: string[] = [];
afterAll(() => {
  for (const state of states) rmSync(state, { recursive: true, force: true });
});

describe.skipIf(skip)(`opamp-go client${skipNote}`, () => {
  const binary = skip ? "" : driver.binary;

  it("over HTTP: enrolls with the token, takes its own credential, applies config, gets the next revision, fails a bad one (the staged rollout holds), goes offline, reconnects, and is asked for full state after a server restart", async () => {
    const state = mkdtempSync(join(tmpdir(), "opamp-e2e-"));
    states.push(state);
    // Over HTTP, liveness is missed polls (opamp-go's HTTP client sends no agent_disconnect): 3 s here.
    const vars = { AGENT_OFFLINE_AFTER: "3s" };
    let server = await startDevServer(vars, { state });
    const collectors: GoCollector[] = [];
    try {
      const first = await putPolicy(server, "otel-http", collectorPolicy("otlphttp"));
      const token = await enrollmentToken(server, "otel-http");
      const url = `${server.url}/v1/opamp`;
      const collector = new GoCollector(binary, ["-url", url, "-transport", "http", "-auth", `ApiKey ${token}`, "-poll", "250ms"]);
      collectors.push(collector);
      const uid = (await collector.next("started")).uid as string;

      // Enrolled on its first message, and handed its own credential (not the enrollment token).
      const credential = await collector.next("credential");
      expect(credential.header).toMatch(/^ApiKey [A-Za-z0-9+/=]+$/);
      expect(credential.header).not.toBe(`ApiKey ${token}`);
      const config = await collector.next("remote_config");
      expect(config.hash).toMatch(new RegExp(`^policy:otel-http:${first}:[0-9a-f]{32}$`));
      const files = config.files as Record<string, string>;
      expect(Object.keys(files)).toEqual(["collector.yaml"]);
      expect(JSON.parse(files["collector.yaml"]!)).toEqual({
        exporters: { otlphttp: { endpoint: "https://otlp.example.internal", headers: { authorization: "Bearer s3cret-token" } } },
        receivers: { otlp: { protocols: { grpc: { endpoint: "0.0.0.0:4317" } } } },
        service: { pipelines: { metrics: { exporters: ["otlphttp"], receivers: ["otlp"] } } },
      });
      await collector.next("applied");

      // The APPLIED status is the revision's ack; description, health and effective config are on the record.
      const applied = await eventually(async () => {
        const item = await agent(server, uid);
        expect(item.policy_revision).toBe(first);
        expect(item.opamp?.credential_used).toBe(true);
        expect(item.opamp?.effective_config?.["collector.yaml"]?.body).toContain('"authorization": "[REDACTED]"');
        return item;
      });
      expect(applied).toMatchObject({ type: "OPAMP", status: "online", hostname: "collector-host", agent: { version: "0.9.1" }, last_checkin_status: "online" });
      expect(applied.local_metadata?.os?.family).toBe("linux");
      expect(applied.components).toEqual([expect.objectContaining({ id: "pipeline:metrics", status: "HEALTHY" })]);
      expect(JSON.stringify(applied.opamp)).not.toContain("s3cret");
      const listed = await adminRequest<{ items: Array<{ id: string; type: string }> }>(server, "GET", "/api/fleet/agents?policy_id=otel-http");
      expect(listed.body.items.map((i) => [i.id, i.type])).toEqual([[uid, "OPAMP"]]);

      // A new revision reaches the collector on its next poll.
      const second = await putPolicy(server, "otel-http", collectorPolicy("otlp"));
      const next = await collector.next("remote_config", config.index + 1, (e) => String(e.hash).startsWith(`policy:otel-http:${second}:`));
      await collector.next("applied", next.index);
      await eventually(async () => expect((await agent(server, uid)).policy_revision).toBe(second));

      // A staged rollout of a config the collector rejects: FAILED holds the rollout with its message.
      const rollout = await adminRequest<{ item: { target: number } }>(server, "POST", "/api/fleet/agent_policies/otel-http/rollouts", {
        ...collectorPolicy("otlp", { nonexistent: {} }),
        stages: [100],
        min_acked_percent: 100,
        max_failed_percent: 0,
        window_seconds: 600,
      });
      expect(rollout.status).toBe(200);
      const bad = await collector.next("remote_config", next.index + 1, (e) => String(e.hash).startsWith(`policy:otel-http:${rollout.body.item.target}:`));
      await collector.next("failed", bad.index);
      await eventually(async () => {
        const item = await agent(server, uid);
        // Behind the latest revision, so `updating` by the status rule; what it reports is the failure.
        expect(item).toMatchObject({ status: "updating", last_checkin_status: "error", policy_revision: second });
        expect(item.last_checkin_message).toContain('unknown type: "nonexistent"');
        expect(item.opamp?.remote_config_status).toMatchObject({ status: "FAILED", hash: bad.hash });
      });
      await eventually(async () => {
        const current = await adminRequest<{ item: { status: string; reason?: string } }>(server, "GET", "/api/fleet/agent_policies/otel-http/rollouts/current");
        expect(current.body.item.status).toBe("held");
        expect(current.body.item.reason).toContain("report error or degraded");
      }, 30_000);
      // Abort (back to the previous revision): the collector is offered it and applies it.
      expect((await adminRequest(server, "POST", "/api/fleet/agent_policies/otel-http/rollouts/current/abort")).status).toBe(200);
      await collector.next("applied", bad.index + 1);
      await eventually(async () => expect((await agent(server, uid)).status).toBe("online"));

      // Polls stop: offline once they are missed. Reconnecting with its own credential: online again.
      await collector.stop();
      await eventually(async () => expect((await agent(server, uid)).status).toBe("offline"), 10_000);
      // This time with opamp-go's compression: gzip request bodies.
      const again = new GoCollector(binary, ["-url", url, "-transport", "http", "-auth", credential.header as string, "-uid", uid, "-poll", "250ms", "-compress"]);
      collectors.push(again);
      await again.next("connected");
      await eventually(async () => expect((await agent(server, uid)).status).not.toBe("offline"), 5_000);
      expect(again.count("credential")).toBe(0);

      // A server restart forgets sequence numbers: the next poll asks for full state (opamp-go re-reads its effective config).
      await new Promise((r) => setTimeout(r, 1_000));
      const readsBefore = again.count("effective_config_read");
      const index = again.events.length;
      await server.kill();
      server = await startDevServer(vars, { state, port: server.port });
      await again.next("effective_config_read", index, undefined, 30_000);
      expect(again.count("effective_config_read")).toBeGreaterThan(readsBefore);
      // The enrollment token no longer speaks for this collector: another client with its uid and the token is given a new uid.
      const impostor = new GoCollector(binary, ["-url", url, "-transport", "http", "-auth", `ApiKey ${token}`, "-uid", uid, "-poll", "250ms"]);
      collectors.push(impostor);
      const renamed = await impostor.next("new_uid");
      expect(renamed.uid).not.toBe(uid);
    } finally {
      for (const c of collectors) await c.stop();
      await server.stop();
    }
  }, 180_000);
});

/** The socket collector's heartbeat: anything it gets sooner was pushed, not polled. */
const HEARTBEAT_MS = 60_000;

describe.skipIf(skip)(`opamp-go client over WebSocket${skipNote}`, () => {
  const binary = skip ? "" : driver.binary;
  let server: DevServer;
  beforeAll(async () => {
    server = await startDevServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("enrolls on a token socket, reconnects with its own credential, and gets a new revision and an admin's restart pushed with no poll (heartbeat 60 s)", async () => {
    const first = await putPolicy(server, "otel-ws", collectorPolicy("otlphttp"));
    const token = await enrollmentToken(server, "otel-ws");
    const url = `${server.url.replace(/^http/, "ws")}/v1/opamp`;
    const collector = new GoCollector(binary, ["-url", url, "-transport", "ws", "-auth", `ApiKey ${token}`, "-request-uid", "-poll", `${HEARTBEAT_MS / 1000}s`]);
    try {
      const asked = (await collector.next("started")).uid as string;
      const assigned = (await collector.next("new_uid")).uid as string;
      expect(assigned).not.toBe(asked);
      // UUIDv7: version nibble 7, variant 10.
      expect(assigned).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      const credential = await collector.next("credential");
      // The driver reconnects with its credential (a socket authenticates once) and applies the config.
      const applied = await collector.next("applied", 0, (e) => String(e.hash).startsWith(`policy:otel-ws:${first}:`));
      await collector.next("connected", credential.index);
      await eventually(async () => {
        const item = await agent(server, assigned);
        expect(item).toMatchObject({ type: "OPAMP", policy_revision: first, status: "online" });
        expect(item.opamp?.credential_used).toBe(true);
      });
      const published = Date.now();
      const second = await putPolicy(server, "otel-ws", collectorPolicy("otlp"));
      const pushed = await collector.next("remote_config", applied.index + 1, (e) => String(e.hash).startsWith(`policy:otel-ws:${second}:`), HEARTBEAT_MS);
      // Pushed: it arrived before the collector's next heartbeat could have asked for it.
      expect(Date.now() - published).toBeLessThan(HEARTBEAT_MS);
      await collector.next("applied", pushed.index);
      await eventually(async () => expect((await agent(server, assigned)).policy_revision).toBe(second));
      // An admin's restart is pushed as OpAMP's command.
      expect((await adminRequest(server, "POST", `/api/fleet/agents/${assigned}/restart`)).status).toBe(200);
      expect((await collector.next("command", pushed.index, undefined, HEARTBEAT_MS)).type).toBe("CommandType_Restart");
      // opamp-go's socket client says agent_disconnect before it closes: offline at once (the offline window is 10 minutes).
      await collector.stop();
      await eventually(async () => expect((await agent(server, assigned)).status).toBe("offline"), HEARTBEAT_MS);
    } finally {
      await collector.stop();
    }
  }, 3 * HEARTBEAT_MS);
});

describe("@elastic/opamp-client-node", () => {
  let server: DevServer;
  beforeAll(async () => {
    server = await startDevServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("over HTTP with the enrollment token only (it takes no connection settings): enrolls, applies, gets the next revision, fails a bad one", async () => {
    const first = await putPolicy(server, "otel-node", collectorPolicy("otlphttp"));
    const token = await enrollmentToken(server, "otel-node");
    const received: Array<{ hash: string; flags: bigint }> = [];
    const onSend = (message: unknown) => {
      const { s2a } = message as { s2a: { flags: bigint; remoteConfig?: { configHash: Uint8Array } } };
      received.push({ hash: s2a.remoteConfig ? new TextDecoder().decode(s2a.remoteConfig.configHash) : "", flags: s2a.flags });
    };
    subscribe(DIAG_CH_SEND_SUCCESS, onSend);
    const applied: string[] = [];
    const client = createOpAMPClient({
      endpoint: `${server.url}/v1/opamp`,
      headers: { Authorization: `ApiKey ${token}` },
      heartbeatIntervalSeconds: 0.2,
      diagEnabled: true,
      capabilities: BigInt(Number(AgentCapabilities.AgentCapabilities_AcceptsRemoteConfig) | Number(AgentCapabilities.AgentCapabilities_ReportsRemoteConfig)),
      onMessage: ({ remoteConfig }: { remoteConfig?: { configHash: Uint8Array; config?: { configMap: Record<string, { body: Uint8Array }> } } }) => {
        if (!remoteConfig) return;
        const hash = new TextDecoder().decode(remoteConfig.configHash);
        const body = new TextDecoder().decode(remoteConfig.config?.configMap["collector.yaml"]?.body ?? new Uint8Array());
        const failed = body.includes("nonexistent");
        client.setRemoteConfigStatus({
          status: failed ? RemoteConfigStatuses.RemoteConfigStatuses_FAILED : RemoteConfigStatuses.RemoteConfigStatuses_APPLIED,
          lastRemoteConfigHash: remoteConfig.configHash,
          ...(failed ? { errorMessage: "unknown receiver nonexistent" } : {}),
        });
        applied.push(`${failed ? "FAILED" : "APPLIED"} ${hash}`);
      },
    });
    client.setAgentDescription({ identifyingAttributes: { "service.name": "node-app", "service.version": "1.2.3" }, nonIdentifyingAttributes: { "host.name": "node-host" } });
    client.start();
    try {
      await eventually(async () => expect(applied).toEqual([expect.stringMatching(new RegExp(`^APPLIED policy:otel-node:${first}:`))]));
      const listed = await eventually(async () => {
        const list = await adminRequest<{ items: Array<{ id: string; policy_revision: number; hostname: string }> }>(server, "GET", "/api/fleet/agents?policy_id=otel-node");
        expect(list.body.items).toEqual([expect.objectContaining({ policy_revision: first, hostname: "node-host" })]);
        return list.body.items[0]!;
      });
      expect((await agent(server, listed.id)).type).toBe("OPAMP");
      const second = await putPolicy(server, "otel-node", collectorPolicy("otlphttp", { nonexistent: {} }));
      await eventually(async () => expect(applied.at(-1)).toMatch(new RegExp(`^FAILED policy:otel-node:${second}:`)));
      await eventually(async () => {
        const item = await agent(server, listed.id);
        expect(item).toMatchObject({ status: "updating", last_checkin_status: "error", policy_revision: first });
        expect(item.last_checkin_message).toContain("unknown receiver nonexistent");
      });
      // The FAILED config is not offered again on every poll.
      const offers = received.filter((r) => r.hash.startsWith(`policy:otel-node:${second}:`)).length;
      await new Promise((r) => setTimeout(r, 1_000));
      expect(received.filter((r) => r.hash.startsWith(`policy:otel-node:${second}:`)).length).toBe(offers);
    } finally {
      await client.shutdown();
      unsubscribe(DIAG_CH_SEND_SUCCESS, onSend);
    }
  }, 60_000);
});
