import { SELF, env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { AgentRoster } from "../durable/agent-roster";
import {
  BASE,
  acceptFirstPolicy,
  ackEvent,
  ackRequest,
  adminRequest,
  agentRequest,
  checkinRequest,
  createEnrollmentKey,
  enrollBody,
  enrolledAgent,
  enrolledAgents,
  eventually,
  json,
  putPolicy,
  untilParked,
  type Enrolled,
} from "./helpers";

interface Listed {
  id: string;
  status: string;
  hostname: string | null;
  tags: string[];
  policy_id: string;
  policy_revision: number;
}
interface Page {
  items: Listed[];
  total: number;
  page: number;
  perPage: number;
  nextSearchAfter?: string;
}
interface CheckinBody {
  ack_token: string;
  actions?: Array<{ id: string; type: string; data: unknown; start_time?: string }>;
}

/** Enrolls `count` agents into a policy, each with its own hostname. */
const fleet = (policyId: string, count: number, hostPrefix = "web"): Promise<Enrolled[]> =>
  enrolledAgents(policyId, count, (i) => ({ metadata: { local: { host: { hostname: `${hostPrefix}-${i}` } }, user_provided: {}, tags: i % 2 === 0 ? ["even"] : ["odd"] } }));

const list = async (query: string) => json<Page>(await adminRequest("GET", `/api/fleet/agents?${query}`));

describe("listing agents", () => {
  it("pages, sorts, filters by tag, text and status, and hides unenrolled agents by default", async () => {
    const agents = await fleet("list-p", 5);
    const all = await list("policy_id=list-p&perPage=2&page=1&sortField=hostname&sortOrder=asc");
    expect(all.total).toBe(5);
    expect(all.items.map((a) => a.hostname)).toEqual(["web-0", "web-1"]);
    const page3 = await list("policy_id=list-p&perPage=2&page=3&sortField=hostname&sortOrder=asc");
    expect(page3.items.map((a) => a.hostname)).toEqual(["web-4"]);
    expect(page3).toMatchObject({ page: 3, perPage: 2, total: 5 });

    expect((await list("policy_id=list-p&tag=even")).total).toBe(3);
    expect((await list("policy_id=list-p&kuery=local_metadata.host.hostname:web-3")).items.map((a) => a.hostname)).toEqual(["web-3"]);
    expect((await list("policy_id=list-p&status=enrolling")).total).toBe(5);

    await acceptFirstPolicy(agents[0]!);
    await acceptFirstPolicy(agents[1]!, "DEGRADED");
    await acceptFirstPolicy(agents[2]!, "error");
    // Check-ins and acks reach the roster through the agents' stores' effects, within a bound.
    await eventually(async () => {
      expect((await list("policy_id=list-p&status=online")).items.map((a) => a.id)).toEqual([agents[0]!.id]);
      expect((await list("policy_id=list-p&status=degraded")).items.map((a) => a.id)).toEqual([agents[1]!.id]);
      expect((await list("policy_id=list-p&status=error")).items.map((a) => a.id)).toEqual([agents[2]!.id]);
    });

    // A new revision makes the settled agents "updating" until they ack it.
    await putPolicy("list-p", { agent: { logging: { level: "debug" } } });
    expect((await list("policy_id=list-p&status=updating")).total).toBe(3);

    const revoked = await adminRequest("POST", `/api/fleet/agents/${agents[4]!.id}/unenroll`, { revoke: true });
    expect(revoked.status).toBe(200);
    expect((await list("policy_id=list-p")).total).toBe(4);
    expect((await list("policy_id=list-p&showInactive=true")).total).toBe(5);
    expect((await list("policy_id=list-p&status=unenrolled")).items.map((a) => a.id)).toEqual([agents[4]!.id]);
  });

  it("lists across policies and explains the paging window", async () => {
    await fleet("cross-a", 2, "alpha");
    await fleet("cross-b", 2, "beta");
    const merged = await list("perPage=100&sortField=hostname&sortOrder=asc&kuery=a-");
    expect(merged.items.map((a) => a.hostname)).toEqual(expect.arrayContaining(["alpha-0", "alpha-1", "beta-0", "beta-1"]));
    const deep = await adminRequest("GET", "/api/fleet/agents?page=1000&perPage=100");
    expect(deep.status).toBe(400);
    expect((await json(deep)).message).toContain("page with searchAfter (each page's nextSearchAfter) or filter by policy_id to go deeper");
    const bad = await adminRequest("GET", "/api/fleet/agents?perPage=0");
    expect(await bad.json()).toEqual({ statusCode: 400, error: "BadRequest", message: expect.stringMatching(/^perPage: /) });
  });

  it("pages across policies past the window with searchAfter, in order, each agent once", async () => {
    // 3 × 4,000 roster rows: many equal check-in times across policies, every 7th never checked in.
    const expected: Array<{ id: string; last_checkin: string | null }> = [];
    for (const policy of ["deep-a", "deep-b", "deep-c"]) {
      await putPolicy(policy);
      const rows = Array.from({ length: 4000 }, (_, i) => ({
        id: `${policy}-${String(i).padStart(4, "0")}`,
        last_checkin: i % 7 === 0 ? null : new Date(Date.UTC(2026, 0, 1) + (i % 500) * 1000).toISOString(),
      }));
      expected.push(...rows);
      await runInDurableObject(env.POLICY_HUBS.get(env.POLICY_HUBS.idFromName(policy)), async (_instance, state: DurableObjectState) => {
        state.storage.transactionSync(() => {
          for (const row of rows) {
            state.storage.sql.exec(
              `INSERT INTO roster (agent_id, active, enrolled_at, last_checkin, hostname, version, tags, policy_revision_idx, upgrading, unenrolling)
               VALUES (?, 1, '2026-01-01T00:00:00.000Z', ?, ?, '9.6.0', '[]', 1, 0, 0)`,
              row.id,
              row.last_checkin,
              `deep-host-${row.id}`,
            );
          }
        });
      });
    }
    // Newest check-in first, never-checked-in last, ties by id.
    expected.sort((a, b) =>
      a.last_checkin === b.last_checkin ? (a.id < b.id ? -1 : 1) : a.last_checkin === null ? 1 : b.last_checkin === null ? -1 : a.last_checkin > b.last_checkin ? -1 : 1,
    );

    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await list(`perPage=1000&sortField=last_checkin&sortOrder=desc&kuery=deep-host${cursor ? `&searchAfter=${encodeURIComponent(cursor)}` : ""}`);
      expect(page.total).toBe(12_000);
      seen.push(...page.items.map((a) => a.id));
      cursor = page.nextSearchAfter;
      pages++;
    } while (cursor);
    expect(pages).toBe(13); // twelve full pages, then an empty one without a cursor
    expect(seen).toEqual(expected.map((row) => row.id));

    // Within one policy the cursor agrees with page numbers.
    const second = await list("policy_id=deep-b&perPage=100&page=2&sortField=agent_id&sortOrder=asc");
    const first = await list("policy_id=deep-b&perPage=100&sortField=agent_id&sortOrder=asc");
    const after = await list(`policy_id=deep-b&perPage=100&sortField=agent_id&sortOrder=asc&searchAfter=${encodeURIComponent(first.nextSearchAfter!)}`);
    expect(after.items.map((a) => a.id)).toEqual(second.items.map((a) => a.id));

    const mixed = await adminRequest("GET", `/api/fleet/agents?page=2&searchAfter=${encodeURIComponent(first.nextSearchAfter!)}`);
    expect(await json(mixed)).toEqual({ statusCode: 400, error: "BadRequest", message: "page cannot be combined with searchAfter" });
    const forged = await adminRequest("GET", `/api/fleet/agents?searchAfter=${encodeURIComponent('{"not":"a cursor"}')}`);
    expect(await json(forged)).toEqual({ statusCode: 400, error: "BadRequest", message: "searchAfter: must be the nextSearchAfter of the previous page" });
  });

  it("pages through 100,000 agents of one policy without loading them", async () => {
    await putPolicy("huge-p");
    const hub = env.POLICY_HUBS.get(env.POLICY_HUBS.idFromName("huge-p"));
    await runInDurableObject(hub, async (_instance, state: DurableObjectState) => {
      state.storage.transactionSync(() => {
        for (let i = 0; i < 100_000; i++) {
          state.storage.sql.exec(
            `INSERT INTO roster (agent_id, active, enrolled_at, hostname, version, tags, policy_revision_idx, upgrading, unenrolling)
             VALUES (?, 1, ?, ?, '9.6.0', '[]', 1, 0, 0)`,
            `agent-${String(i).padStart(6, "0")}`,
            new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(),
            `host-${i}`,
          );
        }
        // Rows written straight into the table, as by a version before the counters: counted once, as at load.
        state.storage.sql.exec("INSERT INTO roster_meta (k, v) VALUES ('rebuild_counts', 1)");
        new AgentRoster(state.storage.sql).prepare();
      });
    });
    const last = await list("policy_id=huge-p&perPage=1000&page=100&sortField=agent_id&sortOrder=asc");
    expect(last.total).toBe(100_000);
    expect(last.items).toHaveLength(1000);
    expect(last.items[0]!.id).toBe("agent-099000");
    expect(last.items[999]!.id).toBe("agent-099999");
    const newest = await list("policy_id=huge-p&perPage=1&sortField=enrolled_at&sortOrder=desc");
    expect(newest.items[0]!.id).toBe("agent-099999");
    const overview = await json<{ results: { total: number; enrolling: number } }>(await adminRequest("GET", "/api/fleet/agent_status?policyId=huge-p"));
    expect(overview.results).toMatchObject({ total: 100_000, enrolling: 100_000 });
  });
});

