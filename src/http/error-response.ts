import type { Context } from "hono";
import { FleetError, type ErrorCode } from "../errors";
import { ERROR_TABLE } from "./error-table";
import { retryAfterSeconds } from "../limits/token-bucket";
import { log } from "../log";

export interface ErrorBody {
  statusCode: number;
  error: string;
  message?: string;
}

export function errorBody(code: ErrorCode, detail?: string): ErrorBody {
  const row = ERROR_TABLE[code];
  const message = detail ?? row.message;
  // fleet-server omits `message` only when it is empty.
  return message ? { statusCode: row.status, error: row.name, message } : { statusCode: row.status, error: row.name };
}

/** Error answers carry fleet-server's content type and nosniff header. */
export function errorResponse(code: ErrorCode, detail?: string, headers?: HeadersInit): Response {
  const body = errorBody(code, detail);
  const response = new Response(JSON.stringify(body), {
    status: body.statusCode,
    headers: { "Content-Type": "application/json; charset=utf-8", "X-Content-Type-Options": "nosniff" },
  });
  if (headers) new Headers(headers).forEach((value, key) => response.headers.set(key, value));
  return response;
}

/** Hono `onError`: domain errors by the table; anything else is logged and becomes a 500 without internals. */
export function handleError(err: Error, c: Context): Response {
  if (err instanceof FleetError) {
    const row = ERROR_TABLE[err.code];
    c.set("errorCode", err.code);
    if (row.log === "error" || row.log === "warn") log[row.log]("http.refused", { request_id: c.get("requestId"), method: c.req.method, path: c.req.path, error: err.code });
    const retry = err.retryAfterMs !== undefined ? { "Retry-After": String(retryAfterSeconds(err.retryAfterMs)) } : undefined;
    return errorResponse(err.code, err.detail, retry);
  }
  c.set("errorCode", "Internal");
  log.error("http.failed", { request_id: c.get("requestId"), method: c.req.method, path: c.req.path, error: err.message, stack: err.stack });
  return errorResponse("Internal");
}
