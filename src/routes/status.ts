import { Hono } from "hono";
import { parseApiKeyHeader } from "../auth/api-key";
import { isKnownKey } from "../auth/agent-auth";
import { fleetConfig, type AppEnv } from "../config";
import { FleetError } from "../errors";

/**
 * `GET /api/status`. Always HEALTHY: this server has no start-up dependency to wait for. With any
 * genuine key (an agent's access key, or an enrollment key for the MIGRATE probe) the answer also
 * carries the version; a bad key just gets the short answer, as upstream.
 */
export const status = new Hono<AppEnv>().get("/api/status", async (c) => {
  const body: Record<string, unknown> = { name: "fleet-server", status: "HEALTHY" };
  const header = c.req.header("Authorization");
  if (header) {
    const key = (() => {
      try {
        return parseApiKeyHeader(header);
      } catch (err) {
        if (err instanceof FleetError) return null;
        throw err;
      }
    })();
    if (key && (await isKnownKey(c.env, key))) {
      const { version } = fleetConfig(c.env);
      body.version = { number: version.number, build_hash: version.buildHash, build_time: version.buildTime };
    }
  }
  return c.json(body);
});
