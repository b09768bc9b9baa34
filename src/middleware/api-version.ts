import type { MiddlewareHandler } from "hono";
import { FleetError } from "../errors";

export const API_VERSION = "2023-06-01";

/**
 * `Elastic-Api-Version`: the only version is 2023-06-01, also the default. It is echoed when valid
 * and set to the default when missing or wrong (fleet-protocol.md §1.2).
 */
export const apiVersion = (): MiddlewareHandler => async (c, next) => {
  const requested = c.req.header("Elastic-Api-Version");
  try {
    if (requested !== undefined && requested !== "") {
      if (!/^\d{4}-\d{2}-\d{2}$/.test(requested) || !isCalendarDate(requested)) {
        throw new FleetError(
          "InvalidAPIVersionFormat",
          `received "${requested}", expected a valid date string formatted as YYYY-MM-DD. invalid version format`,
        );
      }
      if (requested !== API_VERSION) {
        throw new FleetError(
          "UnsupportedAPIVersion",
          `received "${requested}", is not supported. supported versions are: [${API_VERSION}] version is not supported`,
        );
      }
    }
    await next();
  } finally {
    c.header("Elastic-Api-Version", requested && requested === API_VERSION ? requested : API_VERSION);
  }
};

function isCalendarDate(text: string): boolean {
  const date = new Date(`${text}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().startsWith(text);
}
