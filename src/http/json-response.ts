/** fleet-server compresses answers above this size when the client asks for gzip. */
const COMPRESSION_THRESHOLD = 1024;

/**
 * A JSON answer, gzip-compressed only when the request's Accept-Encoding is exactly `gzip` and the
 * payload exceeds 1 KiB: fleet-server's rule, under which `gzip, deflate` gets plain JSON.
 */
export function agentJson(request: Request, body: unknown, status = 200): Response {
  const text = JSON.stringify(body);
  const bytes = new TextEncoder().encode(text);
  const headers = new Headers({ "Content-Type": "application/json" });
  if (request.headers.get("Accept-Encoding") === "gzip" && bytes.byteLength > COMPRESSION_THRESHOLD) {
    headers.set("Content-Encoding", "gzip");
    const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
    return new Response(stream, { status, headers, encodeBody: "manual" });
  }
  return new Response(bytes, { status, headers });
}
