import { Hono } from "hono";
import { orAuthError, validateAfterAuth } from "../auth/agent-auth";
import { parseApiKeyHeader } from "../auth/api-key";
import type { AppEnv } from "../config";
import { agentObject } from "../durable-stubs";
import { readJsonBody } from "../http/body";
import { AuditUnenrollRequest } from "../protocol/audit";
import { parseBody } from "../protocol/parse";

/** `POST /api/fleet/agents/{id}/audit/unenroll` (fleet-protocol.md §2.5): 200 with an empty body. */
export const auditUnenroll = new Hono<AppEnv>().post("/api/fleet/agents/:id/audit/unenroll", async (c) => {
  const agentId = c.req.param("id");
  const key = parseApiKeyHeader(c.req.header("Authorization"));
  const body = await validateAfterAuth(c.env, key, agentId, async () =>
    parseBody(AuditUnenrollRequest, await readJsonBody(c, { maxBytes: 1024 })),
  );
  await orAuthError(c.env, key, await agentObject(c.env, agentId).auditUnenroll(key, body.reason, body.timestamp));
  return c.body(null, 200);
});
