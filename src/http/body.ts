import { gunzipSync } from "node:zlib";
import type { Context } from "hono";
import { FleetError, badRequest } from "../errors";
import { MAX_JSON_DEPTH, depthMessage, nestsDeeperThan, parseJsonText } from "../protocol/json-limits";

export interface BodyLimits {
  /** Bytes as received (compressed size when the client gzipped the body). */
  maxBytes: number;
  /** Bytes after `Content-Encoding: gzip` is undone. */
  maxDecompressedBytes?: number;
}

const TOO_LARGE = "unable to read request body: http: request body too large";

/**
 * Reads and decodes a JSON request body under a size limit, undoing `Content-Encoding: gzip`
 * (what agents ≥ 9.4 send on check-in). Like fleet-server, an oversized body is a 400 BadRequest,
 * not a 413, and the Content-Type is not consulted.
 */
export async function readJsonBody(c: Context, limits: BodyLimits): Promise<unknown> {
  const text = await readBodyText(c.req.raw, limits);
  if (text.trim() === "") throw badRequest("empty request body");
  if (nestsDeeperThan(text, MAX_JSON_DEPTH)) throw badRequest(`request body ${depthMessage()}`);
  try {
    return parseJsonText(text);
  } catch (err) {
    throw badRequest(`request body is not valid JSON: ${(err as Error).message}`);
  }
}

/** Admin requests must say what they are, so a form post is never read as an empty object. */
export async function readAdminJson(c: Context, maxBytes = 1 << 20): Promise<unknown> {
  const type = c.req.header("Content-Type") ?? "";
  if (!/^application\/json\b/i.test(type)) {
    throw new FleetError("AdminBadRequest", "Content-Type must be application/json");
  }
  const text = await readBodyText(c.req.raw, { maxBytes }).catch((err: unknown) => {
    throw err instanceof FleetError ? new FleetError("AdminBadRequest", `request body exceeds ${maxBytes} bytes`) : err;
  });
  if (nestsDeeperThan(text, MAX_JSON_DEPTH)) throw new FleetError("AdminBadRequest", `request body ${depthMessage()}`);
  try {
    return parseJsonText(text);
  } catch (err) {
    throw new FleetError("AdminBadRequest", `request body is not valid JSON: ${(err as Error).message}`);
  }
}

async function readBodyText(request: Request, limits: BodyLimits): Promise<string> {
  const declared = Number(request.headers.get("Content-Length") ?? "NaN");
  if (declared > limits.maxBytes) throw badRequest(TOO_LARGE);
  const body = request.body;
  if (!body) return "";
  const encoding = (request.headers.get("Content-Encoding") ?? "").trim().toLowerCase();
  const gzip = encoding === "gzip";
  if (!gzip && encoding !== "" && encoding !== "identity") {
    throw badRequest(`unsupported Content-Encoding ${JSON.stringify(encoding)}`);
  }
  // Streams, not arrayBuffer(): a caller over a service binding can send more than its
  // Content-Length says, and workerd hands all of it over.
  const reader = body.getReader({ mode: "byob" });
  try {
    const raw = await readCapped(reader, Number.isFinite(declared) ? declared + 1 : 16 << 10, limits.maxBytes);
    return UTF8.decode(gzip ? gunzipCapped(raw, limits.maxDecompressedBytes ?? limits.maxBytes) : raw);
  } catch (err) {
    if (err instanceof FleetError) throw err;
    throw badRequest(`unable to read request body: ${(err as Error).message}`);
  }
}

/** Same decoding as `Response.text()`: a BOM is dropped, bad sequences become U+FFFD. */
const UTF8 = new TextDecoder();

/**
 * Reads a stream into one growing buffer. A BYOB read takes everything the stream has buffered
 * in one go (a default read takes 4 KiB), and one buffer needs no joining at the end.
 */
async function readCapped(reader: ReadableStreamBYOBReader, initial: number, max: number): Promise<Uint8Array> {
  let buffer = new ArrayBuffer(Math.min(Math.max(initial, 1), max + 1));
  let filled = 0;
  for (;;) {
    const { done, value } = await reader.read(new Uint8Array(buffer, filled));
    buffer = value!.buffer;
    if (done) return new Uint8Array(buffer, 0, filled);
    filled += value.byteLength;
    if (filled > max) {
      void reader.cancel().catch(() => undefined);
      throw badRequest(TOO_LARGE);
    }
    if (filled === buffer.byteLength) buffer = buffer.transfer(Math.min(filled * 2, max + 1));
  }
}

/**
 * Inflates a gzip body, stopping once the output would pass `max`: a gzip bomb costs at most `max`
 * bytes and the time to inflate them. workerd's `DecompressionStream` has no such bound (it inflates
 * a whole write without backpressure) and costs ~4× more per small body; `node:zlib` is native here.
 */
function gunzipCapped(raw: Uint8Array, max: number): Uint8Array {
  try {
    return gunzipSync(raw, { maxOutputLength: max });
  } catch (err) {
    // workerd reports the bound as a RangeError ("Memory limit exceeded"); Node as ERR_BUFFER_TOO_LARGE.
    if (err instanceof RangeError) throw badRequest(TOO_LARGE);
    throw err;
  }
}
