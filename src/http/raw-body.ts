import { FleetError } from "../errors";

/**
 * Reads a request body as bytes under a limit. Over the limit is 413 ErrPayloadSizeTooLarge, as
 * fleet-server answers for upload begin and complete (its `http.MaxBytesReader` routes); chunk
 * uploads use the same answer (see README, "Where we differ").
 */
export async function readLimitedBytes(request: Request, maxBytes: number): Promise<Uint8Array> {
  const declared = Number(request.headers.get("Content-Length") ?? "NaN");
  if (declared > maxBytes) throw new FleetError("PayloadSizeTooLarge");
  if (!request.body) return new Uint8Array(0);
  const parts: Uint8Array[] = [];
  let total = 0;
  // A request body is a byte stream (workers-types leave its chunk type open).
  const reader = (request.body as ReadableStream<Uint8Array>).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new FleetError("PayloadSizeTooLarge");
    }
    parts.push(value);
  }
  if (parts.length === 1) return parts[0]!;
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.byteLength;
  }
  return bytes;
}

export const utf8Text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
