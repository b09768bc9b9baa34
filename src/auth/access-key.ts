import { base64Url, fromBase64Url, randomToken } from "./secrets";

/**
 * Agent access key ids name their agent: `base64url(agentId).<random>`. That lets a request without
 * an agent id in its path (status probe, artifacts, file delivery) find the one Durable Object that
 * can verify the key, and lets a key presented for the wrong agent be told apart from a forged one
 * (403 ErrAgentIdentity versus 401), as fleet-server does with Elasticsearch's key store.
 * Enrollment key ids never contain a dot.
 */
export function newAccessKeyId(agentId: string): string {
  return `${base64Url(new TextEncoder().encode(agentId))}.${randomToken(6)}`;
}

/** The agent that owns an access key id, or null when the id is not an access key id. */
export function agentIdOfAccessKey(keyId: string): string | null {
  const dot = keyId.lastIndexOf(".");
  if (dot <= 0) return null;
  const bytes = fromBase64Url(keyId.slice(0, dot));
  if (!bytes) return null;
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    return null;
  }
}
