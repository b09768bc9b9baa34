/** fleet-server compresses answers above this size when the client asks for gzip. */
const COMPRESSION_THRESHOLD = 1024;

/**
 * A JSON answer, gzip-compressed only when the request's Accept-Encoding is exactly `gzip` and the
 * payload exceeds 1 KiB: fleet-server's rule, under which `gzip, deflate` gets plain JSON.
 */
export function agentJson(request: Request, body: unknown, status = 200): Response {
  return agentJsonText(request, JSON.stringify(body), status);
}

/** `agentJson` for a body already serialised. */
export function agentJsonText(request: Request, text: string, status = 200): Response {
  const headers = new Headers({ "Content-Type": "application/json" });
  if (request.headers.get("Accept-Encoding") === "gzip" && overThreshold(text)) {
    headers.set("Content-Encoding", "gzip");
    const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
    return new Response(stream, { status, headers, encodeBody: "manual" });
  }
  return new Response(text, { status, headers });
}

/** Whether the UTF-8 form exceeds the threshold: a UTF-16 unit is 1 to 3 bytes, so most answers need no encoding to tell. */
function overThreshold(text: string): boolean {
  if (text.length > COMPRESSION_THRESHOLD) return true;
  if (text.length * 3 <= COMPRESSION_THRESHOLD) return false;
  return new TextEncoder().encode(text).byteLength > COMPRESSION_THRESHOLD;
}
