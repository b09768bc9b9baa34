import { Hono } from "hono";
import { fleetConfig, type AppEnv } from "../config";
import { openApiDocument } from "../openapi/document";

let cached: string | null = null;

/** `GET /api/openapi.json`: the API's description, open like the docs it is. */
export const openapi = new Hono<AppEnv>().get("/api/openapi.json", (c) => {
  cached ??= JSON.stringify(openApiDocument(fleetConfig(c.env).version.number));
  return c.body(cached, 200, { "Content-Type": "application/json" });
});
