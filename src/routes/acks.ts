import { Hono } from "hono";
import { orAuthError, validateAfterAuth } from "../auth/agent-auth";
import { parseApiKeyHeader } from "../auth/api-key";
import type { AppEnv } from "../config";
import { agentObject } from "../durable-stubs";
import { readJsonBody } from "../http/body";
import { agentJson } from "../http/json-response";
import { AckRequest, type AckEvent } from "../protocol/ack";
import { parseBody } from "../protocol/parse";
import { ack } from "../session/ack";

const MAX_BODY = 2 << 20;

/**
 * `POST /api/fleet/agents/{id}/acks` (fleet-protocol.md §6): the HTTP codec over the session's ack
 * flow (src/session/ack.ts): one item per event in request order, HTTP status = the worst item
 * status, and the body is always the acks JSON agents parse.
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
  const answer = await orAuthError(c.env, key, await ack(() => agentObject(c.env, agentId).ack(key, events)));
  return agentJson(c.req.raw, answer.body, answer.status);
});
