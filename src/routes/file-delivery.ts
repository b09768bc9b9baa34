import { Hono } from "hono";
import { parseApiKeyHeader } from "../auth/api-key";
import { authenticateByAccessKey } from "../auth/key-owner";
import type { AppEnv } from "../config";
import { FleetError } from "../errors";
import { errorResponse } from "../http/error-response";
import { deliveryDataKey, deliveryMeta, deliveryTargetKey } from "../files/deliveries";
import { contentRange, parseRange } from "../protocol/range";

/** Integrations allowed to read library files with `?source=` (fleet-server's allow-list). */
const PRODUCT_ORIGIN_FILE_USERS: Record<string, string> = { "endpoint-security": "endpoint" };

/**
 * `GET /api/fleet/file/{id}` (fleet-protocol.md §2.8): a file an admin published for this agent, with
 * single byte ranges. Another agent's file, like an unknown one, is 404 ErrNoFile, as upstream (its
 * search filters on the target agent).
 */
export const fileDelivery = new Hono<AppEnv>().get("/api/fleet/file/:id", async (c) => {
  const fileId = c.req.param("id");
  const agent = await authenticateByAccessKey(c.env, parseApiKeyHeader(c.req.header("Authorization")));

  const library = sanitizedIndexInput(c.req.query("source") ?? "");
  if (library !== "") {
    const client = sanitizedIndexInput(c.req.header("X-elastic-product-origin") ?? "");
    if (client === "" || !(client in PRODUCT_ORIGIN_FILE_USERS)) throw new FleetError("ClientFileForbidden");
    // Integration libraries (`.<integration>-fleetfiles-<lib>-*`) live in Elasticsearch; none here yet.
    throw new FleetError("NoFile");
  }

  const [target, head] = await Promise.all([c.env.FILES.head(deliveryTargetKey(fileId, agent.agentId)), c.env.FILES.head(deliveryDataKey(fileId))]);
  if (!target || !head) throw new FleetError("NoFile");
  const meta = deliveryMeta(fileId, head.customMetadata, head.size);
  const size = meta.size;
  const headers = new Headers({ "Accept-Ranges": "bytes", "Content-Type": meta.mime_type || "application/octet-stream" });
  if (meta.sha256) headers.set("X-File-SHA2", meta.sha256);

  const range = parseRange(c.req.header("Range"), size);
  if (range.kind === "invalid") {
    return errorResponse("RangeNotSatisfiable", undefined, { "Accept-Ranges": "bytes", "Content-Range": `bytes */${size}` });
  }
  let ranges = range.kind === "ranges" ? range.ranges : [];
  // A client asking for more bytes than the file has gets the whole file (fleet-server's rule).
  if (ranges.reduce((sum, r) => sum + r.length, 0) > size) ranges = [];
  if (ranges.length > 1) return errorResponse("MultiRangeNotSupported", undefined, { "Accept-Ranges": "bytes" });

  if (ranges.length === 1) {
    const wanted = ranges[0]!;
    const object = await c.env.FILES.get(deliveryDataKey(fileId), { range: { offset: wanted.start, length: wanted.length } });
    if (!object) throw new FleetError("NoFile");
    headers.set("Content-Range", contentRange(wanted, size));
    headers.set("Content-Length", String(wanted.length));
    return new Response(object.body, { status: 206, headers });
  }
  const object = await c.env.FILES.get(deliveryDataKey(fileId));
  if (!object) throw new FleetError("NoFile");
  headers.set("Content-Length", String(size));
  return new Response(object.body, { status: 200, headers });
});

/** fleet-server's `sanitizedIndexInput`: lower-cased, trimmed, index-name metacharacters removed. */
function sanitizedIndexInput(text: string): string {
  return text.trim().toLowerCase().replace(/[*?"<>\\/,|#]/g, "");
}
