import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { agentHeaders } from "../support/agent-headers";
import { adminRequest, startDevServer, type DevServer } from "../support/dev-server";

/**
 * The stated bound (docs/architecture.md, "Consistency"): after a restart every admin view agrees
 * with the agents' own records within this many seconds, with no agent doing anything meanwhile.
 */
const BOUND_MS = 15_000;

const VARS = { CHECKIN_LONG_POLL: "2s", CHECKIN_JITTER: "0s", CHECKIN_MIN_POLL: "1s" };

interface Agent {
  id: string;
  key: string;
}

interface Listed {
  id: string;
  status: string;
  active: boolean;
  policy_revision: number;
  last_checkin: string | null;
  last_checkin_status: string | null;
  hostname: string | null;
  tags: string[];
}

const states: string[] = [];
afterAll(() => {
  for (const state of states) rmSync(state, { recursive: true, force: true });
});

/** A server on a state directory that outlives it: killed with SIGKILL and started again on the same state. */
async function serverOn(state: string): Promise<DevServer> {
  return startDevServer(VARS, { state });
}

async function agentCall<T>(server: DevServer, path: string, key: string, body: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${server.url}${path}?`, {
    method: "POST",
    headers: agentHeaders({ Authorization: `ApiKey ${key}`, "Accept-Encoding": "identity" }),
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as T };
}

const policy = (level: string) => ({
  name: "crash",
  namespace: "default",
  policy: {
    outputs: { default: { type: "elasticsearch", hosts: ["https://es.example.internal:9200"] } },
    agent: { logging: { level } },
  },
});

async function enrollmentKey(server: DevServer, policyId: string): Promise<string> {
  const created = await adminRequest<{ item: { api_key: string } }>(server, "POST", "/api/fleet/enrollment_api_keys", { policy_id: policyId, name: "crash" });
  expect(created.status).toBe(200);
  return created.body.item.api_key;
}

function enroll(server: DevServer, token: string, id: string) {
  return agentCall<{ item: { id: string; access_api_key: string } }>(server, "/api/fleet/agents/enroll", token, {
    type: "PERMANENT",
    id,
    metadata: { local: { elastic: { agent: { version: "9.6.0" } }, host: { hostname: id } }, user_provided: {}, tags: ["crash"] },
  });
}

const checkin = (server: DevServer, agent: Agent, body: Record<string, unknown> = {}) =>
  agentCall<{ actions?: Array<{ id: string; type: string }> }>(server, `/api/fleet/agents/${agent.id}/checkin`, agent.key, { status: "online", message: "Running", ...body });

const ackPolicy = (server: DevServer, agent: Agent, actionId: string) =>
  agentCall(server, `/api/fleet/agents/${agent.id}/acks`, agent.key, {
    events: [{ action_id: actionId, agent_id: agent.id, type: "ACTION_RESULT", subtype: "ACKNOWLEDGED", timestamp: new Date().toISOString(), message: "ok" }],
  });

/** Resolves once `count` of the promises have settled. */
function settled(promises: Array<Promise<unknown>>, count: number): Promise<void> {
  let done = 0;
  return new Promise((resolve) => {
    const one = () => {
      if (++done === count) resolve();
    };
    // Both ways handled: a request cut by the kill is expected, not an unhandled rejection.
    for (const promise of promises) promise.then(one, one);
  });
}

/** Retries `check` until it passes or the bound has passed. */
async function withinBound(check: () => Promise<void>): Promise<number> {
  const started = Date.now();
  for (;;) {
    try {
      await check();
      return Date.now() - started;
    } catch (err) {
      if (Date.now() - started > BOUND_MS) throw err;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

/**
 * Every admin view of `policyId` against each agent's own record (`GET /agents/{id}`, read from its
 * store): the listing, the status counts and the rollout progress. `ids` are every agent that may
 * exist; those the store does not know must not be listed either.
 */
async function viewsAgree(server: DevServer, policyId: string, ids: string[]): Promise<Listed[]> {
  const records: Listed[] = [];
  for (const id of ids) {
    const one = await adminRequest<{ item: Listed }>(server, "GET", `/api/fleet/agents/${id}`);
    if (one.status === 404) continue;
    expect(one.status).toBe(200);
    records.push(one.body.item);
  }
  const listed = await adminRequest<{ items: Listed[]; total: number }>(server, "GET", `/api/fleet/agents?policy_id=${policyId}&perPage=1000&showInactive=true`);
  expect(listed.status).toBe(200);
  const pick = ({ id, status, active, policy_revision, last_checkin, last_checkin_status, hostname, tags }: Listed) => ({
    id,
    status,
    active,
    policy_revision,
    last_checkin,
    last_checkin_status,
    hostname,
    tags,
  });
  const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : 1);
  expect(listed.body.items.map(pick).sort(byId)).toEqual(records.map(pick).sort(byId));

  const counts = await adminRequest<{ by_policy: Array<Record<string, number | string>> }>(server, "GET", "/api/fleet/agent_status");
  const mine = counts.body.by_policy.find((p) => p.policy_id === policyId)!;
  for (const status of ["online", "updating", "enrolling", "unenrolled", "error", "degraded"]) {
    expect(mine[status], status).toBe(records.filter((r) => r.status === status).length);
  }

  const rollout = await adminRequest<{ item: { revisions: Array<{ revision: number; agents: number }> } }>(server, "GET", `/api/fleet/agent_policies/${policyId}/rollout`);
  const perRevision = new Map<number, number>();
  for (const r of records.filter((r) => r.active)) perRevision.set(r.policy_revision, (perRevision.get(r.policy_revision) ?? 0) + 1);
  expect(rollout.body.item.revisions).toEqual([...perRevision].sort((a, b) => b[0] - a[0]).map(([revision, agents]) => ({ revision, agents })));
  return records;
}

describe("a crash (SIGKILL of npm start) leaves every admin view agreeing with the agents' records", () => {
  it("mid-rollout: 50 agents acking revision 2 when the server dies", async () => {
    const state = mkdtempSync(join(tmpdir(), "fleet-crash-"));
    states.push(state);
    let server = await serverOn(state);
    expect((await adminRequest(server, "PUT", "/api/fleet/agent_policies/crash-rollout", policy("info"))).status).toBe(200);
    const token = await enrollmentKey(server, "crash-rollout");
    const agents: Agent[] = [];
    for (let i = 0; i < 50; i++) {
      const enrolled = await enroll(server, token, `crash-rollout-${i}`);
      expect(enrolled.status).toBe(200);
      const agent = { id: enrolled.body.item.id, key: enrolled.body.item.access_api_key };
      const first = await checkin(server, agent);
      await ackPolicy(server, agent, first.body.actions![0]!.id);
      agents.push(agent);
    }
    expect((await adminRequest(server, "PUT", "/api/fleet/agent_policies/crash-rollout", policy("debug"))).status).toBe(200);

    // Every agent takes revision 2 and acks it; the server is killed when half the acks are answered.
    const acks = agents.map(async (agent) => {
      const got = await checkin(server, agent, { agent_policy_id: "crash-rollout", policy_revision_idx: 1 });
      expect(got.body.actions?.[0]?.id).toBe("policy:crash-rollout:2");
      return ackPolicy(server, agent, "policy:crash-rollout:2");
    });
    await settled(acks, 25);
    await server.kill();
    await Promise.allSettled(acks);

    server = await serverOn(state);
    try {
      let records: Listed[] = [];
      const took = await withinBound(async () => {
        records = await viewsAgree(server, "crash-rollout", agents.map((a) => a.id));
      });
      expect(records).toHaveLength(50);
      // At least the answered acks moved their agents (each store's record is the truth).
      expect(records.filter((r) => r.policy_revision === 2).length).toBeGreaterThanOrEqual(25);
      console.log(`mid-rollout: views agreed ${took} ms after the restart`);
    } finally {
      await server.kill();
    }
  });

  it("mid-enrollment: 300 agents enrolling when the server dies: each is absent, or present and listed", async () => {
    const state = mkdtempSync(join(tmpdir(), "fleet-crash-"));
    states.push(state);
    let server = await serverOn(state);
    expect((await adminRequest(server, "PUT", "/api/fleet/agent_policies/crash-enroll", policy("info"))).status).toBe(200);
    const token = await enrollmentKey(server, "crash-enroll");
    const ids = Array.from({ length: 300 }, (_, i) => `crash-enroll-${i}`);
    const enrollments = ids.map((id) => enroll(server, token, id));
    await settled(enrollments, 150);
    await server.kill();
    const answered = (await Promise.allSettled(enrollments)).filter((r) => r.status === "fulfilled" && r.value.status === 200).length;

    server = await serverOn(state);
    try {
      let records: Listed[] = [];
      const took = await withinBound(async () => {
        records = await viewsAgree(server, "crash-enroll", ids);
      });
      // Every answered enrollment survived; more may have been written just before the kill.
      expect(records.length).toBeGreaterThanOrEqual(answered);
      for (const record of records) expect(record).toMatchObject({ status: "enrolling", active: true, tags: ["crash"] });
      console.log(`mid-enrollment: ${answered} answered, ${records.length} stored, views agreed ${took} ms after the restart`);
    } finally {
      await server.kill();
    }
  });
});
