import { Hono } from "hono";
import { parseApiKeyHeader } from "../auth/api-key";
import { authenticateByAccessKey } from "../auth/key-owner";
import type { AppEnv } from "../config";
import { FleetError } from "../errors";
import { locateDelivery } from "../files/delivery-source";
import { errorResponse } from "../http/error-response";
import { contentRange, parseRange } from "../protocol/range";

/**
 * `GET /api/fleet/file/{id}` (fleet-protocol.md §2.8): a file published for this agent (by an admin
 * here, or by Kibana in Elasticsearch), or with `?source=` one of an integration's library files,
 * with single byte ranges. Another agent's file, like an unknown one, is 404 ErrNoFile, as upstream
 * (its search filters on the target agent).
 */
export const fileDelivery = new Hono<AppEnv>().get("/api/fleet/file/:id", async (c) => {
  const fileId = c.req.param("id");
  const agent = await authenticateByAccessKey(c.env, parseApiKeyHeader(c.req.header("Authorization")));
  const file = await locateDelivery(c.env, fileId, agent.agentId, c.req.query("source") ?? "", c.req.header("X-elastic-product-origin") ?? "");
  if (!file) throw new FleetError("NoFile");

  const size = file.size;
  const headers = new Headers({ "Accept-Ranges": "bytes", "Content-Type": file.mimeType || "application/octet-stream" });
  if (file.sha256) headers.set("X-File-SHA2", file.sha256);

  const range = parseRange(c.req.header("Range"), size);
  if (range.kind === "invalid") {
    return errorResponse("RangeNotSatisfiable", undefined, { "Accept-Ranges": "bytes", "Content-Range": `bytes */${size}` });
  }
  let ranges = range.kind === "ranges" ? range.ranges : [];
  // A client asking for more bytes than the file has gets the whole file (fleet-server's rule).
  if (ranges.reduce((sum, r) => sum + r.length, 0) > size) ranges = [];
  if (ranges.length > 1) return errorResponse("MultiRangeNotSupported", undefined, { "Accept-Ranges": "bytes" });

  const wanted = ranges[0];
  const body = await file.open(wanted);
  if (!body) throw new FleetError("NoFile");
  headers.set("Content-Length", String(wanted ? wanted.length : size));
  if (wanted) headers.set("Content-Range", contentRange(wanted, size));
  return new Response(body, { status: wanted ? 206 : 200, headers });
});
