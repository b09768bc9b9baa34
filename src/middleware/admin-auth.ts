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
  const header = c.req.header("Authorization") ?? "";
  if (isAdminToken(c.env, header)) {
    c.set("admin", "admin-token");
    return next();
  }
  const bearer = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
  const keyName = bearer && parseAdminKey(bearer) ? await directory(c.env).verifyAdminKey(bearer) : null;
  if (keyName !== null) {
    c.set("admin", `key:${keyName}`);
    return next();
  }
  throw new FleetError(c.env.FLEET_ADMIN_TOKEN ? "AdminUnauthorized" : "AdminDisabled");
};

/** Whether an Authorization header carries the admin token (compared in constant time). */
export function isAdminToken(env: Env, header: string): boolean {
  const expected = env.FLEET_ADMIN_TOKEN;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return !!expected && !!match && constantTimeEqual(match[1]!, expected);
}
