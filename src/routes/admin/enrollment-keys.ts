import { Hono } from "hono";
import type { AppEnv } from "../../config";
import { directory } from "../../durable-stubs";
import { orThrow } from "../../errors";
import { readAdminJson } from "../../http/body";
import { EnrollmentKeyCreate } from "../../protocol/admin";
import { parseBody } from "../../protocol/parse";

/** Enrollment keys, bound to one policy. The secret (`api_key`) is returned once, on creation. */
export const enrollmentKeys = new Hono<AppEnv>()
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