describe("one agent", () => {
  it("shows components, revision applied versus current, and pending actions", async () => {
    const [agent] = await fleet("detail-p", 1);
    await checkinRequest(agent!, { status: "starting", components: [{ id: "log-default", type: "log", status: "HEALTHY", units: [] }] });
    const action = await json<{ item: { id: string } }>(
      await adminRequest("POST", `/api/fleet/agents/${agent!.id}/actions`, { action: { type: "SETTINGS", data: { log_level: "debug" } } }),
    );
    const res = await adminRequest("GET", `/api/fleet/agents/${agent!.id}`);
    expect(res.status).toBe(200);
    const { item } = await json<{ item: Record<string, unknown> }>(res);
    expect(item).toMatchObject({
      id: agent!.id,
      policy_id: "detail-p",
      policy_revision: 0,
      latest_policy_revision: 1,
      status: "updating",
      hostname: "web-0",
      components: [{ id: "log-default", type: "log", status: "HEALTHY", units: [] }],
      pending_actions: [{ id: action.item.id, type: "SETTINGS" }],
    });
    expect(JSON.stringify(item)).not.toContain("pbkdf2");
    expect((await adminRequest("GET", "/api/fleet/agents/nobody")).status).toBe(404);
  });

  it("sets tags, visible in the listing", async () => {
    const [agent] = await fleet("tags-p", 1);
    const res = await adminRequest("PUT", `/api/fleet/agents/${agent!.id}`, { tags: ["prod", " eu ", "prod"] });
    expect(await res.json()).toEqual({ item: { id: agent!.id, tags: ["eu", "prod"] } });
    expect((await list("policy_id=tags-p&tag=eu")).items.map((a) => a.tags)).toEqual([["eu", "prod"]]);
  });
});

