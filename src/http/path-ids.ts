import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../config";
import { FleetError, type ErrorCode } from "../errors";
import { isUsableId } from "../protocol/ids";

/** Path parameters that name stored things; the others (`chunkNum`, `sha2`, `version`, ...) have their own parsers. */
const ID_PARAMS = ["id", "agentId", "fileId", "actionId", "fileName"] as const;

/**
 * An id that cannot name anything stored (docs/hardening.md, "Ids") is answered as an unknown one,
 * with the route's own not-found error, before it reaches R2, SQLite or Elasticsearch.
 */
export const usableIds =
  (unknown: (routePath: string) => ErrorCode): MiddlewareHandler<AppEnv> =>
  async (c, next) => {
    const params: Record<string, string | undefined> = c.req.param();
    for (const name of ID_PARAMS) {
      const value = params[name];
      if (value !== undefined && !isUsableId(value)) {
        const code = unknown(c.req.routePath);
        throw new FleetError(code, code === "NotFound" ? `${name}: no such id (ids are 1–256 bytes, without "/" or control characters)` : undefined);
      }
    }
    await next();
  };

/** The not-found answer of each agent route, as fleet-server gives it for an unknown id. */
export function agentRouteUnknownId(routePath: string): ErrorCode {
  if (routePath === "/api/fleet/file/:id") return "NoFile";
  if (routePath.startsWith("/api/fleet/uploads/")) return "InvalidFileID";
  if (routePath.startsWith("/api/fleet/artifacts/")) return "ArtifactNotFound";
  if (routePath.startsWith("/api/fleet/agents/:id/")) return "AgentNotFound";
  return "RouteNotFound";
}
