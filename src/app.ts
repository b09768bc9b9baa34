import { Hono, type MiddlewareHandler } from "hono";
import type { AppEnv } from "./config";
import { FleetError } from "./errors";
import { errorResponse, handleError } from "./http/error-response";
import { agentRouteUnknownId, usableIds } from "./http/path-ids";
import { adminAuth } from "./middleware/admin-auth";
import { apiVersion } from "./middleware/api-version";
import { requestId } from "./middleware/request-id";
import { requestLog } from "./middleware/request-log";
import { acks } from "./routes/acks";
import { actionStatus } from "./routes/admin/action-status";
import { adminKeys } from "./routes/admin/admin-keys";
import { agentOperations } from "./routes/admin/agent-operations";
import { agents } from "./routes/admin/agents";
import { consoleOverview } from "./routes/admin/console";
import { enrollmentKeys } from "./routes/admin/enrollment-keys";
import { adminFiles } from "./routes/admin/files";
import { policies } from "./routes/admin/policies";
import { rollouts } from "./routes/admin/rollouts";
import { artifacts } from "./routes/artifacts";
import { auditUnenroll } from "./routes/audit-unenroll";
import { checkin } from "./routes/checkin";
import { consoleLive } from "./routes/console-live";
import { consolePage } from "./routes/console-page";
import { enroll } from "./routes/enroll";
import { fileDelivery } from "./routes/file-delivery";
import { openapi } from "./routes/openapi";
import { opamp } from "./routes/opamp";
import { pgpKey } from "./routes/pgp-key";
import { socket } from "./routes/socket";
import { status } from "./routes/status";
import { uploads } from "./routes/uploads";

/** Routes Elastic Agents call: fleet-server's wire contract, with its API-version header rule. */
const AGENT_ROUTES = [status, enroll, checkin, acks, auditUnenroll, socket, artifacts, uploads, fileDelivery, pgpKey];

/**
 * Routes for admins, behind the admin token or an admin API key. `actionStatus` comes before
 * `agents` so `/agents/action_status` is not read as an agent id.
 */
const ADMIN_ROUTES = [actionStatus, agents, agentOperations, policies, rollouts, enrollmentKeys, adminKeys, adminFiles, consoleOverview];

export function createApp(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use("*", requestId());
  app.use("*", requestLog());
  // Middleware is bound to each route's own method and path, so an agent path and an admin path
  // that share a pattern (`POST /agents/enroll`, `PUT /agents/{id}`) never get each other's checks.
  guard(app, AGENT_ROUTES, apiVersion());
  guard(app, ADMIN_ROUTES, adminAuth());
  // After admin auth: an unauthenticated caller learns nothing, not even that an id is malformed.
  guard(app, AGENT_ROUTES, usableIds(agentRouteUnknownId));
  guard(app, ADMIN_ROUTES, usableIds(() => "NotFound"));
  // The console: its page and files (no auth: they hold no data), and its live channel, which
  // authenticates by its first message (a browser cannot send headers on a WebSocket).
  // OpAMP (docs/opamp.md) is not fleet-server's agent contract: no API-version header rule.
  for (const routes of [...AGENT_ROUTES, ...ADMIN_ROUTES, opamp, openapi, consoleLive, consolePage]) app.route("/", routes);

  const allowed = allowedMethods(app);
  app.notFound((c) => {
    // A known path with another method: 405 and what it takes (RFC 9110 §15.5.6).
    const allow = allowed(c.req.path);
    if (allow.length > 0) return errorResponse("MethodNotAllowed", undefined, { Allow: allow.join(", ") });
    throw new FleetError("RouteNotFound");
  });
  app.onError(handleError);
  return app;
}

/** The methods routed for a path, from the app's own route table (HEAD wherever GET is). */
function allowedMethods(app: Hono<AppEnv>): (path: string) => string[] {
  const routes = app.routes
    .filter((route) => route.method !== "ALL")
    .map((route) => ({ method: route.method, pattern: new RegExp(`^${route.path.replaceAll(".", "\\.").replace(/:\w+/g, "[^/]+")}$`) }));
  return (path) => {
    const methods = new Set(routes.filter((route) => route.pattern.test(path)).map((route) => route.method));
    if (methods.has("GET")) methods.add("HEAD");
    return [...methods].sort();
  };
}

function guard(app: Hono<AppEnv>, groups: Hono<AppEnv>[], middleware: MiddlewareHandler<AppEnv>): void {
  const seen = new Set<string>();
  for (const group of groups) {
    for (const route of group.routes) {
      const key = `${route.method} ${route.path}`;
      if (route.method === "ALL" || seen.has(key)) continue;
      seen.add(key);
      app.on(route.method, route.path, middleware);
    }
  }
}
