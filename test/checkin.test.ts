import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { revisionCache, type RevisionRef } from "../src/checkin/revision-cache";
import { agentObject, hubShard } from "../src/durable-stubs";
import type { PolicyRevision } from "../src/protocol/policy";
import type { AgentDoc } from "../src/protocol/agent-doc";
import {
  ackEvent,
  ackRequest,
  agentRequest,
  checkinRequest,
  createEnrollmentKey,
  enrolledAgent,
  gzip,
  json,
  parkedCount,
  putPolicy,
  queueAction,
  untilParked,
  type Enrolled,
} from "./helpers";

interface CheckinBody {
  ack_token: string;
  action: string;
  actions?: Array<Record<string, unknown> & { id: string; type: string; data: unknown }>;
}

const record = async (id: string): Promise<AgentDoc> => (await agentObject(env, id).record())!;

/** Enrolls, takes the first POLICY_CHANGE and acks it, as an agent's first minute goes. */
async function settledAgent(policyId: string): Promise<Enrolled> {
  const agent = await enrolledAgent(policyId);
  const first = await json<CheckinBody>(await checkinRequest(agent, { status: "starting" }));
  await ackRequest(agent, [ackEvent(agent, first.actions![0]!.id, "POLICY_CHANGE")]);
  return agent;
}

