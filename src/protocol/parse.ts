import { z } from "zod";
import { FleetError, badRequest } from "../errors";
import { jsonFits, serialisedBound } from "./json-limits";

/**
 * While `parseBody` validates a value, the most bytes any part of it serialises to (Infinity when
 * unknown): `withinBytes` trusts a field under it without serialising it. Set and cleared around
 * one synchronous `safeParse`, so no other validation ever sees it.
 */
let partsFitIn = Infinity;

/** Validates a decoded body; the first issue becomes a 400 naming the field, in the route's error style. */
export function parseBody<S extends z.ZodType>(schema: S, value: unknown, style: "agent" | "admin" = "agent"): z.output<S> {
  const result = safeParseDecoded(schema, value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.length > 0 ? issue.path.join(".") : "body";
  const message = `${field}: ${issue.message}`;
  throw style === "agent" ? badRequest(message) : new FleetError("AdminBadRequest", message);
}

/** `schema.safeParse` of a decoded body or message, measuring its fields by their text's bound (`withinBytes`). */
export function safeParseDecoded<S extends z.ZodType>(schema: S, value: unknown): z.ZodSafeParseResult<z.output<S>> {
  partsFitIn = serialisedBound(value);
  try {
    return schema.safeParse(value);
  } finally {
    partsFitIn = Infinity;
  }
}

/** Validates a path parameter; the message names the parameter (never `body`). */
export function parseParam<S extends z.ZodType>(schema: S, name: string, value: string, style: "agent" | "admin" = "admin"): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const message = `${name}: ${result.error.issues[0]!.message}`;
  throw style === "agent" ? badRequest(message) : new FleetError("AdminBadRequest", message);
}

/**
 * A value that must fit in `maxBytes` once serialised as JSON: how much of it a stored record may
 * hold (docs/hardening.md). The failure names the limit; `parseBody` prefixes the field.
 */
export const withinBytes = <S extends z.ZodType>(schema: S, maxBytes: number): S =>
  schema.refine((value) => partsFitIn <= maxBytes || jsonFits(value, maxBytes), { message: `larger than the limit of ${maxBytes} bytes (as JSON)` });

/** Any JSON value; typed as such (not `unknown`) so it survives Durable Object RPC typing. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/**
 * A JSON object whose members we keep as sent (metadata, components, policy sections). Only the
 * object itself is checked: every body comes from JSON.parse, so its members are JSON by
 * construction, and validating them recursively (`z.json()`) was ~3% of a check-in's CPU.
 */
export const JsonObject = z.record(z.string(), z.unknown()) as unknown as z.ZodType<JsonObject>;
export type JsonObject = { [key: string]: JsonValue };
