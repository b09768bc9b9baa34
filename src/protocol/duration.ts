const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a Go `time.Duration` string ("5m", "1h30m", "1.5s", "300ms") into milliseconds, as
 * fleet-server does for `poll_timeout`. Returns null when the text is not a duration.
 */
export function parseGoDuration(text: string): number | null {
  if (text === "0") return 0;
  const match = /^([+-]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$/.exec(text);
  if (!match) return null;
  let total = 0;
  for (const part of text.slice(match[1]!.length).matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g)) {
    total += Number(part[1]) * UNIT_MS[part[2]!]!;
  }
  return match[1] === "-" ? -total : total;
}

/** What `poll_timeout` may be, for the OpenAPI document: a non-negative Go duration (the route checks it). */
export const POLL_TIMEOUT_PATTERN = "^(0|((\\d+(\\.\\d*)?|\\.\\d+)(ns|us|µs|ms|s|m|h))+)$";
