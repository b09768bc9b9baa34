import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import type { AppEnv } from "../config";
import { log, useLogSettings } from "../log";

/**
 * A fleet's steady traffic: every agent checks in every few minutes and acks what it gets (a
 * 100,000-agent fleet answers ~330 of these a second), and OpAMP collectors poll `/v1/opamp`. Answered, they log at debug; a line each at
 * info would be most of the log volume and, measured locally, ~30% of the check-in throughput.
 * An answered enrollment too: the agent's store logs it at info (`agent.enrolled`, with the agent
 * and policy ids); a second line each would double a mass enrollment's log volume.
 */
const ROUTINE = /^\/api\/fleet\/agents\/(?:[^/]+\/(?:checkin|acks)|enroll)$|^\/v1\/opamp$/;

/**
 * Logs each request once when it is answered: method, route pattern (never the raw path's query),
 * status, duration, request id, the error name of a refusal, and the agent id where the route names
 * one. Headers and bodies are never logged (they carry keys). 5xx lines are errors; answered
 * check-ins, acks and enrollments are debug; everything else, refusals included (agents cause 401s and 429s all
 * day), is info.
 */
export const requestLog = (): MiddlewareHandler<AppEnv> => async (c, next) => {
  const started = Date.now();
  useLogSettings(c.env);
  await next();
  const status = c.res.status;
  const level = status >= 500 ? "error" : status < 400 && c.req.method === "POST" && ROUTINE.test(c.req.path) ? "debug" : "info";
  // Decided before anything is built: at the default level an answered check-in costs one test.
  if (!log.enabled(level)) return;
  const route = routePath(c, -1);
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
  log[level]("http.request", fields);
};

/** The path segment a route pattern names `:agentId` or `:id` right after `/agents/`. */
function agentIdOf(route: string, path: string): string | undefined {
  const pattern = route.split("/");
  const at = pattern.findIndex((part, i) => (part === ":agentId" || part === ":id") && pattern[i - 1] === "agents");
  return at < 0 ? undefined : path.split("/")[at];
}
