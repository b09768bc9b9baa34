import Ajv2020 from "ajv/dist/2020.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDevServer, type DevServer } from "../support/dev-server";

let server: DevServer;
let doc: { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: unknown }> }> }>>; components: { schemas: Record<string, unknown> } };
const ajv = new Ajv2020({ strict: false, allErrors: true });

beforeAll(async () => {
  server = await startDevServer({ CHECKIN_LONG_POLL: "1s", CHECKIN_JITTER: "0s" });
  doc = (await (await fetch(`${server.url}/api/openapi.json`)).json()) as typeof doc;
  ajv.addSchema({ $id: "fleet-openapi", components: doc.components });
});
afterAll(async () => server?.stop());

/** Calls the server and checks the answer against the served document's schema for that operation. */
async function call<T = unknown>(method: string, template: string, path: string, init: { body?: unknown; auth?: string; headers?: Record<string, string> } = {}) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      "Content-Type": "application/json",
      "User-Agent": "Elastic Agent v9.6.0",
      Authorization: init.auth ?? `Bearer ${server.adminToken}`,
      ...init.headers,
    },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  const text = await res.text();
  const body = text ? (JSON.parse(text) as unknown) : null;
  const operation = doc.paths[template]?.[method.toLowerCase()];
  expect(operation, `${method} ${template} is in the document`).toBeDefined();
  const response = res.status === 200 ? operation!.responses["200"] : operation!.responses.default;
  const schema = response?.content?.["application/json"]?.schema;
  if (schema) {
    const validate = ajv.compile(JSON.parse(JSON.stringify(schema).replaceAll('"#/components', '"fleet-openapi#/components')));
    expect(validate(body) ? [] : validate.errors, `${method} ${path} → ${res.status} matches the document`).toEqual([]);
  }
  // The shape the caller names is the one the document just validated.
  return { status: res.status, body: body as T };
}

describe("the served OpenAPI document", () => {
  it("describes the real answers of the agent and admin routes", async () => {
    const policy = { name: "doc", policy: { outputs: { default: { type: "logstash", hosts: ["ls:5044"] } }, inputs: [] } };
    expect((await call("PUT", "/api/fleet/agent_policies/{id}", "/api/fleet/agent_policies/doc-p", { body: policy })).status).toBe(200);
    await call("PUT", "/api/fleet/agent_policies/{id}", "/api/fleet/agent_policies/doc-p", { body: { ...policy, description: "v2" } });
    await call("GET", "/api/fleet/agent_policies", "/api/fleet/agent_policies");
    await call("GET", "/api/fleet/agent_policies/{id}", "/api/fleet/agent_policies/doc-p");
    await call("GET", "/api/fleet/agent_policies/{id}/full", "/api/fleet/agent_policies/doc-p/full");
    await call("GET", "/api/fleet/agent_policies/{id}/revisions", "/api/fleet/agent_policies/doc-p/revisions");
    expect((await call("GET", "/api/fleet/agent_policies/{id}/revisions/{revision}/diff", "/api/fleet/agent_policies/doc-p/revisions/2/diff")).status).toBe(200);
    const key = await call<{ item: { id: string; api_key: string } }>("POST", "/api/fleet/enrollment_api_keys", "/api/fleet/enrollment_api_keys", { body: { policy_id: "doc-p", name: "doc" } });
    await call("GET", "/api/fleet/enrollment_api_keys", "/api/fleet/enrollment_api_keys");
    await call("GET", "/api/fleet/enrollment_api_keys/{id}", `/api/fleet/enrollment_api_keys/${key.body.item.id}`);

    const token = `ApiKey ${key.body.item.api_key}`;
    const enrolled = await call<{ item: { id: string; access_api_key: string } }>("POST", "/api/fleet/agents/enroll", "/api/fleet/agents/enroll?", {
      auth: token,
      body: { type: "PERMANENT", id: "", replace_token: "", metadata: { local: { host: { hostname: "doc-host" } }, user_provided: {}, tags: null } },
    });
    const agentId = enrolled.body.item.id;
    const agentAuth = `ApiKey ${enrolled.body.item.access_api_key}`;
    await call("GET", "/api/status", "/api/status?", { auth: agentAuth });
    await call("GET", "/api/status", "/api/status", { headers: {} });
    const checkin = await call<{ actions: Array<{ id: string }> }>("POST", "/api/fleet/agents/{id}/checkin", `/api/fleet/agents/${agentId}/checkin?`, { auth: agentAuth, body: { status: "starting", message: "" } });
    await call("POST", "/api/fleet/agents/{id}/acks", `/api/fleet/agents/${agentId}/acks?`, {
      auth: agentAuth,
      body: { events: [{ action_id: checkin.body.actions[0]!.id, agent_id: agentId, type: "ACTION_RESULT", subtype: "ACKNOWLEDGED", message: "ok" }, { action_id: "unknown" }] },
    });
    // Errors in the shared error shape.
    expect((await call("POST", "/api/fleet/agents/{id}/checkin", `/api/fleet/agents/${agentId}/checkin?`, { auth: agentAuth, body: { message: "" } })).status).toBe(400);

    await call("GET", "/api/fleet/agents", "/api/fleet/agents?perPage=5");
    await call("GET", "/api/fleet/agents/{agentId}", `/api/fleet/agents/${agentId}`);
    await call("PUT", "/api/fleet/agents/{agentId}", `/api/fleet/agents/${agentId}`, { body: { tags: ["doc"] } });
    await call("GET", "/api/fleet/agent_status", "/api/fleet/agent_status");
    await call("GET", "/api/fleet/console/overview", "/api/fleet/console/overview");
    expect((await call("GET", "/api/fleet/console/live", "/api/fleet/console/live", { headers: {} })).status).toBe(426);
    await call("GET", "/api/fleet/agent_policies/{id}/rollout", "/api/fleet/agent_policies/doc-p/rollout");
    await call("POST", "/api/fleet/agents/{agentId}/actions", `/api/fleet/agents/${agentId}/actions`, { body: { action: { type: "SETTINGS", data: { log_level: "info" } } } });
    await call("POST", "/api/fleet/agents/{agentId}/upgrade", `/api/fleet/agents/${agentId}/upgrade`, { body: { version: "9.6.0" } });
    await call("POST", "/api/fleet/agents/{agentId}/request_diagnostics", `/api/fleet/agents/${agentId}/request_diagnostics`, { body: {} });
    await call("POST", "/api/fleet/agents/bulk_update_agent_tags", "/api/fleet/agents/bulk_update_agent_tags", { body: { policy_id: "doc-p", tagsToAdd: ["all"] } });
    await call("POST", "/api/fleet/actions", "/api/fleet/actions", { body: { agents: [agentId], action: { type: "SETTINGS", data: { log_level: "debug" } } } });
    await call("GET", "/api/fleet/agents/action_status", "/api/fleet/agents/action_status");
    const adminKey = await call<{ item: { id: string } }>("POST", "/api/fleet/admin_api_keys", "/api/fleet/admin_api_keys", { body: { name: "doc" } });
    await call("GET", "/api/fleet/admin_api_keys", "/api/fleet/admin_api_keys");
    await call("DELETE", "/api/fleet/admin_api_keys/{id}", `/api/fleet/admin_api_keys/${adminKey.body.item.id}`);
    expect((await call("GET", "/api/fleet/agents", "/api/fleet/agents", { auth: "Bearer wrong" })).status).toBe(401);
  });
});