describe("agent operations", () => {
  it("reassigns an agent: its parked check-in ends and the new policy arrives with a reset revision", async () => {
    const [agent] = await fleet("from-p", 1);
    await acceptFirstPolicy(agent!);
    await putPolicy("to-p", { agent: { logging: { level: "warning" } } });
    const moved = await adminRequest("POST", `/api/fleet/agents/${agent!.id}/reassign`, { policy_id: "to-p" });
    expect(moved.status).toBe(200);
    const next = await json<CheckinBody>(await checkinRequest(agent!, { agent_policy_id: "from-p", policy_revision_idx: 1 }));
    expect(next.actions?.[0]).toMatchObject({ id: "policy:to-p:1", type: "POLICY_CHANGE" });
    expect((await list("policy_id=to-p")).items.map((a) => a.id)).toEqual([agent!.id]);
    expect((await list("policy_id=from-p")).total).toBe(0);
    expect((await adminRequest("POST", `/api/fleet/agents/${agent!.id}/reassign`, { policy_id: "nope" })).status).toBe(404);
  });

  it("revokes at once: the next check-in gets 401 without waiting for an ack", async () => {
    const [agent] = await fleet("revoke-p", 1);
    await adminRequest("POST", `/api/fleet/agents/${agent!.id}/unenroll`, { revoke: true });
    const res = await checkinRequest(agent!);
    expect(res.status).toBe(401);
  });

  it("ends a parked check-in when its agent is revoked, so the 401 comes at once", async () => {
    const [agent] = await fleet("revoke-parked-p", 1);
    await acceptFirstPolicy(agent!);
    // poll_timeout 10m holds for minutes: only the revocation can end this request within the test.
    const parked = checkinRequest(agent!, { agent_policy_id: "revoke-parked-p", policy_revision_idx: 1, poll_timeout: "10m" });
    await untilParked("revoke-parked-p");
    await adminRequest("POST", `/api/fleet/agents/${agent!.id}/unenroll`, { revoke: true });
    const ended = await parked;
    expect(ended.status).toBe(200);
    expect(await json(ended)).toEqual({ ack_token: expect.any(String), action: "checkin" });
    expect((await checkinRequest(agent!)).status).toBe(401);
  });

  it("spreads a bulk upgrade's start times over the rollout window", async () => {
    const agents = await fleet("upgrade-p", 4);
    // From the clock, on a whole hour: a fixed date would fall out of the actions' validity one day.
    const start = Math.ceil(Date.now() / 3_600_000) * 3_600_000;
    const res = await adminRequest("POST", "/api/fleet/agents/bulk_upgrade", {
      agents: agents.map((a) => a.id),
      version: "9.6.0",
      start_time: new Date(start).toISOString(),
      rollout_duration_seconds: 3600,
    });
    expect(res.status).toBe(200);
    const { actionId } = await json<{ actionId: string }>(res);
    const starts: string[] = [];
    for (const agent of agents) {
      const body = await json<CheckinBody>(await checkinRequest(agent));
      const upgrade = body.actions!.find((a) => a.type === "UPGRADE")!;
      expect(upgrade).toMatchObject({ id: actionId, data: { version: "9.6.0" } });
      starts.push(upgrade.start_time!);
    }
    expect(starts).toEqual([0, 15, 30, 45].map((minutes) => new Date(start + minutes * 60_000).toISOString()));
    await eventually(async () => expect((await list("policy_id=upgrade-p&status=updating")).total).toBe(4));
  });

  it("refuses an upgrade to a version newer than the server's own, in bulk, alone or as a plain action, and queues nothing", async () => {
    const agents = await fleet("ahead-p", 1);
    const refusal = (version: string) => ({
      statusCode: 400,
      error: "BadRequest",
      message: `Cannot upgrade agent to ${version} because it is higher than the latest fleet server version 9.6.0`,
    });
    const bulk = await adminRequest("POST", "/api/fleet/agents/bulk_upgrade", { agents: [agents[0]!.id], version: "9.7.0" });
    expect(bulk.status).toBe(400);
    expect(await json(bulk)).toEqual(refusal("9.7.0"));
    const single = await adminRequest("POST", `/api/fleet/agents/${agents[0]!.id}/upgrade`, { version: "9.6.1" });
    expect(single.status).toBe(400);
    expect(await json(single)).toEqual(refusal("9.6.1"));
    const byPolicy = await adminRequest("POST", "/api/fleet/agents/bulk_upgrade", { policy_id: "ahead-p", version: "10.0.0" });
    expect(await json(byPolicy)).toEqual(refusal("10.0.0"));
    const plain = await adminRequest("POST", "/api/fleet/actions", { agents: [agents[0]!.id], action: { type: "UPGRADE", data: { version: "9.6.2" } } });
    expect(plain.status).toBe(400);
    expect(await json(plain)).toEqual(refusal("9.6.2"));
    // Nothing reached the agent; its own version (and a snapshot of it) is accepted.
    expect((await json<CheckinBody>(await checkinRequest(agents[0]!))).actions!.filter((a) => a.type === "UPGRADE")).toEqual([]);
    expect((await adminRequest("POST", `/api/fleet/agents/${agents[0]!.id}/upgrade`, { version: "9.6.0-SNAPSHOT" })).status).toBe(200);
    expect((await adminRequest("POST", `/api/fleet/agents/${agents[0]!.id}/upgrade`, { version: "9.5.9" })).status).toBe(200);
  });

  it("counts an upgrade the agent reports UPG_FAILED as failed in action status, though the agent acked it", async () => {
    const agents = await fleet("upg-failed-p", 2);
    const res = await adminRequest("POST", "/api/fleet/agents/bulk_upgrade", { agents: agents.map((a) => a.id), version: "9.6.0" });
    const { actionId } = await json<{ actionId: string }>(res);
    const statusOf = async () =>
      (await json<{ items: Array<Record<string, unknown>> }>(await adminRequest("GET", "/api/fleet/agents/action_status"))).items.find((i) => i.actionId === actionId)!;
    // Both agents receive it and ack it, as a 9.x agent does before it knows how the upgrade went.
    for (const agent of agents) {
      const body = await json<CheckinBody>(await checkinRequest(agent));
      expect(body.actions!.map((a) => a.type)).toContain("UPGRADE");
      await ackRequest(agent, [ackEvent(agent, actionId, "UPGRADE")]);
    }
    await eventually(async () => expect(await statusOf()).toMatchObject({ status: "COMPLETE", nbAgentsAck: 2, nbAgentsFailed: 0 }));

    // One reports the upgrade failed: the action shows it where admins look.
    const failed = { action_id: actionId, target_version: "9.6.0", state: "UPG_FAILED", metadata: { error_msg: "failed to verify the package signature" } };
    expect((await checkinRequest(agents[0]!, { upgrade_details: failed })).status).toBe(200);
    await eventually(async () =>
      expect(await statusOf()).toMatchObject({
        nbAgentsAck: 1,
        nbAgentsFailed: 1,
        latestErrors: [{ agentId: agents[0]!.id, error: "failed to verify the package signature" }],
      }),
    );
    // A retry that works: the agent stops reporting the upgrade, and the failure is withdrawn.
    expect((await checkinRequest(agents[0]!)).status).toBe(200);
    await eventually(async () => expect(await statusOf()).toMatchObject({ status: "COMPLETE", nbAgentsAck: 2, nbAgentsFailed: 0, latestErrors: [] }));
  });

  it("sends an action to a whole policy and reports its progress, then cancels it for the rest", async () => {
    const agents = await fleet("progress-p", 3);
    const res = await adminRequest("POST", "/api/fleet/actions", { policy_id: "progress-p", action: { type: "REQUEST_DIAGNOSTICS" } });
    const { actionId } = await json<{ actionId: string }>(res);
    const statusOf = async () =>
      (await json<{ items: Array<Record<string, unknown>> }>(await adminRequest("GET", "/api/fleet/agents/action_status"))).items.find((i) => i.actionId === actionId)!;
    // The job dispatches from its alarm.
    for (let i = 0; i < 100 && (await statusOf()).nbAgentsActionCreated !== 3; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await statusOf()).toMatchObject({ type: "REQUEST_DIAGNOSTICS", status: "IN_PROGRESS", nbAgentsActioned: 3, nbAgentsActionCreated: 3, nbAgentsAck: 0, createdBy: "admin-token" });

    await ackRequest(agents[0]!, [ackEvent(agents[0]!, actionId, "REQUEST_DIAGNOSTICS", { data: { upload_id: "u1" } })]);
    await ackRequest(agents[1]!, [ackEvent(agents[1]!, actionId, "REQUEST_DIAGNOSTICS", { error: "rate limit exceeded" })]);
    // Results reach the action's progress through the agents' stores' effects.
    await eventually(async () =>
      expect(await statusOf()).toMatchObject({ nbAgentsAck: 1, nbAgentsFailed: 1, latestErrors: [{ agentId: agents[1]!.id, error: "rate limit exceeded" }] }),
    );

    const cancel = await adminRequest("POST", `/api/fleet/agents/actions/${actionId}/cancel`);
    expect(cancel.status).toBe(200);
    const cancelItem = (await json<{ item: { id: string; agents: string[] } }>(cancel)).item;
    expect(cancelItem.agents).toEqual([agents[2]!.id]);
    expect(await statusOf()).toMatchObject({ status: "CANCELLED" });
    const third = await json<CheckinBody>(await checkinRequest(agents[2]!));
    expect(third.actions?.map((a) => a.type)).toEqual(["REQUEST_DIAGNOSTICS", "CANCEL"]);
    expect(third.actions?.[1]).toMatchObject({ id: cancelItem.id, data: { target_id: actionId } });
    expect((await adminRequest("POST", `/api/fleet/agents/actions/${actionId}/cancel`)).status).toBe(409);
  });

  it("requires either agents or policy_id in bulk bodies", async () => {
    const res = await adminRequest("POST", "/api/fleet/agents/bulk_update_agent_tags", { tagsToAdd: ["x"] });
    expect(res.status).toBe(400);
    expect((await json(res)).message).toBe("agents: give either agents (a list of ids) or policy_id");
  });
});

