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
  /** Statuses that are answers, not errors (e.g. 404 for a missing index). */
  accept?: number[];
  timeoutMs?: number;
}

/** One request to Elasticsearch's REST API with `fetch`; the only place that speaks HTTP to it. */
export async function esRequest<T = unknown>(config: EsConfig, request: EsRequest): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = { Authorization: config.authorization, Accept: "application/json" };
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
  const text = request.method === "HEAD" ? "" : await response.text();
  let parsed: unknown = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  if (response.ok || request.accept?.includes(response.status)) return { status: response.status, body: parsed as T };
  const error = (parsed as { error?: { type?: string; reason?: string } | string } | null)?.error;
  const type = typeof error === "object" && error ? (error.type ?? "") : "";
  const reason = typeof error === "object" && error ? (error.reason ?? "") : typeof error === "string" ? error : "";
  throw new EsError(response.status, type, reason);
}
