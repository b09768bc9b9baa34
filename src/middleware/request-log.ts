import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import type { AppEnv } from "../config";
import { log } from "../log";

/**
 * A fleet's steady traffic: every agent checks in every few minutes and acks what it gets (a
 * 100,000-agent fleet answers ~330 of these a second). Answered, they log at debug; a line each at
 * info would be most of the log volume and, measured locally, ~30% of the check-in throughput.
 */
const ROUTINE = new Set(["/api/fleet/agents/:id/checkin", "/api/fleet/agents/:id/acks"]);

/**
 * Logs each request once when it is answered: method, route pattern (never the raw path's query),
 * status, duration, request id, the error name of a refusal, and the agent id where the route names
 * one. Headers and bodies are never logged (they carry keys). 5xx lines are errors; answered
 * check-ins and acks are debug; everything else, refusals included (agents cause 401s and 429s all
 * day), is info.
 */
export const requestLog = (): MiddlewareHandler<AppEnv> => async (c, next) => {
  const started = Date.now();
  await next();
  const route = routePath(c, -1);
  const status = c.res.status;
  const agentId = agentIdOf(route, c.req.path);
  const fields = {
    request_id: c.get("requestId"),
    method: c.req.method,
    route,
    status,
    duration_ms: Date.now() - started,
    ...(agentId ? { agent_id: agentId } : {}),
    ...(c.get("errorCode") ? { error: c.get("errorCode") } : {}),
  };
  if (status >= 500) log.error("http.request", fields);
  else if (status < 400 && ROUTINE.has(route)) log.debug("http.request", fields);
  else log.info("http.request", fields);
};

/** The path segment a route pattern names `:agentId` or `:id` right after `/agents/`. */
function agentIdOf(route: string, path: string): string | undefined {
  const pattern = route.split("/");
  const at = pattern.findIndex((part, i) => (part === ":agentId" || part === ":id") && pattern[i - 1] === "agents");
  return at < 0 ? undefined : path.split("/")[at];
}
