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
    return UTF8.decode(gzip ? await gunzipCapped(raw, limits.maxDecompressedBytes ?? limits.maxBytes) : raw);
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
    buffer = value!.buffer as ArrayBuffer;
    if (done) return new Uint8Array(buffer, 0, filled);
    filled += value!.byteLength;
    if (filled > max) {
      void reader.cancel().catch(() => undefined);
      throw badRequest(TOO_LARGE);
    }
    if (filled === buffer.byteLength) buffer = buffer.transfer(Math.min(filled * 2, max + 1));
  }
}

/**
 * workerd's DecompressionStream inflates a whole write at once, with no backpressure, so a gzip
 * bomb written in one piece would be inflated in full. Input goes in slices (16 KiB inflates to at
 * most ~16 MiB), the next only once all inflated so far has been counted: after a read that did
 * not fill its buffer, or while a read waits on input. Inflated bytes answer a read at once, so a
 * read still unanswered when a timer fires is waiting.
 */
const GZIP_SLICE = 16 << 10;
const WAITING = Symbol("waiting");

async function gunzipCapped(raw: Uint8Array, max: number): Promise<Uint8Array> {
  const inflater = new DecompressionStream("gzip");
  const writer = inflater.writable.getWriter();
  const reader = inflater.readable.getReader({ mode: "byob" });
  // The gzip trailer's ISIZE (inflated length mod 2^32) sizes the buffer for an honest body. Deflate
  // expands at most 1032-fold: room for that is enough for any body the trailer understates.
  const isize = raw.byteLength >= 18 ? new DataView(raw.buffer, raw.byteOffset + raw.byteLength - 4).getUint32(0, true) : 0;
  const room = Math.min(raw.byteLength * 1032 + 1, max + 1);
  let buffer = new ArrayBuffer(Math.min(isize + 1, room));
  let filled = 0;
  let offset = 0;
  let closed = false;
  let counted = true;
  const writeSlice = (): Promise<unknown> => {
    const slice = raw.subarray(offset, (offset = Math.min(offset + GZIP_SLICE, raw.byteLength)));
    if (offset < raw.byteLength) return writer.write(slice);
    closed = true;
    return Promise.all([slice.byteLength > 0 ? writer.write(slice) : undefined, writer.close()]);
  };
  try {
    for (;;) {
      if (counted && !closed) await writeSlice();
      const read = reader.read(new Uint8Array(buffer, filled));
      let result = closed ? await read : await untilTimer(read);
      while (result === WAITING) {
        const written = writeSlice();
        result = await Promise.race([read, written.then(() => (closed ? read : untilTimer(read)))]);
        await written;
      }
      buffer = result.value!.buffer as ArrayBuffer;
      if (result.done) return new Uint8Array(buffer, 0, filled);
      filled += result.value!.byteLength;
      if (filled > max) throw badRequest(TOO_LARGE);
      counted = filled < buffer.byteLength;
      // Closing (awaited above) inflated the rest and checked the trailer: nothing more will come.
      if (counted && closed) return new Uint8Array(buffer, 0, filled);
      if (!counted) buffer = buffer.transfer(Math.min(Math.max(room, filled * 2), max + 1));
    }
  } catch (err) {
    void reader.cancel().catch(() => undefined);
    void writer.abort().catch(() => undefined);
    throw err;
  }
}

function untilTimer<T>(promise: Promise<T>): Promise<T | typeof WAITING> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const fired = new Promise<typeof WAITING>((resolve) => (timer = setTimeout(resolve, 0, WAITING)));
  return Promise.race([promise, fired]).finally(() => clearTimeout(timer));
}
