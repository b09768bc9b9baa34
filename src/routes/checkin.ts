import { Hono, type Context } from "hono";
import type { CheckinInput } from "../../durable/agent";
import { orAuthError, validateAfterAuth } from "../auth/agent-auth";
import { parseApiKeyHeader } from "../auth/api-key";
import { checkinInput } from "../checkin/checkin-input";
import { pollDuration } from "../checkin/poll-duration";
import { refOf, revisionCache } from "../checkin/revision-cache";
import { policyChangeAnswer } from "../checkin/policy-change";
import { fleetConfig, type AppEnv } from "../config";
import { agentObject, hubShard } from "../durable-stubs";
import { esConfig } from "../es/config";
import { keyedOutputs } from "../policy/output-keys";
import { FleetError, badRequest } from "../errors";
import { readJsonBody } from "../http/body";
import { agentJson, agentJsonText } from "../http/json-response";
import type { DeliveredAction } from "../protocol/action";
import { CheckinRequest, type CheckinResponse } from "../protocol/checkin";
import { parseGoDuration } from "../protocol/duration";
import { parseBody } from "../protocol/parse";
import { checkUserAgent } from "../protocol/user-agent";

/** fleet-server's check-in body limits: 1 MiB as sent, 20 MiB once gunzipped. */
const BODY_LIMITS = { maxBytes: 1 << 20, maxDecompressedBytes: 20 << 20 };

/**
 * `POST /api/fleet/agents/{id}/checkin` (fleet-protocol.md §2.3). The agent's store records the
 * check-in and returns pending actions; with none, the request parks in the policy's hub until a new
 * revision or an action arrives, or the long poll ends.
 */
export const checkin = new Hono<AppEnv>().post("/api/fleet/agents/:id/checkin", async (c) => {
  const started = Date.now();
  const agentId = c.req.param("id");
  const key = parseApiKeyHeader(c.req.header("Authorization"));
  const { input, pollTimeoutMs } = await validateAfterAuth(c.env, key, agentId, () => parseCheckin(c));

  const agent = agentObject(c.env, agentId);
  const outcome = await orAuthError(c.env, key, await agent.checkin(key, input));
  const shard = hubShard(c.env, outcome.policyId, agentId);
  // This poll took delivery over from the agent's socket: close it before anything is pushed there.
  if (outcome.replacedSocket) await shard.supersedeSocket(agentId, outcome.replacedSocket);
  if (outcome.actions.length > 0) {
    if (outcome.summary) await shard.queueSummary(outcome.policyId, outcome.summary);
    return respond(c, outcome.ackToken, outcome.actions);
  }

  const holdMs = pollDuration(fleetConfig(c.env).checkin, pollTimeoutMs, Date.now() - started);
  // An agent in on_state_change mode cancels its poll and re-checks in: free the waiter at once.
  c.req.raw.signal.addEventListener("abort", () => c.executionCtx.waitUntil(shard.abandon(agentId)), { once: true });
  const held = revisionCache.get(outcome.policyId);
  const parked = await shard.park(outcome.policyId, {
    agentId,
    claim: outcome.claim,
    actionSeq: outcome.actionSeq,
    holdMs,
    ...(outcome.summary ? { summary: outcome.summary } : {}),
    ...(held ? { known: refOf(held) } : {}),
  });
  switch (parked.kind) {
    case "policy": {
      const revision = revisionCache.resolve(outcome.policyId, parked.ref, parked.json, held);
      const keys = esConfig(c.env) ? await agent.outputKeys(await keyedOutputs(revision)) : {};
      // A synthesised POLICY_CHANGE never moves the agent's ack_token.
      return agentJsonText(c.req.raw, policyChangeAnswer(agentId, revision, keys));
    }
    case "actions": {
      const pending = await agent.pendingActions(input.ackToken);
      return respond(c, pending.ackToken, pending.actions);
    }
    case "timeout":
      return respond(c, input.ackToken ?? "", []);
    case "busy":
      // The check-in's status is already recorded; only the wait is refused.
      throw new FleetError(parked.error, undefined, parked.retryAfterMs);
  }
});

/** Validates User-Agent and body into what the agent's store records. */
async function parseCheckin(c: Context<AppEnv>): Promise<{ input: CheckinInput; pollTimeoutMs?: number }> {
  const version = checkUserAgent(c.req.header("User-Agent"), fleetConfig(c.env).version);
  const raw = await readJsonBody(c, BODY_LIMITS);
  // fleet-server's exact message for the one field it checks itself.
  const status = (raw as { status?: unknown } | null)?.status;
  if (typeof status !== "string" || status === "") throw badRequest("checkin status missing");
  const body = parseBody(CheckinRequest, raw);
  let pollTimeoutMs: number | undefined;
  if (body.poll_timeout !== undefined) {
    const parsed = parseGoDuration(body.poll_timeout);
    if (parsed === null || parsed < 0) throw badRequest(`poll_timeout: ${JSON.stringify(body.poll_timeout)} is not a duration`);
    pollTimeoutMs = parsed;
  }
  const input = checkinInput(body, version);
  return pollTimeoutMs === undefined ? { input } : { input, pollTimeoutMs };
}

function respond(c: Context<AppEnv>, ackToken: string, actions: DeliveredAction[]): Response {
  const body: CheckinResponse = actions.length > 0 ? { ack_token: ackToken, action: "checkin", actions } : { ack_token: ackToken, action: "checkin" };
  return agentJson(c.req.raw, body);
}