describe("policies", () => {
  it("lists, reads, keeps a revision history with who and how much, and rolls back", async () => {
    await putPolicy("hist-p");
    await putPolicy("hist-p", { agent: { logging: { level: "debug" } } });
    const revisions = await json<{ items: Array<Record<string, unknown>> }>(await adminRequest("GET", "/api/fleet/agent_policies/hist-p/revisions"));
    expect(revisions.items.map((r) => r.revision)).toEqual([2, 1]);
    // `agent` went from five monitoring settings to one logging level: six leaf values changed.
    expect(revisions.items[0]).toMatchObject({ created_by: "admin-token", changed_paths: 6, size_bytes: expect.any(Number) });

    const rolled = await adminRequest("POST", "/api/fleet/agent_policies/hist-p/revisions/1/rollback");
    expect(await rolled.json()).toMatchObject({ item: { id: "hist-p", revision: 3 }, changed: true });
    const full = await json<{ item: Record<string, unknown> }>(await adminRequest("GET", "/api/fleet/agent_policies/hist-p/full"));
    expect(full.item.revision).toBe(3);
    expect((full.item.agent as Record<string, unknown>).logging).toBeUndefined();
    expect((await adminRequest("POST", "/api/fleet/agent_policies/hist-p/revisions/9/rollback")).status).toBe(404);

    const listed = await json<{ items: Array<{ id: string; agents: number }>; total: number }>(await adminRequest("GET", "/api/fleet/agent_policies?perPage=1000"));
    expect(listed.items.find((p) => p.id === "hist-p")).toMatchObject({ revision: 3, agents: 0 });
    const one = await json<{ item: Record<string, unknown> }>(await adminRequest("GET", "/api/fleet/agent_policies/hist-p"));
    expect(one.item).toMatchObject({ id: "hist-p", name: "Linux servers", revision: 3, agents: 0 });
  });

  it("writes the server's hosts into a policy as fleet.hosts, as Kibana does, unless it names its own", async () => {
    // vitest.config.ts sets FLEET_SERVER_HOSTS for the workers tests.
    const configured = ["https://fleet.example.internal:8220", "https://fleet-backup.example.internal:8220"];
    const withoutHosts = { fleet: undefined };
    await putPolicy("hosts-p", withoutHosts);
    const agent = await enrolledAgent("hosts-p");
    const full = await json<{ item: { fleet: unknown } }>(await adminRequest("GET", "/api/fleet/agent_policies/hosts-p/full"));
    expect(full.item.fleet).toEqual({ hosts: configured });
    const first = await json<CheckinBody>(await checkinRequest(agent));
    const data = first.actions![0]!.data as { policy: { fleet: unknown } };
    expect(data.policy.fleet).toEqual({ hosts: configured });

    // Publishing the same content again is no new revision: the hosts are part of what is compared.
    expect(await putPolicy("hosts-p", withoutHosts)).toMatchObject({ item: { revision: 1 }, changed: false });

    const own = { hosts: ["https://fleet-eu.example.com"], proxy_url: "http://proxy:3128" };
    expect(await putPolicy("hosts-p", { fleet: own })).toMatchObject({ item: { revision: 2 }, changed: true });
    const second = await json<{ item: { fleet: unknown } }>(await adminRequest("GET", "/api/fleet/agent_policies/hosts-p/full"));
    expect(second.item.fleet).toEqual(own);
  });

  it("creates with a generated id, and refuses a duplicate", async () => {
    const created = await json<{ item: { id: string; revision: number } }>(
      await adminRequest("POST", "/api/fleet/agent_policies", { name: "generated", policy: { outputs: { default: { type: "logstash" } } } }),
    );
    expect(created.item).toMatchObject({ id: expect.stringMatching(/^[0-9a-f-]{36}$/), revision: 1 });
    const dup = await adminRequest("POST", "/api/fleet/agent_policies", { id: created.item.id, name: "again", policy: { outputs: { default: { type: "logstash" } } } });
    expect(dup.status).toBe(409);
  });

  it("shows rollout progress and who is failing", async () => {
    const agents = await fleet("rollout-p", 3);
    for (const agent of agents) await acceptFirstPolicy(agent);
    await putPolicy("rollout-p", { agent: { logging: { level: "debug" } } });
    const upgraded = await json<CheckinBody>(await checkinRequest(agents[0]!, { agent_policy_id: "rollout-p", policy_revision_idx: 1 }));
    await ackRequest(agents[0]!, [ackEvent(agents[0]!, upgraded.actions![0]!.id, "POLICY_CHANGE")]);
    await checkinRequest(agents[1]!, { status: "error", message: "Invalid policy: bad input", agent_policy_id: "rollout-p", policy_revision_idx: 1 });
    await eventually(async () => {
      const { item } = await json<{ item: Record<string, unknown> }>(await adminRequest("GET", "/api/fleet/agent_policies/rollout-p/rollout"));
      expect(item).toMatchObject({
      latest_revision: 2,
      agents_total: 3,
      agents_on_latest: 1,
      revisions: [
        { revision: 2, agents: 1 },
        { revision: 1, agents: 2 },
      ],
        failing: [{ id: agents[1]!.id, revision: 1, status: "error", message: "Invalid policy: bad input" }],
      });
    });
  });

  it("counts every agent at or past the latest revision as on latest, as the status counts do", async () => {
    // An agent reassigned from a policy with more revisions reports its old revision until it has
    // the new policy: its record holds that revision (fleet-protocol.md §4.2), past the new latest.
    const [moved] = await fleet("ahead-src-p", 1);
    await putPolicy("ahead-src-p", { agent: { logging: { level: "debug" } } });
    await acceptFirstPolicy(moved!);
    const [stayed] = await fleet("ahead-dst-p", 1);
    await acceptFirstPolicy(stayed!);
    expect((await adminRequest("POST", `/api/fleet/agents/${moved!.id}/reassign`, { policy_id: "ahead-dst-p" })).status).toBe(200);
    await checkinRequest(moved!, { agent_policy_id: "ahead-src-p", policy_revision_idx: 2, poll_timeout: "1s" });
    await eventually(async () => {
      const status = await json<{ results: Record<string, number> }>(await adminRequest("GET", "/api/fleet/agent_status?policyId=ahead-dst-p"));
      expect(status.results).toMatchObject({ online: 2, updating: 0 });
      const { item } = await json<{ item: Record<string, unknown> }>(await adminRequest("GET", "/api/fleet/agent_policies/ahead-dst-p/rollout"));
      expect(item).toMatchObject({ latest_revision: 1, agents_total: 2, agents_on_latest: 2, revisions: [{ revision: 2, agents: 1 }, { revision: 1, agents: 1 }] });
    });
  });

  it("refuses to delete a policy with active agents, and deletes an empty one with its keys", async () => {
    await fleet("busy-p", 1);
    const busy = await adminRequest("DELETE", "/api/fleet/agent_policies/busy-p");
    expect(busy.status).toBe(409);
    expect((await json(busy)).message).toContain("1 active agents");

    await putPolicy("empty-p");
    const key = await createEnrollmentKey("empty-p");
    const gone = await adminRequest("DELETE", "/api/fleet/agent_policies/empty-p");
    expect(await gone.json()).toEqual({ id: "empty-p", name: "Linux servers" });
    expect((await adminRequest("GET", "/api/fleet/agent_policies/empty-p")).status).toBe(404);
    const enroll = await agentRequest("POST", "/api/fleet/agents/enroll", { key: key.api_key, body: enrollBody() });
    expect(enroll.status).toBe(401);
  });
});

