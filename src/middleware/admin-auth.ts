import type { MiddlewareHandler } from "hono";
import { constantTimeEqual } from "../auth/secrets";
import type { Env } from "../config";
import { FleetError } from "../errors";

/**
 * Admin routes take `Authorization: Bearer <FLEET_ADMIN_TOKEN>`. Without a configured token the
 * admin API stays closed rather than open.
 */
export const adminAuth = (): MiddlewareHandler<{ Bindings: Env }> => async (c, next) => {
  if (!c.env.FLEET_ADMIN_TOKEN) throw new FleetError("AdminDisabled");
  if (!isAdminToken(c.env, c.req.header("Authorization") ?? "")) throw new FleetError("AdminUnauthorized");
  await next();
};

/** Whether an Authorization header carries the admin token (compared in constant time). */
export function isAdminToken(env: Env, header: string): boolean {
  const expected = env.FLEET_ADMIN_TOKEN;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return !!expected && !!match && constantTimeEqual(match[1]!, expected);
}
