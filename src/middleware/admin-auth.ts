import type { MiddlewareHandler } from "hono";
import { constantTimeEqual } from "../auth/secrets";
import type { AppEnv, Env } from "../config";
import { parseAdminKey } from "../auth/admin-key";
import { directory } from "../durable-stubs";
import { FleetError } from "../errors";

/**
 * Admin routes take `Authorization: Bearer <FLEET_ADMIN_TOKEN>` or `Bearer <admin API key>`. Without
 * a configured token and without admin keys the admin API stays closed rather than open.
 */
export const adminAuth = (): MiddlewareHandler<AppEnv> => async (c, next) => {
  const admin = await adminIdentity(c.env, c.req.header("Authorization") ?? "");
  if (admin === null) throw new FleetError(c.env.FLEET_ADMIN_TOKEN ? "AdminUnauthorized" : "AdminDisabled");
  c.set("admin", admin);
  return next();
};

/**
 * Who an Authorization value names: "admin-token", `key:<name>` for an admin API key, or null.
 * Also the check of the console's live channel, whose first message carries the same value.
 */
export async function adminIdentity(env: Env, header: string): Promise<string | null> {
  if (isAdminToken(env, header)) return "admin-token";
  const bearer = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
  const keyName = bearer && parseAdminKey(bearer) ? await directory(env).verifyAdminKey(bearer) : null;
  return keyName === null ? null : `key:${keyName}`;
}

/** Whether an Authorization header carries the admin token (compared in constant time). */
export function isAdminToken(env: Env, header: string): boolean {
  const expected = env.FLEET_ADMIN_TOKEN;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return !!expected && !!match && constantTimeEqual(match[1]!, expected);
}
