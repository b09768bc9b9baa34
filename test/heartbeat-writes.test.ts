import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { AgentStore, CHECKIN_FLUSH_MS } from "../durable/agent-store";
import { agentStoreName } from "../src/agents/agent-stores";
import { parseApiKeyHeader } from "../src/auth/api-key";
import { adminRequest, enrolledAgent, json } from "./helpers";

/** `n` client-chosen agent ids that hash to the same store object. */
function sameStore(prefix: string, n: number): string[] {
  const byStore = new Map<string, string[]>();
  for (let i = 0; ; i++) {
    const id = `${prefix}-${i}`;
    const ids = byStore.get(agentStoreName(id)) ?? [];
    ids.push(id);
    byStore.set(agentStoreName(id), ids);
    if (ids.length === n) return ids;
  }
}

describe("a flush of held heartbeats (rows written are what Cloudflare bills)", () => {
  it("sends the policy's hub every agent's new time in one effect row, and the listing shows each", async () => {
    const policyId = "heartbeat-writes-p";
    const ids = sameStore("heartbeat-writes", 3);
    const agents: Array<{ id: string; key: string }> = [];
    for (const id of ids) agents.push(await enrolledAgent(policyId, { id }));
    const stub = env.AGENT_STORES.get(env.AGENT_STORES.idFromName(agentStoreName(ids[0]!)));
    await runInDurableObject(stub, async (instance: unknown, state: DurableObjectState) => {
      const store = instance as AgentStore;
      const checkin = async (agent: { id: string; key: string }) => {
        const outcome = await store.call(agent.id, "checkin", [parseApiKeyHeader(`ApiKey ${agent.key}`), { status: "online", message: "Running", version: "9.6.0" }]);
        if ("error" in outcome) throw new Error(outcome.error);
      };
      const effectRowsInserted = () => state.storage.sql.exec<{ seq: number }>("SELECT seq FROM sqlite_sequence WHERE name = 'effects'").toArray()[0]?.seq ?? 0;

      // First check-ins change the record (status): written at once; deliver their roster rows.
      for (const agent of agents) await checkin(agent);
      await store.alarm();
      // Heartbeats: only the times move, held in memory.
      await new Promise((resolve) => setTimeout(resolve, 5));
      for (const agent of agents) await checkin(agent);
      const held = await Promise.all(agents.map(async (agent) => (await store.call(agent.id, "record", []))!.last_checkin!));

      const before = effectRowsInserted();
      const due = vi.spyOn(Date, "now").mockReturnValue(Date.now() + CHECKIN_FLUSH_MS + 1);
      try {
        await store.alarm();
      } finally {
        due.mockRestore();
      }
      // Three heartbeats of one policy: one outbox row (one insert, one delete), not three.
      expect(effectRowsInserted() - before).toBe(1);
      expect(state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM effects").one().n).toBe(0);

      const listed = await json<{ items: Array<{ id: string; last_checkin: string }> }>(await adminRequest("GET", `/api/fleet/agents?policy_id=${policyId}`));
      expect(Object.fromEntries(listed.items.map((a) => [a.id, a.last_checkin]))).toEqual(Object.fromEntries(ids.map((id, i) => [id, held[i]])));
    });
  });

  it("delivers a backlog of many flushes' times in order, in calls the hub can take", async () => {
    const policyId = "heartbeat-backlog-p";
    const [id] = sameStore("heartbeat-backlog", 1);
    const agent = await enrolledAgent(policyId, { id: id! });
    const stub = env.AGENT_STORES.get(env.AGENT_STORES.idFromName(agentStoreName(agent.id)));
    await runInDurableObject(stub, async (instance: unknown, state: DurableObjectState) => {
      const store = instance as AgentStore;
      await store.alarm();
      // Six flushes held back (a hub outage), 1,000 times each with the agent's among them: 6,000
      // changes, more than one call carries. The newest row's time is the one that must stay.
      const times: string[] = [];
      for (let flush = 0; flush < 6; flush++) {
        const at = new Date(Date.UTC(2030, 0, 1, 0, flush)).toISOString();
        times.push(at);
        const entries = Array.from({ length: 999 }, (_, i) => [`absent-${flush}-${i}`, at]);
        entries.splice(flush * 100, 0, [agent.id, at]);
        state.storage.sql.exec("INSERT INTO effects (kind, target, agent_id, body) VALUES ('hub', ?, '', ?)", policyId, JSON.stringify({ type: "touches", times: entries }));
      }
      await store.alarm();
      expect(state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM effects").one().n).toBe(0);
      const listed = await json<{ items: Array<{ id: string; last_checkin: string }> }>(await adminRequest("GET", `/api/fleet/agents?policy_id=${policyId}`));
      expect(listed.items.map((a) => [a.id, a.last_checkin])).toEqual([[agent.id, times[5]]]);
    });
  });
});
