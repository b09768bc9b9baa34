import { describe, expect, it } from "vitest";
import { policyChangeAction, policyChangeAnswer } from "../../src/checkin/policy-change";
import type { PolicyRevision } from "../../src/protocol/policy";

const revision: PolicyRevision = {
  policy_id: "p-1",
  revision: 7,
  name: "P",
  namespace: "default",
  created_at: "2026-11-28T12:00:00.000Z",
  policy: {
    outputs: {
      default: { type: "elasticsearch", hosts: ["https://es:9200"] },
      remote: { type: "remote_elasticsearch", hosts: ["https://far:9200"], service_token: "secret" },
    },
    inputs: [{ id: "in", type: "logfile", streams: [{ paths: ["/var/log/*.log"] }] }],
    agent: { logging: { level: "info" } },
    not_for_agents: { dropped: true },
  },
};

const expected = (agentId: string, keys: Record<string, string> = {}) =>
  JSON.stringify({ ack_token: "", action: "checkin", actions: [policyChangeAction(agentId, revision, keys)] });

describe("policyChangeAnswer", () => {
  it("writes exactly what JSON.stringify writes, with and without output keys", () => {
    for (const agentId of ["agent-1", 'quote"and\\slash', "h\u00e9-\u2028"]) {
      expect(policyChangeAnswer(agentId, revision)).toBe(expected(agentId));
      expect(policyChangeAnswer(agentId, revision, { default: "id:key" })).toBe(expected(agentId, { default: "id:key" }));
    }
  });

  it("serialises a revision's policy once and reuses it for every agent", () => {
    const own = structuredClone(revision);
    const first = policyChangeAnswer("a", own);
    // Revisions are immutable, so a change made behind the cache's back shows whether it was reused.
    (own.policy.agent as { logging: { level: string } }).logging.level = "debug";
    expect(policyChangeAnswer("b", own)).toBe(first.replace('"agent_id":"a"', '"agent_id":"b"'));
    // Another revision object is serialised afresh.
    expect(policyChangeAnswer("b", structuredClone(own))).toContain('"level":"debug"');
  });
});
