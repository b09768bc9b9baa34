import { Hono } from "hono";
import { parseApiKeyHeader } from "../auth/api-key";
import { fleetConfig, type AppEnv } from "../config";
import { agentObject, directory } from "../durable-stubs";
import { orThrow } from "../errors";
import { readJsonBody } from "../http/body";
import { EnrollRequest, normaliseTags, type EnrollResponse } from "../protocol/enroll";
import { parseBody, type JsonObject } from "../protocol/parse";
import { checkUserAgent } from "../protocol/user-agent";

const MAX_BODY = 512 * 1024;

/** `POST /api/fleet/agents/enroll` (fleet-protocol.md §2.2), in fleet-server's order of checks. */
export const enroll = new Hono<AppEnv>().post("/api/fleet/agents/enroll", async (c) => {
  const key = parseApiKeyHeader(c.req.header("Authorization"));
  const version = checkUserAgent(c.req.header("User-Agent"), fleetConfig(c.env).version);
  const enrollment = orThrow(await directory(c.env).resolveEnrollmentKey(key, true));
  const body = parseBody(EnrollRequest, await readJsonBody(c, { maxBytes: MAX_BODY }));

  const chosenId = body.id?.trim() ? body.id.trim() : undefined;
  const agentId = chosenId ?? crypto.randomUUID();
  if (body.enrollment_id) {
    const previous = await directory(c.env).claimEnrollmentId(body.enrollment_id, agentId);
    if (previous) await agentObject(c.env, previous).dropIfNeverCheckedIn();
  }
  const result = orThrow(
    await agentObject(c.env, agentId).enroll({
      agentId,
      clientChosenId: chosenId !== undefined,
      ...(body.replace_token ? { replaceToken: body.replace_token } : {}),
      policyId: enrollment.policyId,
      namespaces: enrollment.namespaces,
      type: body.type,
      localMetadata: withAgentId(body.metadata?.local ?? null, agentId),
      tags: normaliseTags(body.metadata?.tags),
      ...(body.enrollment_id ? { enrollmentId: body.enrollment_id } : {}),
      version,
    }),
  );
  // The store lists the agent in its policy's roster and cuts a replaced key's socket (its effects).
  const response: EnrollResponse = { action: "created", item: result.item };
  return c.json(response);
});

/** The agent proposes its own `elastic.agent.id`; the server's id replaces it. */
function withAgentId(local: JsonObject | null, agentId: string): JsonObject | null {
  const elastic = local?.elastic as JsonObject | undefined;
  const agent = elastic?.agent as JsonObject | undefined;
  if (!local || !agent || typeof agent !== "object" || !("id" in agent)) return local;
  return { ...local, elastic: { ...elastic, agent: { ...agent, id: agentId } } };
}
