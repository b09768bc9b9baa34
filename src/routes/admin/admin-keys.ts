import { Hono } from "hono";
import type { AppEnv } from "../../config";
import { directory } from "../../durable-stubs";
import { orThrow } from "../../errors";
import { readAdminJson } from "../../http/body";
import { AdminKeyCreate } from "../../protocol/admin";
import { parseBody } from "../../protocol/parse";

/**
 * Admin API keys: named bearer credentials for the admin API, so scripts and people need not share
 * FLEET_ADMIN_TOKEN. The key is shown once; only its hash is stored; revocation is immediate.
 */
export const adminKeys = new Hono<AppEnv>()
  .post("/api/fleet/admin_api_keys", async (c) => {
    const { name } = parseBody(AdminKeyCreate, await readAdminJson(c), "admin");
    return c.json({ item: await directory(c.env).createAdminKey(name) });
  })
  .get("/api/fleet/admin_api_keys", async (c) => c.json({ items: await directory(c.env).listAdminKeys() }))
  .delete("/api/fleet/admin_api_keys/:id", async (c) => c.json({ item: orThrow(await directory(c.env).revokeAdminKey(c.req.param("id"))) }));
