import { SELF, env } from "cloudflare:test";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { agentObject } from "../src/durable-stubs";
import { readJsonBody } from "../src/http/body";
import { handleError } from "../src/http/error-response";
import { BASE, agentHeaders, enrolledAgent, gzip, type Enrolled } from "./helpers";

const TOO_LARGE = { statusCode: 400, error: "BadRequest", message: "Bad request: unable to read request body: http: request body too large" };

/** Zeros compress about 1000-fold: 160 MiB of them is a bomb far past the 20 MiB check-in limit. */
let bombOnce: Promise<Uint8Array> | undefined;
const gzipBomb = async () => (await (bombOnce ??= gzipZeros(160 << 20))).slice();

async function gzipZeros(bytes: number): Promise<Uint8Array> {
  const zeros = new Uint8Array(1 << 20);
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (bytes <= 0) return controller.close();
      controller.enqueue(zeros.subarray(0, Math.min(bytes, zeros.byteLength)));
      bytes -= zeros.byteLength;
    },
  });
  return new Uint8Array(await new Response(stream.pipeThrough(new CompressionStream("gzip"))).arrayBuffer());
}

/** A gzip of `text` behind `emptyBlocks` empty stored blocks, which inflate to nothing. */
function gzipStored(text: string, emptyBlocks: number): Uint8Array {
  const data = new TextEncoder().encode(text);
  let crc = ~0;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  const out = new Uint8Array(10 + emptyBlocks * 5 + 5 + data.byteLength + 8);
  out.set([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
  let at = 10;
  for (let i = 0; i < emptyBlocks; i++, at += 5) out.set([0, 0, 0, 0xff, 0xff], at);
  out.set([1, data.byteLength & 0xff, data.byteLength >> 8, ~data.byteLength & 0xff, (~data.byteLength >> 8) & 0xff], at);
  out.set(data, at + 5);
  const trailer = new DataView(out.buffer, out.byteLength - 8);
  trailer.setUint32(0, ~crc >>> 0, true);
  trailer.setUint32(4, data.byteLength, true);
  return out;
}

/** A body the server pulls from in 64 KiB chunks, counting what it took. */
function countedBody(chunks: Uint8Array[] | { fill: number; total: number }) {
  const counted = { pulled: 0 };
  let index = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      let chunk: Uint8Array | undefined;
      if (Array.isArray(chunks)) chunk = chunks[index++];
      else if (counted.pulled < chunks.total) chunk = new Uint8Array(65536).fill(chunks.fill);
      if (!chunk) return controller.close();
      counted.pulled += chunk.byteLength;
      controller.enqueue(chunk);
    },
  });
  return { stream, counted };
}

function checkin(agent: Enrolled, body: BodyInit, headers: Record<string, string> = {}) {
  return SELF.fetch(`${BASE}/api/fleet/agents/${agent.id}/checkin?`, {
    method: "POST",
    headers: agentHeaders({ Authorization: `ApiKey ${agent.key}`, ...headers }),
    body,
  });
}

const checkinJson = (extra: Record<string, unknown> = {}) => JSON.stringify({ status: "starting", message: "", components: null, upgrade: {}, ...extra });

