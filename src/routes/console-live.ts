import { Hono } from "hono";
import type { AppEnv } from "../config";
import { consoleFeed } from "../durable-stubs";
import { FleetError } from "../errors";

/**
 * `GET /api/fleet/console/live`: the console's live channel (a WebSocket), held with hibernation by
 * the console's feed (durable/console-feed.ts), to which the policy hubs push their changes. Not
 * behind the admin middleware: a browser cannot send the Authorization header on a WebSocket, so
 * the channel's first message carries it, and nothing is sent before it checks out.
 */
export const consoleLive = new Hono<AppEnv>().get("/api/fleet/console/live", (c) => {
  if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") throw new FleetError("UpgradeRequired");
  return consoleFeed(c.env).fetch(c.req.raw);
});
