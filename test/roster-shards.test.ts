import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { AgentEffects } from "../durable/agent-effects";
import { AgentRoster } from "../durable/agent-roster";
import { ROSTER_LAYOUT_SCHEMA } from "../durable/sharded-roster";
import { agentStoreName } from "../src/agents/agent-stores";
import { minuteOf } from "../src/agents/checkin-rate";
import { policyHub, rosterShardIndexOf } from "../src/durable-stubs";
import { adminRequest, agentSummary, checkinRequest, checkinsCounted, enrolledOnRevision1, eventually, json, type Enrolled } from "./helpers";

/**
 * A policy whose roster is spread over roster shards (docs/scale.md §2). This file runs in the
 * `workers-sharded-roster` project (vitest.config.ts), where every new policy gets 4: the hub's own
 * part and three `RosterShard` objects. Agents are enrolled and check in through the real Worker.
 */

interface Listed {
  id: string;
  status: string;
  hostname: string | null;
  enrolled_at: string;
  last_checkin: string | null;
  agent: { version: string | null };
}
interface Page {
  items: Listed[];
  total: number;
  nextSearchAfter?: string;
}

const SHARDS = 4;
const list = async (query: string) => json<Page>(await adminRequest("GET", `/api/fleet/agents?${query}`));

/** Enrolls `count` agents (hostnames repeat every 3, so sorts have ties), each checked in and on revision 1. */
const fleet = (policyId: string, count: number): Promise<Enrolled[]> =>
  enrolledOnRevision1(policyId, count, (i) => ({ id: `${policyId}-${i}`, metadata: { local: { host: { hostname: `host-${i % 3}` } }, user_provided: {}, tags: null } }));

/** The agent ids each part of a policy's roster holds: part 0 in the hub, the others in roster shards. */
async function parts(policyId: string): Promise<string[][]> {
  const ids = (state: DurableObjectState) => state.storage.sql.exec<{ agent_id: string }>("SELECT agent_id FROM roster ORDER BY agent_id").toArray().map((row) => row.agent_id);
  const hub = await runInDurableObject(env.POLICY_HUBS.get(env.POLICY_HUBS.idFromName(policyId)), async (_instance, state: DurableObjectState) => ids(state));
  const shards = await Promise.all(
    Array.from({ length: SHARDS - 1 }, (_, i) =>
      runInDurableObject(env.ROSTER_SHARDS.get(env.ROSTER_SHARDS.idFromName(`${policyId}#roster-${i + 1}`)), async (_instance, state: DurableObjectState) => ids(state)),
    ),
  );
  return [hub, ...shards];
}

/** Every page of a listing, following nextSearchAfter. */
async function allPages(query: string): Promise<Listed[]> {
  const seen: Listed[] = [];
  let cursor: string | undefined;
  do {
    const page = await list(`${query}${cursor ? `&searchAfter=${encodeURIComponent(cursor)}` : ""}`);
    seen.push(...page.items);
    cursor = page.nextSearchAfter;
  } while (cursor);
  return seen;
}

/** The listing's order: the field (nulls last), then the agent id. */
function sortedBy(items: Listed[], field: (agent: Listed) => string | null, order: "asc" | "desc"): Listed[] {
  const direction = order === "asc" ? 1 : -1;
  return [...items].sort((a, b) => {
    const x = field(a);
    const y = field(b);
    if (x !== y) {
      if (x === null) return 1;
      if (y === null) return -1;
      return (x < y ? -1 : 1) * direction;
    }
    return a.id < b.id ? -1 : 1;
  });
}