describe("request body limits", () => {
  it("refuses a declared Content-Length over the limit without reading the body", async () => {
    const agent = await enrolledAgent("body-declared");
    const { stream, counted } = countedBody({ fill: 32, total: 64 << 20 });
    const res = await checkin(agent, stream, { "Content-Length": String((1 << 20) + 1) });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual(TOO_LARGE);
    expect(counted.pulled).toBeLessThan(1 << 20);
  });

  it("stops reading a chunked body, or one longer than its Content-Length, once it passes the limit", async () => {
    const agent = await enrolledAgent("body-chunked");
    for (const headers of [{}, { "Content-Length": "100" }] as Record<string, string>[]) {
      const { stream, counted } = countedBody({ fill: 32, total: 64 << 20 });
      const res = await checkin(agent, stream, headers);
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual(TOO_LARGE);
      expect(counted.pulled).toBeLessThan(4 << 20);
    }
  });

  it("reads a chunked body under the limit whole", async () => {
    const agent = await enrolledAgent("body-chunked-ok");
    // Several 64 KiB chunks, under local_metadata's own limit (docs/hardening.md).
    const padding = "p".repeat(200_000);
    const bytes = new TextEncoder().encode(checkinJson({ local_metadata: { padding } }));
    const chunks = Array.from({ length: Math.ceil(bytes.byteLength / 65536) }, (_, i) => bytes.subarray(i * 65536, (i + 1) * 65536));
    const res = await checkin(agent, countedBody(chunks).stream);
    expect(res.status).toBe(200);
    expect((await agentObject(env, agent.id).record())!.local_metadata).toEqual({ padding });
  });

  it("inflates a large gzip body exactly, sent whole or chunked", async () => {
    const agent = await enrolledAgent("body-gzip-slices");
    // Random hex compresses only about 2-fold: the compressed body is larger than one 16 KiB read.
    const padding = Array.from(crypto.getRandomValues(new Uint8Array(40_000)), (b) => b.toString(16).padStart(2, "0")).join("");
    const zipped = await gzip(checkinJson({ local_metadata: { padding } }));
    expect(zipped.byteLength).toBeGreaterThan(32 << 10);
    const whole = await checkin(agent, zipped, { "Content-Encoding": "gzip" });
    expect(whole.status).toBe(200);
    expect((await agentObject(env, agent.id).record())!.local_metadata).toEqual({ padding });

    const chunks = [zipped.subarray(0, 5), zipped.subarray(5, 20_000), zipped.subarray(20_000)];
    const chunked = await checkin(agent, countedBody(chunks).stream, { "Content-Encoding": " GZIP " });
    expect(chunked.status).toBe(200);
    await chunked.arrayBuffer();
  });

  it("inflates a gzip body that starts with 10,000 empty blocks", async () => {
    const agent = await enrolledAgent("body-gzip-empty-blocks");
    const res = await checkin(agent, gzipStored(checkinJson({ local_metadata: { stored: true } }), 10_000), { "Content-Encoding": "gzip" });
    expect(res.status).toBe(200);
    expect((await agentObject(env, agent.id).record())!.local_metadata).toEqual({ stored: true });
  });

  it("refuses a gzip bomb, also one whose trailer claims a small size", async () => {
    const agent = await enrolledAgent("body-bomb");
    const bomb = await gzipBomb();
    expect(bomb.byteLength).toBeLessThan(1 << 20);
    const liar = bomb.slice();
    new DataView(liar.buffer, liar.byteOffset + liar.byteLength - 4).setUint32(0, 100, true);
    for (const body of [bomb, liar]) {
      const res = await checkin(agent, body, { "Content-Encoding": "gzip" });
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual(TOO_LARGE);
    }
  });

  it("inflates a gzip body up to the decompressed limit exactly, and not one byte more", async () => {
    const app = new Hono().onError(handleError).post("/", async (c) => c.json(await readJsonBody(c, { maxBytes: 1024, maxDecompressedBytes: 4096 })));
    const json = (length: number) => JSON.stringify({ pad: "p".repeat(length - 10) }); // `{"pad":""}` is 10 bytes
    const post = async (length: number) => app.request("/", { method: "POST", headers: { "Content-Encoding": "gzip" }, body: await gzip(json(length)) });
    const exact = await post(4096);
    expect(exact.status).toBe(200);
    expect(await exact.json()).toEqual(JSON.parse(json(4096)));
    const over = await post(4097);
    expect(over.status).toBe(400);
    expect(await over.json()).toEqual(TOO_LARGE);
  });

  it("answers a corrupt or truncated gzip body, and an unknown encoding, with 400", async () => {
    const agent = await enrolledAgent("body-corrupt");
    const zipped = await gzip(checkinJson());
    const corrupt = zipped.slice();
    corrupt.fill(0xff, 10, 20);
    const cases: Array<[BodyInit, Record<string, string>, string]> = [
      [corrupt, { "Content-Encoding": "gzip" }, "Bad request: unable to read request body: invalid block type"],
      [zipped.slice(0, zipped.byteLength - 12), { "Content-Encoding": "gzip" }, "Bad request: unable to read request body: unexpected end of file"],
      ["not gzip at all", { "Content-Encoding": "gzip" }, "Bad request: unable to read request body: incorrect header check"],
      [checkinJson(), { "Content-Encoding": "br" }, 'Bad request: unsupported Content-Encoding "br"'],
    ];
    for (const [body, headers, message] of cases) {
      const res = await checkin(agent, body, headers);
      expect(await res.json()).toEqual({ statusCode: 400, error: "BadRequest", message });
    }
  });

  it("decodes an identity body as Response.text() does, dropping a leading BOM", async () => {
    const agent = await enrolledAgent("body-identity");
    const res = await checkin(agent, `\uFEFF${checkinJson({ local_metadata: { host: "h\u00e9" } })}`, { "Content-Encoding": "identity" });
    expect(res.status).toBe(200);
    expect((await agentObject(env, agent.id).record())!.local_metadata).toEqual({ host: "h\u00e9" });

    const empty = await SELF.fetch(`${BASE}/api/fleet/agents/${agent.id}/checkin?`, { method: "POST", headers: agentHeaders({ Authorization: `ApiKey ${agent.key}` }) });
    expect(await empty.json()).toEqual({ statusCode: 400, error: "BadRequest", message: "Bad request: empty request body" });
  });
});
