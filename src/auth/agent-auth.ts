import type { Env } from "../config";
import { agentObject, directory } from "../durable-stubs";
import { FleetError, isFailure, type Failure } from "../errors";
import { agentIdOfAccessKey } from "./access-key";
import type { ApiKey } from "./api-key";

/**
 * Authenticates an agent's access key for the agent named in the path. Throws the upstream error:
 * 401 for an unknown or revoked key, 401 ErrAgentInactive, or 403 ErrAgentIdentity for a genuine
 * key that belongs to someone else (another agent, or an enrollment key).
 */
export async function authenticateAgent(env: Env, key: ApiKey, agentId: string): Promise<{ agentId: string; policyId: string }> {
  return orAuthError(env, key, await agentObject(env, agentId).authenticate(key));
}

/** Turns an agent store's auth failure into the error fleet-server would answer. */
export async function orAuthError<T>(env: Env, key: ApiKey, result: T): Promise<Exclude<T, Failure>> {
  if (!isFailure(result)) return result as Exclude<T, Failure>;
  if (result.error === "AgentIdentity" && !(await isKnownKey(env, key))) throw new FleetError("Unauthorized");
  throw new FleetError(result.error, result.detail, result.retryAfterMs);
}

/** Whether the key is genuine anywhere: some agent's current access key, or an active enrollment key. */
export async function isKnownKey(env: Env, key: ApiKey): Promise<boolean> {
  const owner = agentIdOfAccessKey(key.id);
  if (owner !== null) return agentObject(env, owner).holdsKey(key);
  return !isFailure(await directory(env).resolveEnrollmentKey(key));
}

/**
 * Runs request validation, but when it fails reports the caller's auth error first: fleet-server
 * authenticates before it reads the body, and an unauthenticated caller should learn nothing more.
 */
export async function validateAfterAuth<T>(env: Env, key: ApiKey, agentId: string, validate: () => Promise<T>): Promise<T> {
  try {
    return await validate();
  } catch (err) {
    await authenticateAgent(env, key, agentId);
    throw err;
  }
}
