import type { MiddlewareHandler } from "hono";
import type { ErrorCode } from "../errors";
import { errorResponse } from "../http/error-response";

export const API_VERSION = "2023-06-01";

/**
 * `Elastic-Api-Version`: the only version is 2023-06-01, also the default. It is echoed when valid
 * and set to the default when missing or wrong (fleet-protocol.md §1.2).
 */
export const apiVersion = (): MiddlewareHandler => async (c, next) => {
  const requested = c.req.header("Elastic-Api-Version");
  const rejection = requested ? checkVersion(requested) : null;
  if (rejection) {
    const response = errorResponse(rejection.code, rejection.message);
    response.headers.set("Elastic-Api-Version", API_VERSION);
    return response;
  }
  await next();
  if (c.res.status !== 101) c.res.headers.set("Elastic-Api-Version", requested || API_VERSION);
};

function checkVersion(requested: string): { code: ErrorCode; message: string } | null {
  // What every agent sends, decided without a regular expression and a Date (2% of the Worker's CPU per check-in in a node profile).
  if (requested === API_VERSION) return null;
  if (!/^\d{4}-\d{2}-\d{2}$/.test(requested) || !isCalendarDate(requested)) {
    return {
      code: "InvalidAPIVersionFormat",
      message: `received "${requested}", expected a valid date string formatted as YYYY-MM-DD. invalid version format`,
    };
  }
  if (requested !== API_VERSION) {
    return {
      code: "UnsupportedAPIVersion",
      message: `received "${requested}", is not supported. supported versions are: [${API_VERSION}] version is not supported`,
    };
  }
  return null;
}

function isCalendarDate(text: string): boolean {
  const date = new Date(`${text}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().startsWith(text);
}
