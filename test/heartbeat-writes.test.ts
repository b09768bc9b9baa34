import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { AgentStore } from "../durable/agent-store";
import { agentStoreName } from "../src/agents/agent-stores";
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

// One flush's times sharing one effect row: test/agent-store.test.ts. These are what such rows meet
// on their way to the hub.
describe("roster times on their way to the hub", () => {
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
        // Later than any real check-in of this run, one minute apart, so only the order decides.
        const at = new Date(Date.now() + 3_600_000 + flush * 60_000).toISOString();
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

  it("still applies a one-agent time row written before shared rows existed (in an outbox at the deploy), never as a removal", async () => {
    const policyId = "heartbeat-legacy-p";
    const [id] = sameStore("heartbeat-legacy", 1);
    const agent = await enrolledAgent(policyId, { id: id! });
    const stub = env.AGENT_STORES.get(env.AGENT_STORES.idFromName(agentStoreName(agent.id)));
    await runInDurableObject(stub, async (instance: unknown, state: DurableObjectState) => {
      const store = instance as AgentStore;
      await store.alarm();
      const at = new Date(Date.now() + 3_600_000).toISOString();
      state.storage.sql.exec("INSERT INTO effects (kind, target, agent_id, body, coalesce_key) VALUES ('hub', ?, ?, ?, ?)", policyId, agent.id, JSON.stringify({ type: "touch", lastCheckin: at }), `touch:${policyId}:${agent.id}`);
      await store.alarm();
      expect(state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM effects").one().n).toBe(0);
      const listed = await json<{ items: Array<{ id: string; last_checkin: string }> }>(await adminRequest("GET", `/api/fleet/agents?policy_id=${policyId}`));
      expect(listed.items.map((a) => [a.id, a.last_checkin])).toEqual([[agent.id, at]]);
    });
  });
});
