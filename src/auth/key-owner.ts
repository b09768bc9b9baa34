import type { Env } from "../config";
import { agentObject } from "../durable-stubs";
import { FleetError } from "../errors";
import { agentIdOfAccessKey } from "./access-key";
import { isKnownKey, orAuthError } from "./agent-auth";
import type { ApiKey } from "./api-key";

/**
 * fleet-server's `authAgent` without an agent id in the path (artifacts, file delivery): the agent is
 * found by its access key. Our access key ids name their agent, so this is one call to that agent's
 * object instead of a search. A genuine key that is no agent's key (an enrollment key) is 404
 * AgentNotFound as upstream; a forged one 401 ErrUnauthorized; an unenrolled agent 401 ErrAgentInactive.
 */
export async function authenticateByAccessKey(env: Env, key: ApiKey): Promise<{ agentId: string; policyId: string }> {
  const owner = agentIdOfAccessKey(key.id);
  if (owner === null) {
    if (await isKnownKey(env, key)) throw new FleetError("AgentNotFound");
    throw new FleetError("Unauthorized");
  }
  return orAuthError(env, key, await agentObject(env, owner).authenticate(key));
}
