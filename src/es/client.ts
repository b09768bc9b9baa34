import { decodeCbor } from "./cbor";
import type { EsConfig } from "./config";

/** An Elasticsearch answer outside 2xx, classified by status (never by message text). */
export class EsError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    readonly reason: string,
  ) {
    super(`elasticsearch ${status}${type ? ` ${type}` : ""}${reason ? `: ${reason}` : ""}`);
    this.name = "EsError";
  }

  /** Worth retrying later: the node is down, overloaded or timing out. */
  get transient(): boolean {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

export interface EsRequest {
  method: "GET" | "POST" | "PUT" | "DELETE" | "HEAD";
  path: string;
  body?: unknown;
  /** Newline-delimited JSON, already serialised (for `_bulk`). */
  ndjson?: string;
  /** A body in another content type, e.g. CBOR for documents holding raw bytes. */
  raw?: { contentType: string; bytes: Uint8Array };
  /** Ask for the answer in CBOR, where byte strings (a `binary` field's stored value) stay bytes. */
  cbor?: boolean;
  /** Statuses that are answers, not errors (e.g. 404 for a missing index). */
  accept?: number[];
  timeoutMs?: number;
}

/** One request to Elasticsearch's REST API with `fetch`; the only place that speaks HTTP to it. */
export async function esRequest<T = unknown>(config: EsConfig, request: EsRequest): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = { Authorization: config.authorization, Accept: request.cbor ? "application/cbor" : "application/json" };
  let body: string | Uint8Array | undefined;
  if (request.raw !== undefined) {
    headers["Content-Type"] = request.raw.contentType;
    body = request.raw.bytes;
  } else if (request.ndjson !== undefined) {
    headers["Content-Type"] = "application/x-ndjson";
    body = request.ndjson;
  } else if (request.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(request.body);
  }
  let response: Response;
  try {
    response = await fetch(`${config.url}${request.path}`, {
      method: request.method,
      headers,
      ...(body !== undefined ? { body } : {}),
      signal: AbortSignal.timeout(request.timeoutMs ?? 30_000),
    });
  } catch (err) {
    throw new EsError(0, "connection_error", (err as Error).message);
  }
  const parsed = request.method === "HEAD" ? null : request.cbor ? await cborBody(response) : await jsonBody(response);
  if (response.ok || request.accept?.includes(response.status)) return { status: response.status, body: parsed as T };
  const error = (parsed as { error?: { type?: string; reason?: string } | string } | null)?.error;
  const type = typeof error === "object" && error ? (error.type ?? "") : "";
  const reason = typeof error === "object" && error ? (error.reason ?? "") : typeof error === "string" ? error : "";
  throw new EsError(response.status, type, reason);
}

async function jsonBody(response: Response): Promise<unknown> {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

async function cborBody(response: Response): Promise<unknown> {
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (bytes.length === 0) return null;
  try {
    return decodeCbor(bytes);
  } catch {
    return null;
  }
}