describe("POST /api/fleet/agents/{id}/checkin", () => {
  it("delivers the policy at once on the first check-in (checklist 6)", async () => {
    const { item } = await putPolicy("ci-first", { unknown_top_level: { dropped: true }, signed: { data: "ZGF0YQ==", signature: "c2ln" } });
    const agent = await enrolledAgent("ci-first");
    const res = await checkinRequest(agent, { status: "starting", message: "Waiting for initial configuration and composable variables" });
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toBe("application/json");
    const body = await json<CheckinBody>(res);
    expect(body).toEqual({
      ack_token: "",
      action: "checkin",
      actions: [
        {
          agent_id: agent.id,
          created_at: item.updated_at,
          data: {
            policy: {
              id: "ci-first",
              revision: 1,
              outputs: { default: { type: "elasticsearch", hosts: ["https://es.example.internal:9200"], preset: "balanced" } },
              output_permissions: { default: { _elastic_agent_checks: { cluster: ["monitor"] } } },
              inputs: [{ id: "logfile-system-1", type: "logfile", use_output: "default", streams: [] }],
              agent: { monitoring: { enabled: true, logs: true, metrics: true, namespace: "default", use_output: "default" } },
              fleet: { hosts: ["https://fleet.example.internal:8220"] },
              signed: { data: "ZGF0YQ==", signature: "c2ln" },
            },
          },
          id: "policy:ci-first:1",
          input_type: "",
          type: "POLICY_CHANGE",
        },
      ],
    });
    expect(Object.keys(body.actions![0]!)).toEqual(["agent_id", "created_at", "data", "id", "input_type", "type"]);
    const stored = await record(agent.id);
    expect(stored).toMatchObject({ last_checkin_status: "starting", last_checkin_message: "Waiting for initial configuration and composable variables" });
  });

  it("answers fleet-server's errors for the wrong agent, wrong key type and bad bodies (checklist 7)", async () => {
    const agent = await enrolledAgent("ci-errors");
    const other = await agentRequest("POST", "/api/fleet/agents/someone-else/checkin", { key: agent.key, body: { status: "online" } });
    expect(other.status).toBe(403);
    expect(await other.json()).toEqual({ statusCode: 403, error: "ErrAgentIdentity", message: "Agent header contains wrong identifier" });

    const key = await createEnrollmentKey("ci-errors");
    const withEk = await agentRequest("POST", `/api/fleet/agents/${agent.id}/checkin`, { key: key.api_key, body: { status: "online" } });
    expect(withEk.status).toBe(403);

    const forged = await agentRequest("POST", `/api/fleet/agents/${agent.id}/checkin`, { key: btoa("nobody:nothing"), body: { status: "online" } });
    expect(forged.status).toBe(401);
    expect(await forged.json()).toEqual({ statusCode: 401, error: "ErrUnauthorized", message: "unauthorized" });

    const noStatus = await agentRequest("POST", `/api/fleet/agents/${agent.id}/checkin`, { key: agent.key, body: { message: "x" } });
    expect(noStatus.status).toBe(400);
    expect(await noStatus.json()).toEqual({ statusCode: 400, error: "BadRequest", message: "Bad request: checkin status missing" });

    const badPoll = await agentRequest("POST", `/api/fleet/agents/${agent.id}/checkin`, { key: agent.key, body: { status: "online", poll_timeout: "abc" } });
    expect(badPoll.status).toBe(400);
    expect((await json(badPoll)).error).toBe("BadRequest");

    const badJson = await agentRequest("POST", `/api/fleet/agents/${agent.id}/checkin`, { key: agent.key, body: "{not json" });
    expect(badJson.status).toBe(400);

    // A bad body from someone without a valid key gets the auth error, not the validation error.
    const badBodyForged = await agentRequest("POST", `/api/fleet/agents/${agent.id}/checkin`, { key: btoa("nobody:nothing"), body: { message: "x" } });
    expect(badBodyForged.status).toBe(401);

    // None of the rejected requests touched the record.
    expect((await record(agent.id)).last_checkin).toBeUndefined();
  });

  it("rejects an oversized body with 400 BadRequest, as fleet-server does", async () => {
    const agent = await enrolledAgent("ci-size");
    const res = await checkinRequest(agent, { local_metadata: { padding: "x".repeat((1 << 20) + 10) } });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      statusCode: 400,
      error: "BadRequest",
      message: "Bad request: unable to read request body: http: request body too large",
    });
  });

  it("holds a check-in with nothing pending until the long poll ends, then answers without actions (checklist 8)", async () => {
    const agent = await settledAgent("ci-timeout");
    const started = Date.now();
    const res = await checkinRequest(agent, { agent_policy_id: "ci-timeout", policy_revision_idx: 1 });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ack_token: "", action: "checkin" });
    // The test configuration sets CHECKIN_LONG_POLL=1500ms and no jitter.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
  });

  it("releases a parked check-in with the new revision as soon as it is published", async () => {
    const agent = await settledAgent("ci-release");
    // poll_timeout 10m holds for 8 minutes: only the new revision can end this request.
    const pending = checkinRequest(agent, { agent_policy_id: "ci-release", policy_revision_idx: 1, poll_timeout: "10m" });
    await untilParked("ci-release");
    await putPolicy("ci-release", { agent: { logging: { level: "debug" } } });
    const body = await json<CheckinBody>(await pending);
    expect(body.ack_token).toBe("");
    expect(body.actions).toHaveLength(1);
    expect(body.actions![0]).toMatchObject({ id: "policy:ci-release:2", type: "POLICY_CHANGE", data: { policy: { revision: 2, agent: { logging: { level: "debug" } } } } });
  });

  it("sends the latest revision to an agent that reports an older one, a newer unknown one, or another policy", async () => {
    const agent = await settledAgent("ci-reported");
    await putPolicy("ci-reported", { agent: { logging: { level: "info" } } });
    const older = await json<CheckinBody>(await checkinRequest(agent, { agent_policy_id: "ci-reported", policy_revision_idx: 1 }));
    expect(older.actions![0]!.id).toBe("policy:ci-reported:2");
    const future = await json<CheckinBody>(await checkinRequest(agent, { agent_policy_id: "ci-reported", policy_revision_idx: 9 }));
    expect(future.actions![0]!.id).toBe("policy:ci-reported:2");
    const reassigned = await json<CheckinBody>(await checkinRequest(agent, { agent_policy_id: "elsewhere", policy_revision_idx: 2 }));
    expect(reassigned.actions![0]!.id).toBe("policy:ci-reported:2");
    // Reporting the current revision counts as having it: the record follows, no ack needed.
    const current = await checkinRequest(agent, { agent_policy_id: "ci-reported", policy_revision_idx: 2 });
    expect(await current.json()).toEqual({ ack_token: "", action: "checkin" });
    expect(await record(agent.id)).toMatchObject({ agent_policy_id: "ci-reported", policy_revision_idx: 2 });
  });

  it("sends a revision over the shard hop once per isolate, then only its name, with the same answer", async () => {
    const first = await enrolledAgent("ci-by-name");
    const second = await enrolledAgent("ci-by-name");
    const { shard, index } = hubShard(env, "ci-by-name", first.id);
    const park = (known?: RevisionRef) => shard.park("ci-by-name", { agentId: first.id, shard: index, claim: { stored: 0 }, actionSeq: 0, holdMs: 1000, ...(known ? { known } : {}) });

    const sent = await park();
    if (sent.kind !== "policy" || sent.json === undefined) throw new Error(`expected the revision as JSON, got ${JSON.stringify(sent)}`);
    const revision = JSON.parse(sent.json) as PolicyRevision;
    expect(sent.ref).toEqual({ revision: 1, created_at: revision.created_at });
    expect(revision).toMatchObject({ policy_id: "ci-by-name", revision: 1 });
    expect(await park(sent.ref)).toEqual({ kind: "policy", ref: sent.ref, shards: 4 });
    // Any other name gets the JSON again.
    expect(await park({ revision: 1, created_at: "2000-01-01T00:00:00.000Z" })).toEqual(sent);

    // Over HTTP: the second agent's answer comes from the isolate's copy, and is the same but for the agent.
    const a = await json<CheckinBody>(await checkinRequest(first));
    const b = await json<CheckinBody>(await checkinRequest(second));
    expect(revisionCache.get("ci-by-name")).toMatchObject({ revision: 1, created_at: revision.created_at });
    expect({ ...b.actions![0], agent_id: first.id }).toEqual(a.actions![0]);
    expect(a.actions![0]).toMatchObject({ id: "policy:ci-by-name:1", created_at: revision.created_at, data: { policy: { id: "ci-by-name", revision: 1 } } });
  });

  it("delivers a stored action with unknown data keys stripped, and never again past its ack_token (checklist 9)", async () => {
    const agent = await settledAgent("ci-actions");
    const expiration = new Date(Date.now() + 3_600_000).toISOString();
    const action = await queueAction(agent.id, { type: "SETTINGS", data: { log_level: "debug", junk: 1 }, expiration });
    const res = await checkinRequest(agent);
    const body = await json<CheckinBody>(res);
    expect(body.ack_token).toBe(action.id);
    expect(body.actions).toEqual([
      { agent_id: agent.id, created_at: expect.any(String), data: { log_level: "debug" }, expiration, id: action.id, input_type: "", type: "SETTINGS" },
    ]);
    const again = await checkinRequest(agent, { ack_token: body.ack_token, agent_policy_id: "ci-actions", policy_revision_idx: 1 });
    expect(await again.json()).toEqual({ ack_token: action.id, action: "checkin" });
    expect((await record(agent.id)).action_seq_no[0]).toBeGreaterThan(0);
  });

  it("wakes a parked check-in with a new action", async () => {
    const agent = await settledAgent("ci-push");
    const pending = checkinRequest(agent, { agent_policy_id: "ci-push", policy_revision_idx: 1, poll_timeout: "10m" });
    await untilParked("ci-push");
    const action = await queueAction(agent.id, { type: "UPGRADE", data: { version: "9.6.0", source_uri: "https://artifacts.example/" }, start_time: "2026-12-01T02:00:00Z" });
    const body = await json<CheckinBody>(await pending);
    expect(body.ack_token).toBe(action.id);
    expect(body.actions).toEqual([
      expect.objectContaining({ id: action.id, type: "UPGRADE", data: { version: "9.6.0", source_uri: "https://artifacts.example/" }, start_time: "2026-12-01T02:00:00Z" }),
    ]);
  });

  it("never delivers expired actions or types agents must not receive", async () => {
    const agent = await settledAgent("ci-never");
    await queueAction(agent.id, { type: "UPDATE_TAGS", data: { tags: ["x"] } });
    await queueAction(agent.id, { type: "FORCE_UNENROLL" });
    const soon = new Date(Date.now() + 300).toISOString();
    await queueAction(agent.id, { type: "SETTINGS", data: { log_level: "info" }, expiration: soon });
    await new Promise((resolve) => setTimeout(resolve, 400));
    const res = await checkinRequest(agent, { agent_policy_id: "ci-never", policy_revision_idx: 1 });
    expect(await res.json()).toEqual({ ack_token: "", action: "checkin" });
  });

  it("does not redeliver an action the agent already acked, even without its ack_token", async () => {
    const agent = await settledAgent("ci-acked");
    const action = await queueAction(agent.id, { type: "SETTINGS", data: { log_level: "error" } });
    await checkinRequest(agent);
    await ackRequest(agent, [ackEvent(agent, action.id, "SETTINGS")]);
    const res = await checkinRequest(agent, { agent_policy_id: "ci-acked", policy_revision_idx: 1 });
    expect((await json<CheckinBody>(res)).actions).toBeUndefined();
  });

  it("records status, components, unhealthy reasons and upgrade details", async () => {
    const agent = await settledAgent("ci-status");
    const components = [
      {
        id: "log-default",
        type: "log",
        status: "DEGRADED",
        message: "degraded",
        units: [
          { id: "log-default", type: "output", status: "HEALTHY", message: "Healthy" },
          { id: "log-default-logfile", type: "input", status: "DEGRADED", message: "cannot read" },
        ],
      },
    ];
    const upgrade_details = { target_version: "9.6.1", state: "UPG_DOWNLOADING", action_id: "u1", metadata: { download_percent: 0.42 } };
    const res = await checkinRequest(agent, { status: "DEGRADED", message: "1 or more components/units in a degraded state", components, upgrade_details, agent_policy_id: "ci-status", policy_revision_idx: 1 });
    expect(res.status).toBe(200);
    expect(await record(agent.id)).toMatchObject({
      last_checkin_status: "DEGRADED",
      components,
      unhealthy_reason: ["input"],
      upgrade_details,
    });
    // Once the agent stops reporting the upgrade, it is complete.
    await checkinRequest(agent, { agent_policy_id: "ci-status", policy_revision_idx: 1 });
    const after = await record(agent.id);
    expect(after.upgrade_details).toBeNull();
    expect(after.upgraded_at).toEqual(expect.any(String));

    const invalid = await checkinRequest(agent, { upgrade_details: { target_version: "9.6.1", state: "UPG_FAILED", metadata: {} } });
    expect(invalid.status).toBe(400);
    expect(await invalid.json()).toEqual({ statusCode: 400, error: "BadRequest", message: "Bad request: upgrade_details.metadata.error_msg: required for UPG_FAILED" });
  });

  it("accepts a gzip request body and compresses a large answer only for Accept-Encoding exactly gzip (checklist 13)", async () => {
    await putPolicy("ci-gzip", { inputs: Array.from({ length: 40 }, (_, i) => ({ id: `input-${i}`, type: "logfile", use_output: "default" })) });
    const agent = await enrolledAgent("ci-gzip");
    const body = JSON.stringify({ status: "starting", message: "", components: null, upgrade: {} });
    const zipped = await agentRequest("POST", `/api/fleet/agents/${agent.id}/checkin`, {
      key: agent.key,
      body: await gzip(body),
      headers: { "Content-Encoding": "gzip", "Accept-Encoding": "gzip" },
    });
    expect(zipped.status).toBe(200);
    expect(zipped.headers.get("Content-Encoding")).toBe("gzip");
    // workerd's fetch client undoes the encoding (as Go's transport does); the e2e test checks the bytes on the wire.
    expect((await json<CheckinBody>(zipped)).actions![0]!.id).toBe("policy:ci-gzip:1");

    const listed = await checkinRequest(agent, { status: "starting" }, { "Accept-Encoding": "gzip, deflate" });
    expect(listed.headers.get("Content-Encoding")).toBeNull();
    expect((await json<CheckinBody>(listed)).actions![0]!.id).toBe("policy:ci-gzip:1");
  });
});

describe("a client that goes away", () => {
  it("frees its parked check-in at once instead of at the deadline", async () => {
    const agent = await settledAgent("ci-abort");
    const controller = new AbortController();
    const pending = checkinRequest(agent, { agent_policy_id: "ci-abort", policy_revision_idx: 1, poll_timeout: "10m" }, {}, controller.signal).catch(() => "aborted");
    await untilParked("ci-abort");
    controller.abort();
    expect(await pending).toBe("aborted");
    for (let i = 0; i < 100 && (await parkedCount("ci-abort")) > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await parkedCount("ci-abort")).toBe(0);
  });
});
