import { Hono } from "hono";
import type { AppEnv } from "../config";
import { LiveOverview } from "../console/live-overview";
import { FleetError } from "../errors";

/**
 * `GET /api/fleet/console/live`: the console's live channel (a WebSocket). Not behind the admin
 * middleware: a browser cannot send the Authorization header on a WebSocket, so the channel's first
 * message carries it (src/console/live-overview.ts) and nothing is sent before it checks out.
 */
export const consoleLive = new Hono<AppEnv>().get("/api/fleet/console/live", (c) => {
  if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") throw new FleetError("UpgradeRequired");
  const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
  server.accept();
  new LiveOverview(c.env, server).start();
  return new Response(null, { status: 101, webSocket: client });
});
