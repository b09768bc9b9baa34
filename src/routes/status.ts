import { Hono } from "hono";
import { parseApiKeyHeader } from "../auth/api-key";
import { isKnownKey } from "../auth/agent-auth";
import { fleetConfig, type AppEnv, type Env } from "../config";
import { mirrorStatus } from "../es/mirror-status";
import { isAdminToken } from "../middleware/admin-auth";
import { FleetError } from "../errors";

/**
 * `GET /api/status`. Always HEALTHY: this server has no start-up dependency to wait for (an
 * Elasticsearch outage delays only the mirror). With any genuine key (an agent's access key, or an
 * enrollment key for the MIGRATE probe) the answer also carries the version; a bad key just gets the
 * short answer, as upstream. With the admin token it also reports the Elasticsearch mirror.
 */
export const status = new Hono<AppEnv>().get("/api/status", async (c) => {
  const body: Record<string, unknown> = { name: "fleet-server", status: "HEALTHY" };
  const header = c.req.header("Authorization");
  if (header && isAdminToken(c.env, header)) {
    body.version = versionOf(c.env);
    body.mirror = await mirrorStatus(c.env);
  } else if (header) {
    const key = (() => {
      try {
        return parseApiKeyHeader(header);
      } catch (err) {
        if (err instanceof FleetError) return null;
        throw err;
      }
    })();
    if (key && (await isKnownKey(c.env, key))) body.version = versionOf(c.env);
  }
  return c.json(body);
});

function versionOf(env: Env) {
  const { version } = fleetConfig(env);
  return { number: version.number, build_hash: version.buildHash, build_time: version.buildTime };
}
