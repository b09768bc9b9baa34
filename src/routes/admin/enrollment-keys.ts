import { Hono } from "hono";
import type { AppEnv } from "../../config";
import { directory } from "../../durable-stubs";
import { orThrow } from "../../errors";
import { readAdminJson } from "../../http/body";
import { EnrollmentKeyCreate, Paging } from "../../protocol/admin";
import { parseBody } from "../../protocol/parse";

/** Enrollment keys, bound to one policy. The secret (`api_key`) is returned once, on creation. */
export const enrollmentKeys = new Hono<AppEnv>()
  .get("/api/fleet/enrollment_api_keys", async (c) => {
    const { page, perPage } = parseBody(Paging, c.req.query(), "admin");
    const policyId = c.req.query("policy_id");
    const { items, total } = await directory(c.env).listEnrollmentKeys(perPage, (page - 1) * perPage, policyId);
    return c.json({ items, total, page, perPage });
  })
  .get("/api/fleet/enrollment_api_keys/:id", async (c) => c.json({ item: orThrow(await directory(c.env).getEnrollmentKey(c.req.param("id"))) }))
  .post("/api/fleet/enrollment_api_keys", async (c) => {
    const body = parseBody(EnrollmentKeyCreate, await readAdminJson(c), "admin");
    const item = orThrow(
      await directory(c.env).createEnrollmentKey({
        policyId: body.policy_id,
        ...(body.name ? { name: body.name } : {}),
        ...(body.expiration ? { expireAt: body.expiration } : {}),
      }),
    );
    return c.json({ item, action: "created" });
  })
  .delete("/api/fleet/enrollment_api_keys/:id", async (c) => {
    const item = orThrow(await directory(c.env).revokeEnrollmentKey(c.req.param("id")));
    return c.json({ item, action: "deleted" });
  });
