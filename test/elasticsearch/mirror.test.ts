import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminCall, startDevServer, type DevServer } from "../support/dev-server";
import { fleetSchemaCheck } from "../support/fleet-schema";
import { es, eventually, searchServer, searchServerScript } from "../support/search-server";

const search = searchServer();
const check = fleetSchemaCheck();
const FLEET_INDICES = [".fleet-agents", ".fleet-actions", ".fleet-actions-results", ".fleet-policies", ".fleet-enrollment-api-keys"];

let server: DevServer;

const agentHeaders = {
  "User-Agent": "Elastic Agent v9.6.0",
  "Content-Type": "application/json",
  "Elastic-Api-Version": "2023-06-01",
};

const admin = <T = { item: Record<string, string> }>(method: string, path: string, body?: unknown) => adminCall<T>(server, method, path, body);

async function agentCall(path: string, key: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${server.url}${path}?`, { method: "POST", headers: { ...agentHeaders, Authorization: `ApiKey ${key}` }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function policy(name: string) {
  return {
    name,
    policy: {
      outputs: { default: { type: "elasticsearch", hosts: [search!.url] } },
      output_permissions: {
        default: {
          _elastic_agent_checks: { cluster: ["monitor"] },
          "logs-system.syslog-default": { indices: [{ names: ["logs-system.syslog-default"], privileges: ["auto_configure", "create_doc"] }] },
        },
      },
      inputs: [{ id: "logfile-system", type: "logfile", use_output: "default" }],
    },
  };
}

async function enroll(token: string): Promise<{ id: string; key: string }> {
  const res = await agentCall("/api/fleet/agents/enroll", token, { type: "PERMANENT", id: "", replace_token: "", metadata: { local: {}, user_provided: {}, tags: ["mirror"] } });
  expect(res.status).toBe(200);
  const item = res.body.item as { id: string; access_api_key: string };
  return { id: item.id, key: item.access_api_key };
}

const source = async (index: string, id: string) => {
  const res = await es<{ found: boolean; _source: Record<string, unknown> }>(search!, "GET", `/${index}/_doc/${encodeURIComponent(id)}`);
  return res.status === 200 && res.body.found ? res.body._source : undefined;
};

function expectValid(definition: string, document: unknown) {
  if (check) expect(check(definition, document)).toEqual([]);
}

describe.skipIf(!search)("Elasticsearch mirror, ingest and output keys (real Elasticsearch)", () => {
  beforeAll(async () => {
    await es(search!, "DELETE", `/${FLEET_INDICES.join(",")}?ignore_unavailable=true`);
    server = await startDevServer({
      ...search!.vars,
      ES_MIRROR_FLUSH: "100ms",
      ES_INGEST_INTERVAL: "500ms",
      CHECKIN_LONG_POLL: "1s",
      CHECKIN_JITTER: "0s",
    });
  });
  afterAll(async () => server?.stop());

  it("mirrors agents, policies, keys, actions and results in fleet-server's document shapes, without secrets", async () => {
    const policyId = randomUUID();
    await admin("PUT", `/api/fleet/agent_policies/${policyId}`, policy("mirrored"));
    const key = (await admin("POST", "/api/fleet/enrollment_api_keys", { policy_id: policyId, name: "mirror" })).item;
    const agent = await enroll(key.api_key!);
    const secret = Buffer.from(agent.key, "base64").toString().split(":")[1]!;

    const first = await agentCall(`/api/fleet/agents/${agent.id}/checkin`, agent.key, { status: "starting", message: "", components: null, upgrade: {} });
    expect(first.status).toBe(200);
    const change = (first.body.actions as Array<{ id: string; data: { policy: { outputs: { default: { api_key: string } } } } }>)[0]!;
    expect(change.id).toBe(`policy:${policyId}:1`);
    const outputKey = change.data.policy.outputs.default.api_key;
    expect(outputKey).toMatch(/^[^:]+:.+$/);
    await agentCall(`/api/fleet/agents/${agent.id}/acks`, agent.key, { events: [{ action_id: change.id, agent_id: agent.id, type: "ACTION_RESULT", subtype: "ACKNOWLEDGED", timestamp: new Date().toISOString(), message: "ok" }] });

    const doc = await eventually(async () => {
      const d = await source(".fleet-agents", agent.id);
      return d && d.policy_revision_idx === 1 && (d.outputs as Record<string, unknown> | undefined)?.default ? d : undefined;
    }, "the agent document at revision 1");
    expect(doc).toMatchObject({
      active: true,
      policy_id: policyId,
      type: "PERMANENT",
      tags: ["mirror"],
      agent: { id: agent.id, version: "9.6.0" },
      access_api_key_id: Buffer.from(agent.key, "base64").toString().split(":")[0],
      last_checkin_status: "starting",
      outputs: { default: { api_key_id: outputKey.split(":")[0], type: "elasticsearch" } },
    });
    expectValid("agent", { _id: agent.id, ...doc });
    const raw = JSON.stringify(doc);
    expect(raw).not.toContain(secret);
    expect(raw).not.toContain(outputKey.split(":")[1]);

    const policyDoc = await eventually(() => source(".fleet-policies", `${policyId}:1`), "the policy revision document");
    expect(policyDoc).toMatchObject({ policy_id: policyId, revision_idx: 1, default_fleet_server: false, data: { id: policyId, revision: 1 } });
    expectValid("policy", policyDoc);

    const keyDoc = await eventually(() => source(".fleet-enrollment-api-keys", key.id!), "the enrollment key document");
    expect(keyDoc).toMatchObject({ api_key_id: key.api_key_id, policy_id: policyId, active: true, api_key: "" });
    expectValid("enrollment_api_key", keyDoc);

    const action = (await admin("POST", `/api/fleet/agents/${agent.id}/actions`, { action: { type: "SETTINGS", data: { log_level: "debug" } } })).item;
    const delivered = await agentCall(`/api/fleet/agents/${agent.id}/checkin`, agent.key, { status: "online", message: "Running", components: [], agent_policy_id: policyId, policy_revision_idx: 1, upgrade: {} });
    expect(delivered.body.ack_token).toBe(action.id);
    await agentCall(`/api/fleet/agents/${agent.id}/acks`, agent.key, { events: [{ action_id: action.id, agent_id: agent.id, type: "ACTION_RESULT", subtype: "ACKNOWLEDGED", timestamp: "2026-11-28T12:00:00.123456789Z", message: "ok" }] });
    const result = await eventually(() => source(".fleet-actions-results", `${action.id}:${agent.id}`), "the action result");
    expect(result).toEqual({ action_id: action.id, agent_id: agent.id, "@timestamp": "2026-11-28T12:00:00.123456789Z", namespaces: [] });
    expectValid("action-result", result);
    const actionDoc = await eventually(() => source(".fleet-actions", `${action.id}:${agent.id}`), "the action document");
    expect(actionDoc).toMatchObject({ action_id: action.id, agents: [agent.id], type: "SETTINGS" });
    expectValid("action", actionDoc);

    // The admin view of /api/status reports a healthy mirror.
    const status = await admin<{ mirror: Record<string, unknown> }>("GET", "/api/status");
    expect(status.mirror).toMatchObject({ mode: "elasticsearch", failing_objects: 0, pending: 0 });
  });

  it("gives each agent an output API key that authenticates, carries the policy's privileges, follows permission changes, and is invalidated on unenroll", async () => {
    const policyId = randomUUID();
    await admin("PUT", `/api/fleet/agent_policies/${policyId}`, policy("keys"));
    const token = (await admin("POST", "/api/fleet/enrollment_api_keys", { policy_id: policyId })).item.api_key!;
    const agent = await enroll(token);
    const checkin = await agentCall(`/api/fleet/agents/${agent.id}/checkin`, agent.key, { status: "starting", message: "", components: null, upgrade: {} });
    const outputKey = (checkin.body.actions as Array<{ data: { policy: { outputs: { default: { api_key: string } } } } }>)[0]!.data.policy.outputs.default.api_key;
    const asAgent = `ApiKey ${Buffer.from(outputKey).toString("base64")}`;

    const who = await es<{ api_key: { id: string; name: string } }>(search!, "GET", "/_security/_authenticate", undefined, asAgent);
    expect(who.status).toBe(200);
    expect(who.body.api_key).toMatchObject({ id: outputKey.split(":")[0], name: `${agent.id}:default` });
    const privileges = await es<{ has_all_requested: boolean }>(search!, "POST", "/_security/user/_has_privileges", {
      cluster: ["monitor"],
      index: [{ names: ["logs-system.syslog-default"], privileges: ["create_doc"] }],
    }, asAgent);
    expect(privileges.body.has_all_requested).toBe(true);
    const beyond = await es<{ has_all_requested: boolean }>(search!, "POST", "/_security/user/_has_privileges", { cluster: ["manage_security"] }, asAgent);
    expect(beyond.body.has_all_requested).toBe(false);

    // The same key is reused for the next revision.
    await admin("PUT", `/api/fleet/agent_policies/${policyId}`, { ...policy("keys"), description: "v2" });
    const second = await agentCall(`/api/fleet/agents/${agent.id}/checkin`, agent.key, { status: "online", message: "", components: [], agent_policy_id: policyId, policy_revision_idx: 1, upgrade: {} });
    expect((second.body.actions as Array<{ data: { policy: { outputs: { default: { api_key: string } } } } }>)[0]!.data.policy.outputs.default.api_key).toBe(outputKey);

    // New permissions in the policy: the same key gets the new roles in place.
    const widened = policy("keys");
    (widened.policy.output_permissions.default as Record<string, unknown>)["logs-other-default"] = { indices: [{ names: ["logs-other-default"], privileges: ["create_doc"] }] };
    await admin("PUT", `/api/fleet/agent_policies/${policyId}`, widened);
    // A key minted a moment ago may not be searchable for the update yet: the key keeps flowing with
    // its old roles and the next delivery retries, as an agent that has not acked checks in again.
    await eventually(async () => {
      const third = await agentCall(`/api/fleet/agents/${agent.id}/checkin`, agent.key, { status: "online", message: "", components: [], agent_policy_id: policyId, policy_revision_idx: 2, upgrade: {} });
      expect((third.body.actions as Array<{ data: { policy: { outputs: { default: { api_key: string } } } } }>)[0]!.data.policy.outputs.default.api_key).toBe(outputKey);
      const other = await es<{ has_all_requested: boolean }>(search!, "POST", "/_security/user/_has_privileges", {
        index: [{ names: ["logs-other-default"], privileges: ["create_doc"] }],
      }, asAgent);
      return other.body.has_all_requested ? true : undefined;
    }, "the key's roles to follow the new permissions");

    // Unenroll: the agent acks UNENROLL and its output key stops authenticating.
    await admin("POST", `/api/fleet/agents/${agent.id}/unenroll`);
    const unenroll = await agentCall(`/api/fleet/agents/${agent.id}/checkin`, agent.key, { status: "online", message: "", components: [], agent_policy_id: policyId, policy_revision_idx: 3, upgrade: {} });
    const unenrollId = (unenroll.body.actions as Array<{ id: string; type: string }>).find((a) => a.type === "UNENROLL")!.id;
    await agentCall(`/api/fleet/agents/${agent.id}/acks`, agent.key, { events: [{ action_id: unenrollId, agent_id: agent.id, type: "ACTION_RESULT", subtype: "ACKNOWLEDGED", timestamp: new Date().toISOString(), message: "ok" }] });
    await eventually(async () => {
      const res = await es(search!, "GET", "/_security/_authenticate", undefined, asAgent);
      return res.status === 401 ? true : undefined;
    }, "the output key to be invalidated");
    const doc = await eventually(async () => {
      const d = await source(".fleet-agents", agent.id);
      return d?.active === false ? d : undefined;
    }, "the unenrolled agent document");
    expect(doc.unenrolled_at).toEqual(expect.any(String));
  });

  it("picks up a policy, an enrollment key and an action that Kibana wrote into the indices", async () => {
    const policyId = randomUUID();
    const now = new Date().toISOString();
    await es(search!, "PUT", `/.fleet-policies/_doc/kibana-${policyId}-5?refresh=true`, {
      "@timestamp": now,
      policy_id: policyId,
      revision_idx: 5,
      coordinator_idx: 1,
      default_fleet_server: false,
      data: { id: policyId, revision: 5, outputs: { default: { type: "logstash", hosts: ["ls:5044"] } }, inputs: [], agent: { logging: { level: "info" } } },
    });
    const apiKeyId = `kb${randomUUID().replaceAll("-", "").slice(0, 18)}`;
    const token = Buffer.from(`${apiKeyId}:kibana-made-secret`).toString("base64");
    await es(search!, "PUT", `/.fleet-enrollment-api-keys/_doc/${randomUUID()}?refresh=true`, {
      api_key_id: apiKeyId,
      api_key: token,
      active: true,
      policy_id: policyId,
      name: "Default (kibana)",
      created_at: now,
    });

    const agent = await eventually(async () => {
      const res = await fetch(`${server.url}/api/fleet/agents/enroll?`, {
        method: "POST",
        headers: { ...agentHeaders, Authorization: `ApiKey ${token}` },
        body: JSON.stringify({ type: "PERMANENT", id: "", replace_token: "", metadata: { local: {}, user_provided: {}, tags: null } }),
      });
      if (res.status !== 200) return undefined;
      const item = ((await res.json()) as { item: { id: string; access_api_key: string } }).item;
      return { id: item.id, key: item.access_api_key };
    }, "enrollment with the Kibana-made key");

    const first = await agentCall(`/api/fleet/agents/${agent.id}/checkin`, agent.key, { status: "starting", message: "", components: null, upgrade: {} });
    const change = (first.body.actions as Array<{ id: string; data: { policy: Record<string, unknown> } }>)[0]!;
    expect(change.id).toBe(`policy:${policyId}:5`);
    expect(change.data.policy).toEqual({ id: policyId, revision: 5, outputs: { default: { type: "logstash", hosts: ["ls:5044"] } }, inputs: [], agent: { logging: { level: "info" } } });

    // Park a check-in, then write the action as Kibana does: it arrives on the parked request.
    const parked = agentCall(`/api/fleet/agents/${agent.id}/checkin`, agent.key, { status: "online", message: "", components: [], agent_policy_id: policyId, policy_revision_idx: 5, upgrade: {}, poll_timeout: "10m" });
    await new Promise((r) => setTimeout(r, 300));
    const actionDocId = randomUUID();
    const actionId = randomUUID();
    await es(search!, "PUT", `/.fleet-actions/_doc/${actionDocId}?refresh=true`, {
      action_id: actionId,
      agents: [agent.id],
      type: "UPGRADE",
      data: { version: "9.6.0", source_uri: "https://artifacts.example/", extra: "dropped" },
      "@timestamp": now,
      expiration: new Date(Date.now() + 3_600_000).toISOString(),
    });
    const received = await parked;
    expect(received.body.ack_token).toBe(actionDocId);
    expect(received.body.actions).toEqual([
      expect.objectContaining({ id: actionId, type: "UPGRADE", data: { version: "9.6.0", source_uri: "https://artifacts.example/" } }),
    ]);
  });

  it("mirrors a heartbeat's last_checkin with the agent store's check-in flush, a status change at once", async () => {
    const policyId = randomUUID();
    await admin("PUT", `/api/fleet/agent_policies/${policyId}`, policy("heartbeat"));
    const key = (await admin("POST", "/api/fleet/enrollment_api_keys", { policy_id: policyId, name: "heartbeat" })).item;
    const agent = await enroll(key.api_key!);
    const body = { status: "online", message: "Running", components: [], upgrade: {} };
    const liveCheckin = async () => (await admin<{ item: { last_checkin: string } }>("GET", `/api/fleet/agents/${agent.id}`)).item.last_checkin;
    const mirrored = async () => (await source(".fleet-agents", agent.id))?.last_checkin as string | undefined;

    // The first check-in is a change, and so is the second: the first minted the output key it records.
    for (let i = 0; i < 2; i++) expect((await agentCall(`/api/fleet/agents/${agent.id}/checkin`, agent.key, body)).status).toBe(200);
    const first = await liveCheckin();
    await eventually(async () => ((await mirrored()) === first ? true : undefined), "the first check-in's last_checkin");

    // Same status, message and components: only the times move, and they are not mirrored yet.
    expect((await agentCall(`/api/fleet/agents/${agent.id}/checkin`, agent.key, body)).status).toBe(200);
    const heartbeat = await liveCheckin();
    expect(heartbeat > first).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await mirrored()).toBe(first);
    // The store's flush (10 s after the first held check-in) writes and mirrors them.
    await eventually(async () => ((await mirrored()) === heartbeat ? true : undefined), "the heartbeat's last_checkin", 30_000);

    // A changed status is written and mirrored without waiting for a flush.
    expect((await agentCall(`/api/fleet/agents/${agent.id}/checkin`, agent.key, { ...body, status: "degraded", message: "1 unit failing" })).status).toBe(200);
    const degraded = await eventually(async () => {
      const d = await source(".fleet-agents", agent.id);
      return d?.last_checkin_status === "degraded" ? d : undefined;
    }, "the degraded status", 5_000);
    expect(degraded.last_checkin).toBe(await liveCheckin());
  });

  it("keeps the hot path working through an Elasticsearch outage and delivers every change exactly once afterwards", async () => {
    const policyId = randomUUID();
    await admin("PUT", `/api/fleet/agent_policies/${policyId}`, { name: "outage", policy: { outputs: { default: { type: "logstash", hosts: ["ls:5044"] } } } });
    const token = (await admin("POST", "/api/fleet/enrollment_api_keys", { policy_id: policyId })).item.api_key!;
    const agents = await Promise.all(Array.from({ length: 4 }, () => enroll(token)));
    for (const agent of agents) {
      const res = await agentCall(`/api/fleet/agents/${agent.id}/checkin`, agent.key, { status: "starting", message: "", components: null, upgrade: {} });
      expect(res.status).toBe(200);
    }
    const actions = await Promise.all(agents.map((agent) => admin("POST", `/api/fleet/agents/${agent.id}/actions`, { action: { type: "SETTINGS", data: { log_level: "info" } } })));

    searchServerScript("stop");
    try {
      for (const [i, agent] of agents.entries()) {
        for (const status of ["online", "DEGRADED", "online"]) {
          const res = await agentCall(`/api/fleet/agents/${agent.id}/checkin`, agent.key, { status, message: `during outage ${status}`, components: [], upgrade: {}, agent_policy_id: policyId, policy_revision_idx: 1 });
          expect(res.status).toBe(200);
        }
        const ack = await agentCall(`/api/fleet/agents/${agent.id}/acks`, agent.key, {
          events: [{ action_id: actions[i]!.item.id, agent_id: agent.id, type: "ACTION_RESULT", subtype: "ACKNOWLEDGED", timestamp: new Date().toISOString(), message: "ok" }],
        });
        expect(ack.status).toBe(200);
      }
      const status = await eventually(async () => {
        const s = await admin<{ mirror: { failing_objects: number; pending: number } }>("GET", "/api/status");
        return s.mirror.failing_objects > 0 && s.mirror.pending > 0 ? s.mirror : undefined;
      }, "the mirror backlog to show in /api/status", 20_000);
      expect(status.pending).toBeGreaterThan(0);
    } finally {
      searchServerScript("start");
    }

    for (const [i, agent] of agents.entries()) {
      const doc = await eventually(async () => {
        const d = await source(".fleet-agents", agent.id);
        return d?.last_checkin_message === "during outage online" && d.last_checkin_status === "online" ? d : undefined;
      }, `agent ${i}'s latest status after the outage`, 120_000);
      expect(doc.active).toBe(true);
      await eventually(() => source(".fleet-actions-results", `${actions[i]!.item.id}:${agent.id}`), `agent ${i}'s result`, 60_000);
    }
    await es(search!, "POST", "/.fleet-actions-results/_refresh");
    const count = await es<{ count: number }>(search!, "POST", "/.fleet-actions-results/_count", {
      query: { terms: { action_id: actions.map((a) => a.item.id) } },
    });
    expect(count.body.count).toBe(agents.length);
    await eventually(async () => {
      const s = await admin<{ mirror: { failing_objects: number } }>("GET", "/api/status");
      return s.mirror.failing_objects === 0 ? true : undefined;
    }, "the mirror to report healthy again", 60_000);
  });
});
