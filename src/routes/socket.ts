import { Hono } from "hono";
import { authenticateAgent } from "../auth/agent-auth";
import { parseApiKeyHeader } from "../auth/api-key";
import { fleetConfig, type AppEnv } from "../config";
import { forwardSocket } from "../checkin/agent-shard";
import { agentObject } from "../durable-stubs";
import { FleetError } from "../errors";
import { checkUserAgent } from "../protocol/user-agent";

/**
 * `GET /api/fleet/agents/{id}/ws`: the agent's WebSocket channel (protocol v1, src/protocol/socket.ts).
 * Authenticated exactly like a check-in, then handed to the policy hub, which holds it with
 * hibernation. It delivers the agent's actions until a newer socket or an HTTP check-in of the
 * agent takes over.
 */
export const socket = new Hono<AppEnv>().get("/api/fleet/agents/:id/ws", async (c) => {
  const agentId = c.req.param("id");
  const key = parseApiKeyHeader(c.req.header("Authorization"));
  const { policyId } = await authenticateAgent(c.env, key, agentId);
  const version = checkUserAgent(c.req.header("User-Agent"), fleetConfig(c.env).version);
  if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") throw new FleetError("UpgradeRequired");
  const connection = crypto.randomUUID();
  const refused = await agentObject(c.env, agentId).attachSocket(connection);
  if (refused) throw new FleetError(refused.error, refused.detail);
  const headers = new Headers(c.req.raw.headers);
  headers.set("X-Fleet-Agent-Id", agentId);
  headers.set("X-Fleet-Connection", connection);
  headers.set("X-Fleet-Agent-Version", version);
  headers.set("X-Fleet-Policy-Id", policyId);
  return forwardSocket(c.env, policyId, agentId, c.req.url, headers);
});
