import { SELF, env } from "cloudflare:test";
import type { AgentSummary } from "../src/agents/status";
import { policyHub } from "../src/durable-stubs";
import { AGENT_VERSION, agentHeaders } from "./support/agent-headers";

export { AGENT_VERSION, agentHeaders };

export const BASE = "http://fleet.example.internal:8220";
export const ADMIN_TOKEN = "test-admin-token";

/** A gzip of the text or bytes, as an agent ≥ 9.4 compresses its check-in body. */
export async function gzip(data: Uint8Array | string): Promise<Uint8Array> {
  return new Uint8Array(await new Response(new Blob([data]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer());
}

/** Sends a request the way the agent does: a bare `?` on the path, compact JSON. */
export function agentRequest(method: string, path: string, init: { key?: string; body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {}) {
  const headers = agentHeaders(init.headers);
  if (init.key !== undefined) headers.Authorization = `ApiKey ${init.key}`;
  return SELF.fetch(`${BASE}${path}?`, {
    method,
    headers,
    ...(init.signal ? { signal: init.signal } : {}),
    ...(init.body !== undefined ? { body: rawBody(init.body) } : {}),
  });
}

/** Strings and bytes go as they are; anything else as compact JSON. */
function rawBody(body: unknown): BodyInit {
  if (typeof body === "string" || body instanceof ArrayBuffer || body instanceof Uint8Array) return body;
  return JSON.stringify(body);
}

export function adminRequest(method: string, path: string, body?: unknown, token = ADMIN_TOKEN) {
  return SELF.fetch(`${BASE}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
}

export function policyBody(overrides: Record<string, unknown> = {}) {
  return {
    name: "Linux servers",
    namespace: "default",
    policy: {
      outputs: { default: { type: "elasticsearch", hosts: ["https://es.example.internal:9200"], preset: "balanced" } },
      output_permissions: { default: { _elastic_agent_checks: { cluster: ["monitor"] } } },
      inputs: [{ id: "logfile-system-1", type: "logfile", use_output: "default", streams: [] }],
      agent: { monitoring: { enabled: true, logs: true, metrics: true, namespace: "default", use_output: "default" } },
      fleet: { hosts: ["https://fleet.example.internal:8220"] },
      ...overrides,
    },
  };
}

export async function putPolicy(policyId: string, overrides: Record<string, unknown> = {}) {
  const res = await adminRequest("PUT", `/api/fleet/agent_policies/${policyId}`, policyBody(overrides));
  if (res.status !== 200) throw new Error(`PUT policy: ${res.status} ${await res.text()}`);
  return await res.json<{ item: { id: string; revision: number; updated_at: string }; changed: boolean }>();
}

export async function createEnrollmentKey(policyId: string) {
  const res = await adminRequest("POST", "/api/fleet/enrollment_api_keys", { policy_id: policyId, name: "test" });
  if (res.status !== 200) throw new Error(`create key: ${res.status} ${await res.text()}`);
  return (await res.json<{ item: { id: string; api_key: string; api_key_id: string } }>()).item;
}

/** The enroll body of a 9.6 agent (elastic-agent-client.md §3.1). */
export function enrollBody(overrides: Record<string, unknown> = {}) {
  return {
    type: "PERMANENT",
    id: "",
    replace_token: "",
    metadata: {
      local: {
        elastic: { agent: { id: "0d6f2b7e-3c41-4f8a-9e25-7b1c8d4a6f03", version: AGENT_VERSION, snapshot: false } },
        host: { hostname: "web-01", name: "web-01" },
      },
      user_provided: {},
      tags: null,
    },
    ...overrides,
  };
}

export interface Enrolled {
  id: string;
  key: string;
  policyId: string;
}

/** Creates the policy (unless it exists) and a key, and enrolls one agent. */
export async function enrolledAgent(policyId: string, overrides: Record<string, unknown> = {}): Promise<Enrolled> {
  const existing = await adminRequest("GET", `/api/fleet/agent_policies/${policyId}/full`);
  if (existing.status === 404) await putPolicy(policyId);
  const key = await createEnrollmentKey(policyId);
  return enroll(policyId, key.api_key, overrides);
}

/** Creates the policy and one key, and enrolls `count` agents with it; `overrides(i)` shapes the i-th agent's enroll body. */
export async function enrolledAgents(policyId: string, count: number, overrides: (i: number) => Record<string, unknown> = () => ({})): Promise<Enrolled[]> {
  await putPolicy(policyId);
  const key = await createEnrollmentKey(policyId);
  const agents: Enrolled[] = [];
  for (let i = 0; i < count; i++) agents.push(await enroll(policyId, key.api_key, overrides(i)));
  return agents;
}

/** `enrolledAgents`, each then checked in once and acking its POLICY_CHANGE: every agent runs the policy's revision 1. */
export async function enrolledOnRevision1(policyId: string, count: number, overrides?: (i: number) => Record<string, unknown>): Promise<Enrolled[]> {
  const agents = await enrolledAgents(policyId, count, overrides);
  for (const agent of agents) await acceptFirstPolicy(agent);
  return agents;
}

async function enroll(policyId: string, enrollmentKey: string, overrides: Record<string, unknown>): Promise<Enrolled> {
  const res = await agentRequest("POST", "/api/fleet/agents/enroll", { key: enrollmentKey, body: enrollBody(overrides) });
  if (res.status !== 200) throw new Error(`enroll: ${res.status} ${await res.text()}`);
  const { item } = await res.json<{ item: { id: string; access_api_key: string } }>();
  return { id: item.id, key: item.access_api_key, policyId };
}

/** A new agent's first check-in (with `status`) and its ack of the POLICY_CHANGE that answers it: the agent then runs the policy's latest revision. */
export async function acceptFirstPolicy(agent: Enrolled, status = "online"): Promise<void> {
  const res = await checkinRequest(agent, { status });
  if (res.status !== 200) throw new Error(`first check-in: ${res.status} ${await res.text()}`);
  const first = await res.json<{ actions?: Array<{ id: string; type: string }> }>();
  const change = first.actions?.find((action) => action.type === "POLICY_CHANGE");
  if (!change) throw new Error(`the first check-in of ${agent.id} brought no POLICY_CHANGE: ${JSON.stringify(first)}`);
  const ack = await ackRequest(agent, [ackEvent(agent, change.id, "POLICY_CHANGE")]);
  if (ack.status !== 200) throw new Error(`ack: ${ack.status} ${await ack.text()}`);
}

export function checkinRequest(agent: Enrolled, body: Record<string, unknown> = {}, headers: Record<string, string> = {}, signal?: AbortSignal) {
  return agentRequest("POST", `/api/fleet/agents/${agent.id}/checkin`, {
    key: agent.key,
    body: { status: "online", message: "Running", components: null, upgrade: {}, ...body },
    headers,
    ...(signal ? { signal } : {}),
  });
}

export function ackRequest(agent: Enrolled, events: unknown[]) {
  return agentRequest("POST", `/api/fleet/agents/${agent.id}/acks`, { key: agent.key, body: { events } });
}

/** A current-layout ack event (keys alphabetical, RFC3339Nano timestamp). */
export function ackEvent(agent: Enrolled, actionId: string, type: string, extra: Record<string, unknown> = {}) {
  return {
    action_id: actionId,
    agent_id: agent.id,
    message: `Action "${actionId}" of type "${type}" acknowledged.`,
    subtype: "ACKNOWLEDGED",
    timestamp: "2026-08-22T14:03:27.512345678Z",
    type: "ACTION_RESULT",
    ...extra,
  };
}

/** A roster row, as an agent's store sends it to its policy's roster: by default online since a check-in a minute after enrolling, on revision 1. */
export const agentSummary = (agentId: string, overrides: Partial<AgentSummary> = {}): AgentSummary => ({
  agent_id: agentId,
  active: true,
  enrolled_at: "2026-01-01T00:00:00.000Z",
  last_checkin: "2026-01-01T00:01:00.000Z",
  last_checkin_status: "online",
  last_checkin_message: "Running",
  hostname: "web-01",
  version: "9.6.0",
  tags: [],
  policy_revision_idx: 1,
  upgrading: false,
  unenrolling: false,
  unhealthy_reason: null,
  type: "PERMANENT",
  ...overrides,
});

export async function queueAction(agentId: string, action: Record<string, unknown>) {
  const res = await adminRequest("POST", `/api/fleet/agents/${agentId}/actions`, { action });
  if (res.status !== 200) throw new Error(`queue action: ${res.status} ${await res.text()}`);
  return (await res.json<{ item: { id: string } }>()).item;
}

export async function json<T = Record<string, unknown>>(res: Response): Promise<T> {
  return res.json<T>();
}

/** Check-ins the policy's hub has counted, over every minute it shows. */
export async function checkinsCounted(policyId: string): Promise<number> {
  return (await policyHub(env, policyId).glance(policyId)).checkins.reduce((sum, [, n]) => sum + n, 0);
}

/** Check-ins parked across all of a policy's fan-out shards. */
export async function parkedCount(policyId: string): Promise<number> {
  // A fixed count, or every shard a policy could have ("auto").
  const shards = Number(env.POLICY_HUB_SHARDS) || Number(env.POLICY_HUB_SHARDS_MAX ?? "256");
  const counts = await Promise.all(
    Array.from({ length: shards }, (_, i) =>
      (env.HUB_SHARDS.get(env.HUB_SHARDS.idFromName(`${policyId}#${i}`)) as unknown as { parkedCount(): Promise<number> }).parkedCount(),
    ),
  );
  return counts.reduce((a, b) => a + b, 0);
}

/** Waits until `count` check-ins of the policy are parked in its shards. */
export async function untilParked(policyId: string, count = 1): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await parkedCount(policyId)) >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`no check-in parked on ${policyId}`);
}

/**
 * Retries `check` until it passes or `withinMs` has passed, then fails with its last error. For views
 * that follow the agents' records through the stores' effects (durable/agent-effects.ts): they agree
 * within a bound, not at once. `everyMs` spaces the attempts of a costly check.
 */
export async function eventually<T>(check: () => Promise<T>, withinMs = 5_000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  }
}
