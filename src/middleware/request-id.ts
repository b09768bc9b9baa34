import type { MiddlewareHandler } from "hono";

/** Echoes `X-Request-Id` or assigns a UUIDv4, on every answer including errors. */
export const requestId = (): MiddlewareHandler => async (c, next) => {
  const id = c.req.header("X-Request-Id") || crypto.randomUUID();
  c.set("requestId", id);
  await next();
  // A WebSocket upgrade's 101 comes from the policy hub with immutable headers.
  if (c.res.status !== 101) c.res.headers.set("X-Request-Id", id);
};
