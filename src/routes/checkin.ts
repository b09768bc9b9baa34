import { Hono, type Context } from "hono";
import { orAuthError, validateAfterAuth } from "../auth/agent-auth";
import { parseApiKeyHeader } from "../auth/api-key";
import { checkinInput } from "../checkin/checkin-input";
import { pollDuration } from "../checkin/poll-duration";
import { refOf, revisionCache } from "../checkin/revision-cache";
import { fleetConfig, type AppEnv } from "../config";
import { callAgentShard } from "../checkin/agent-shard";
import { agentObject } from "../durable-stubs";
import { badRequest } from "../errors";
import { readJsonBody } from "../http/body";
import { agentJson, agentJsonText } from "../http/json-response";
import { CheckinRequest, type CheckinResponse } from "../protocol/checkin";
import { parseGoDuration } from "../protocol/duration";
import { parseBody } from "../protocol/parse";
import { checkUserAgent } from "../protocol/user-agent";
import { checkin as checkinFlow } from "../session/checkin";
import type { CheckinInput } from "../session/contract";

/** fleet-server's check-in body limits: 1 MiB as sent, 20 MiB once gunzipped. */
const BODY_LIMITS = { maxBytes: 1 << 20, maxDecompressedBytes: 20 << 20 };

/**
 * `POST /api/fleet/agents/{id}/checkin` (fleet-protocol.md §2.3): the long-poll codec over the
 * session's check-in flow (src/session/checkin.ts). Waiting means parking in the policy's shard
 * until a revision the agent is behind or an action arrives, or the long poll ends.
 */
export const checkin = new Hono<AppEnv>().post("/api/fleet/agents/:id/checkin", async (c) => {
  const started = Date.now();
  const agentId = c.req.param("id");
  const key = parseApiKeyHeader(c.req.header("Authorization"));
  const { input, pollTimeoutMs } = await validateAfterAuth(c.env, key, agentId, () => parseCheckin(c));

  const answer = await checkinFlow(c.env, agentId, {
    record: () => agentObject(c.env, agentId).checkin(key, input),
    wait: async (outcome) => {
      const held = revisionCache.get(outcome.policyId);
      const parked = await callAgentShard(
        c.env,
        outcome.policyId,
        agentId,
        (shard, index) => {
          const holdMs = pollDuration(fleetConfig(c.env).checkin, pollTimeoutMs, Date.now() - started);
          // An agent in on_state_change mode cancels its poll and re-checks in: free the waiter at once.
          const abandon = () => c.executionCtx.waitUntil(shard.abandon(agentId));
          c.req.raw.signal.addEventListener("abort", abandon, { once: true });
          return shard
            .park(outcome.policyId, { agentId, shard: index, claim: outcome.claim, actionSeq: outcome.actionSeq, holdMs, ...(held ? { known: refOf(held) } : {}) })
            .finally(() => c.req.raw.signal.removeEventListener("abort", abandon));
        },
        (answer) => (answer.kind === "moved" ? answer.shards : null),
      );
      switch (parked.kind) {
        case "policy":
          revisionCache.learnShards(outcome.policyId, parked.shards);
          return { kind: "policy", revision: revisionCache.resolve(outcome.policyId, parked.ref, parked.json, held) };
        case "actions":
          return { kind: "actions" };
        // Moved twice means the policy's shards are changing right now; the agent's next check-in finds its shard.
        case "timeout":
        case "moved":
          return { kind: "none" };
        case "busy":
          // The check-in's status is already recorded; only the wait is refused.
          return { error: parked.error, retryAfterMs: parked.retryAfterMs };
      }
    },
  });
  const reply = await orAuthError(c.env, key, answer);
  switch (reply.kind) {
    case "policy":
      return agentJsonText(c.req.raw, reply.body);
    case "actions":
      return agentJson(c.req.raw, { ack_token: reply.ackToken, action: "checkin", actions: reply.actions } satisfies CheckinResponse);
    case "none":
      return agentJson(c.req.raw, { ack_token: reply.ackToken, action: "checkin" } satisfies CheckinResponse);
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