describe("a policy with several roster shards", () => {
  it("keeps each agent's row in the shard its id hashes to, and lists, pages and counts across all of them", async () => {
    const agents = await fleet("sharded-list", 30);
    expect(await policyHub(env, "sharded-list").rosterShards("sharded-list")).toBe(SHARDS);
    // Enrollment lists an agent at once; its check-in and ack reach the roster within the effects' bound.
    await eventually(async () => expect((await json<{ results: Record<string, number> }>(await adminRequest("GET", "/api/fleet/agent_status?policyId=sharded-list"))).results.online).toBe(30));

    const held = await parts("sharded-list");
    expect(held.flat().sort()).toEqual(agents.map((a) => a.id).sort());
    held.forEach((ids, index) => {
      expect(ids.length).toBeGreaterThan(0);
      for (const id of ids) expect(rosterShardIndexOf(id, SHARDS)).toBe(index);
    });

    // The whole listing in one page, then in pages of 7 by cursor and by page number: the same
    // agents in the same order, each once, for sorts with ties (hostname, version) and without.
    for (const [sortField, order, field] of [
      ["agent_id", "asc", (a: Listed) => a.id],
      ["hostname", "desc", (a: Listed) => a.hostname],
      ["version", "asc", (a: Listed) => a.agent.version],
      ["enrolled_at", "desc", (a: Listed) => a.enrolled_at],
      ["last_checkin", "asc", (a: Listed) => a.last_checkin],
    ] as const) {
      const query = `policy_id=sharded-list&sortField=${sortField}&sortOrder=${order}`;
      const whole = await list(`${query}&perPage=100`);
      expect(whole.total).toBe(30);
      expect(whole.items.map((a) => a.id)).toEqual(sortedBy(whole.items, field, order).map((a) => a.id));
      expect(new Set(whole.items.map((a) => a.id)).size).toBe(30);
      const byCursor = await allPages(`${query}&perPage=7`);
      expect(byCursor.map((a) => a.id)).toEqual(whole.items.map((a) => a.id));
      const byNumber = await Promise.all([1, 2, 3, 4, 5].map(async (page) => (await list(`${query}&perPage=7&page=${page}`)).items));
      expect(byNumber.flat().map((a) => a.id)).toEqual(whole.items.map((a) => a.id));
    }
    // Across policies the merge of merged pages holds the same agents.
    const everywhere = await allPages("sortField=agent_id&sortOrder=asc&perPage=9&kuery=sharded-list");
    expect(everywhere.map((a) => a.id)).toEqual(agents.map((a) => a.id).sort());

    // Statuses move agents between counters in whichever shard holds them; counts and filters agree.
    // (Up to date, so each check-in parks for the test's 1.5 s long poll: sent together.)
    await Promise.all(
      agents
        .filter((_, i) => i % 5 === 0)
        .map((agent, i) => checkinRequest(agent, { agent_policy_id: "sharded-list", policy_revision_idx: 1, status: i % 2 === 0 ? "degraded" : "error" }).then((res) => res.text())),
    );
    const expected = { online: 24, degraded: 3, error: 3 };
    await eventually(async () =>
      expect((await json<{ results: Record<string, number> }>(await adminRequest("GET", "/api/fleet/agent_status?policyId=sharded-list"))).results).toMatchObject({
        ...expected,
        total: 30,
        offline: 0,
      }),
    );
    for (const [status, n] of Object.entries(expected)) expect((await list(`policy_id=sharded-list&perPage=100&status=${status}`)).total).toBe(n);

    // Offset paging merges each shard's first page * perPage rows, so it stops where it does across policies.
    const deep = await adminRequest("GET", "/api/fleet/agents?policy_id=sharded-list&page=200&perPage=100");
    expect(await json(deep)).toEqual({
      statusCode: 400,
      error: "BadRequest",
      message: "page * perPage may not exceed 10000 in a policy whose roster is sharded; page with searchAfter (each page's nextSearchAfter) to go deeper",
    });
  });

  it("resolves a bulk operation on the policy from every shard, and deleting the policy empties them all", async () => {
    const agents = await fleet("sharded-delete", 12);
    const held = await parts("sharded-delete");
    expect(held.filter((ids) => ids.length > 0).length).toBeGreaterThan(1);

    const revoke = await adminRequest("POST", "/api/fleet/agents/bulk_unenroll", { policy_id: "sharded-delete", revoke: true });
    expect(revoke.status).toBe(200);
    await eventually(async () =>
      expect((await json<{ results: Record<string, number> }>(await adminRequest("GET", "/api/fleet/agent_status?policyId=sharded-delete"))).results).toMatchObject({
        unenrolled: agents.length,
        total: agents.length,
      }),
    );
    const deleted = await adminRequest("DELETE", "/api/fleet/agent_policies/sharded-delete");
    expect(deleted.status).toBe(200);
    expect(await parts("sharded-delete")).toEqual([[], [], [], []]);
  });

  it("refuses to delete a policy while any shard holds an active agent", async () => {
    await fleet("sharded-busy", 6);
    const res = await adminRequest("DELETE", "/api/fleet/agent_policies/sharded-busy");
    expect(res.status).toBe(409);
    expect((await json<{ message: string }>(res)).message).toBe("cannot delete an agent policy with 6 active agents; reassign or unenroll them first");
  });

  it("keeps a policy's part count for life, and a hub that held rows before roster shards at one", async () => {
    expect(await policyHub(env, "sharded-fresh").rosterShards("sharded-fresh")).toBe(SHARDS);
    await runInDurableObject(env.POLICY_HUBS.get(env.POLICY_HUBS.idFromName("sharded-earlier")), async (_instance, state: DurableObjectState) => {
      // As the schema step finds a hub of an earlier version: roster rows, and no layout yet.
      state.storage.sql.exec("DELETE FROM roster_meta WHERE k = 'shards'");
      new AgentRoster(state.storage.sql).upsert(agentSummary("earlier-agent", { last_checkin: null, last_checkin_status: null, last_checkin_message: null }), 1);
      state.storage.sql.exec(ROSTER_LAYOUT_SCHEMA);
    });
    expect(await policyHub(env, "sharded-earlier").rosterShards("sharded-earlier")).toBe(1);
    expect((await json<{ results: Record<string, number> }>(await adminRequest("GET", "/api/fleet/agent_status?policyId=sharded-earlier"))).results).toMatchObject({ enrolling: 1, total: 1 });
  });

  it("sends a flush's check-in counts to the hub with the times, also when none of the times is for the hub's part", async () => {
    const [agent] = (await fleet("sharded-counts", 6)).filter((a) => rosterShardIndexOf(a.id, SHARDS) !== 0);
    const minute = minuteOf(Date.now());
    const before = await checkinsCounted("sharded-counts");
    const at = new Date().toISOString();
    await runInDurableObject(env.AGENT_STORES.get(env.AGENT_STORES.idFromName(agentStoreName(agent!.id))), async (_instance, state: DurableObjectState) => {
      const effects = new AgentEffects(state.storage, env, async () => undefined, "sharded-counts-test");
      effects.collectTouches(new Map([["sharded-counts", [[minute, 5]]]]), () => effects.touch("sharded-counts", agent!.id, at));
      await effects.deliver();
      expect(effects.pending()).toBe(0);
    });
    // The hub counted the batch (in an otherwise empty call), and the agent's part has its time.
    expect((await checkinsCounted("sharded-counts")) - before).toBe(5);
    expect((await allPages("kuery=policy_id:sharded-counts")).find((a) => a.id === agent!.id)?.last_checkin).toBe(at);
  });
});

