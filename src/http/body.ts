import type { Context } from "hono";
import { FleetError, badRequest } from "../errors";

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
  try {
    return JSON.parse(text);
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
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new FleetError("AdminBadRequest", `request body is not valid JSON: ${(err as Error).message}`);
  }
}

async function readBodyText(request: Request, limits: BodyLimits): Promise<string> {
  const declared = Number(request.headers.get("Content-Length") ?? "NaN");
  if (declared > limits.maxBytes) throw badRequest(TOO_LARGE);
  if (!request.body) return "";
  let stream: ReadableStream<Uint8Array> = limitStream(request.body, limits.maxBytes);
  const encoding = (request.headers.get("Content-Encoding") ?? "").trim().toLowerCase();
  if (encoding === "gzip") {
    stream = limitStream(stream.pipeThrough(new DecompressionStream("gzip")), limits.maxDecompressedBytes ?? limits.maxBytes);
  } else if (encoding !== "" && encoding !== "identity") {
    throw badRequest(`unsupported Content-Encoding ${JSON.stringify(encoding)}`);
  }
  try {
    return await new Response(stream).text();
  } catch (err) {
    if (err instanceof BodyTooLarge || (err as Error)?.message === "request body too large") throw badRequest(TOO_LARGE);
    throw badRequest(`unable to read request body: ${(err as Error).message}`);
  }
}

class BodyTooLarge extends Error {
  constructor() {
    super("request body too large");
  }
}

function limitStream(source: ReadableStream<Uint8Array>, max: number): ReadableStream<Uint8Array> {
  let seen = 0;
  return source.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        seen += chunk.byteLength;
        if (seen > max) controller.error(new BodyTooLarge());
        else controller.enqueue(chunk);
      },
    }),
  );
}
