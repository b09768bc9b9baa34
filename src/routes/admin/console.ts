import { Hono } from "hono";
import { fleetOverview } from "../../admin/fleet-overview";
import type { AppEnv } from "../../config";

/** What the console reads that the rest of the admin API does not answer in one call. */
export const consoleOverview = new Hono<AppEnv>().get("/api/fleet/console/overview", async (c) => c.json(await fleetOverview(c.env)));