describe("enrollment keys and admin keys", () => {
  it("lists keys without their secrets and reads one", async () => {
    await putPolicy("keys-list-p");
    const key = await createEnrollmentKey("keys-list-p");
    const listed = await json<{ items: Array<Record<string, unknown>>; total: number }>(await adminRequest("GET", "/api/fleet/enrollment_api_keys?policy_id=keys-list-p"));
    expect(listed.total).toBe(1);
    expect(listed.items[0]).not.toHaveProperty("api_key");
    const one = await json<{ item: Record<string, unknown> }>(await adminRequest("GET", `/api/fleet/enrollment_api_keys/${key.id}`));
    expect(one.item).toMatchObject({ id: key.id, policy_id: "keys-list-p", active: true });
    expect(one.item).not.toHaveProperty("api_key");
  });

  it("creates admin API keys that work on admin routes only, until revoked", async () => {
    const created = await json<{ item: { id: string; api_key: string; name: string } }>(await adminRequest("POST", "/api/fleet/admin_api_keys", { name: "ci-bot" }));
    expect(created.item.api_key).toMatch(/^fleet_admin_/);
    const asKey = (path: string, init: RequestInit = {}) =>
      SELF.fetch(`${BASE}${path}`, { ...init, headers: { Authorization: `Bearer ${created.item.api_key}`, "Content-Type": "application/json" } });
    expect((await asKey("/api/fleet/agent_status")).status).toBe(200);
    const policy = await asKey("/api/fleet/agent_policies/by-key", { method: "PUT", body: JSON.stringify({ name: "k", policy: { outputs: { default: { type: "logstash" } } } }) });
    expect(policy.status).toBe(200);
    const history = await json<{ items: Array<{ created_by: string }> }>(await adminRequest("GET", "/api/fleet/agent_policies/by-key/revisions"));
    expect(history.items[0]!.created_by).toBe("key:ci-bot");

    // Never on agent routes, whichever scheme it is sent with.
    const [agent] = await fleet("admin-key-agent-p", 1);
    const bearer = await agentRequest("POST", `/api/fleet/agents/${agent!.id}/checkin`, { body: { status: "online" }, headers: { Authorization: `Bearer ${created.item.api_key}` } });
    expect(bearer.status).toBe(400);
    const asApiKey = await agentRequest("POST", `/api/fleet/agents/${agent!.id}/checkin`, { key: created.item.api_key, body: { status: "online" } });
    expect(asApiKey.status).toBe(401);

    const listed = await json<{ items: Array<Record<string, unknown>> }>(await adminRequest("GET", "/api/fleet/admin_api_keys"));
    expect(listed.items.find((k) => k.id === created.item.id)).toEqual({ id: created.item.id, name: "ci-bot", created_at: expect.any(String) });
    expect((await adminRequest("DELETE", `/api/fleet/admin_api_keys/${created.item.id}`)).status).toBe(200);
    expect((await asKey("/api/fleet/agent_status")).status).toBe(401);
  });
});

describe("GET /api/openapi.json", () => {
  it("describes every route with its schemas", async () => {
    const res = await SELF.fetch(`${BASE}/api/openapi.json`);
    expect(res.status).toBe(200);
    const doc = await json<{ openapi: string; paths: Record<string, Record<string, unknown>> }>(res);
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/api/fleet/agents/{id}/checkin", "/api/fleet/agents", "/api/fleet/agents/bulk_upgrade"]));
    expect(doc.paths["/api/fleet/agents/{id}/checkin"]).toHaveProperty("post.requestBody");
  });
});
