import { parseAdminKey } from "../auth/admin-key";
import { constantTimeEqual, sha256Hex } from "../auth/secrets";
import type { Env } from "../config";
import { directory } from "../durable-stubs";
import { adminIdentity } from "../middleware/admin-auth";

/**
 * What a console channel keeps of the credential its first message carried, to check it again
 * later: hashes only (it lives in the socket's attachment, which the runtime keeps across
 * hibernation). The admin token is checked again against the configured one; an admin API key
 * against the directory (revoked: no longer valid).
 */
export type ChannelCredential = { kind: "token"; hash: string } | { kind: "key"; id: string; secretHash: string };

/** Who `authorization` names and what to keep of it, or null when it is not an admin credential. */
export async function channelCredential(env: Env, authorization: string): Promise<{ admin: string; credential: ChannelCredential } | null> {
  const admin = await adminIdentity(env, authorization);
  if (admin === null) return null;
  const bearer = /^Bearer\s+(\S+)$/i.exec(authorization)![1]!;
  const key = parseAdminKey(bearer);
  if (admin !== "admin-token" && key) return { admin, credential: { kind: "key", id: key.id, secretHash: await sha256Hex(key.secret) } };
  return { admin, credential: { kind: "token", hash: await sha256Hex(bearer) } };
}

/** Whether a credential kept by `channelCredential` would still be accepted. */
export async function stillValid(env: Env, credential: ChannelCredential): Promise<boolean> {
  if (credential.kind === "key") return directory(env).adminKeyStillValid(credential.id, credential.secretHash);
  const token = env.FLEET_ADMIN_TOKEN;
  return !!token && constantTimeEqual(await sha256Hex(token), credential.hash);
}
