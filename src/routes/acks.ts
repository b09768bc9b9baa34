import { Hono } from "hono";
import { orAuthError, validateAfterAuth } from "../auth/agent-auth";
import { parseApiKeyHeader } from "../auth/api-key";
import type { AppEnv } from "../config";
import { agentObject, bulkJob, hubShard } from "../durable-stubs";
import { readJsonBody } from "../http/body";
import { agentJson } from "../http/json-response";
import { AckRequest, type AckEvent, type AckResponse } from "../protocol/ack";
import { parseBody } from "../protocol/parse";
import { CLOSE } from "../protocol/socket";

const MAX_BODY = 2 << 20;

/**
 * `POST /api/fleet/agents/{id}/acks` (fleet-protocol.md §6): one item per event in request order,
 * HTTP status = the worst item status, and the body is always the acks JSON agents parse.
 */
export const acks = new Hono<AppEnv>().post("/api/fleet/agents/:id/acks", async (c) => {
  const agentId = c.req.param("id");
  const key = parseApiKeyHeader(c.req.header("Authorization"));
  const events: AckEvent[] = await validateAfterAuth(
    c.env,
    key,
    agentId,
    async () => parseBody(AckRequest, await readJsonBody(c, { maxBytes: MAX_BODY })).events ?? [],
  );
  const outcome = await orAuthError(c.env, key, await agentObject(c.env, agentId).ack(key, events));
  const { items } = outcome;
  // Progress of admin actions, and the policy roster when the ack moved the agent's revision.
  const now = new Date().toISOString();
  await Promise.all([
    ...outcome.results.map((result) => bulkJob(c.env, result.action_id).recordResult(agentId, result.error, now)),
    ...(outcome.summary ? [hubShard(c.env, outcome.policyId, agentId).queueSummary(outcome.policyId, outcome.summary)] : []),
    ...(outcome.unenrolled ? [hubShard(c.env, outcome.policyId, agentId).disconnect(agentId, CLOSE.unenrolled, "agent unenrolled")] : []),
  ]);
  if (items.length === 0) return agentJson(c.req.raw, { action: "acks" } satisfies AckResponse);
  const worst = Math.max(...items.map((item) => item.status));
  const body: AckResponse = worst >= 400 ? { action: "acks", errors: true, items } : { action: "acks", items };
  return agentJson(c.req.raw, body, worst);
});
