import type { MiddlewareHandler } from "hono";
import { constantTimeEqual } from "../auth/secrets";
import type { Env } from "../config";
import { FleetError } from "../errors";

/**
 * Admin routes take `Authorization: Bearer <FLEET_ADMIN_TOKEN>`. Without a configured token the
 * admin API stays closed rather than open.
 */
export const adminAuth = (): MiddlewareHandler<{ Bindings: Env }> => async (c, next) => {
  const expected = c.env.FLEET_ADMIN_TOKEN;
  if (!expected) throw new FleetError("AdminDisabled");
  const header = c.req.header("Authorization") ?? "";
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match || !constantTimeEqual(match[1]!, expected)) throw new FleetError("AdminUnauthorized");
  await next();
};
