/**
 * Structured logs: one JSON line per event, `{time, level, event, …fields}`, written with the
 * console method of its level (Workers Logs and `wrangler tail` keep the level). Lines below
 * `LOG_LEVEL` (debug, info, warn, error; default info) are dropped. Fields named like secrets are
 * replaced by "[redacted]", so a careless caller cannot leak a key.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const SECRET_FIELD = /^(authorization|(access_)?api_key|.*token|.*password|.*secret)$/i;

/**
 * Where LOG_LEVEL is read: the env of the Worker's current request or of the object that logs, set
 * by `useLogSettings`. Not the `env` of `cloudflare:workers`: importing it made every await carry
 * the request's context, which cost ~30% of the check-in throughput (1,345 → 976 /s, measured).
 */
let settings: { LOG_LEVEL?: string } = {};

/** Called by the Worker for each request and by each Durable Object when it starts. */
export function useLogSettings(env: { LOG_LEVEL?: string }): void {
  settings = env;
}

/** The configured threshold; an unknown LOG_LEVEL logs everything at info and above, and says so once. */
function threshold(): number {
  const raw = (settings.LOG_LEVEL ?? "info").toLowerCase();
  if (raw in RANK) return RANK[raw as LogLevel];
  if (!warnedLevel) {
    warnedLevel = true;
    console.warn(JSON.stringify({ time: new Date().toISOString(), level: "warn", event: "log.bad_level", value: raw }));
  }
  return RANK.info;
}
let warnedLevel = false;

function write(level: LogLevel, event: string, fields: Record<string, unknown>): void {
  if (!enabled(level)) return;
  const line: Record<string, unknown> = { time: new Date().toISOString(), level, event };
  for (const [key, value] of Object.entries(fields)) line[key] = SECRET_FIELD.test(key) ? "[redacted]" : value;
  const text = JSON.stringify(line);
  if (level === "error") console.error(text);
  else if (level === "warn") console.warn(text);
  else console.log(text);
}

/** Whether a line at `level` would be written: callers on hot paths ask before building its fields. */
function enabled(level: LogLevel): boolean {
  return RANK[level] >= threshold();
}

export const log = {
  enabled,
  debug: (event: string, fields: Record<string, unknown> = {}) => write("debug", event, fields),
  info: (event: string, fields: Record<string, unknown> = {}) => write("info", event, fields),
  warn: (event: string, fields: Record<string, unknown> = {}) => write("warn", event, fields),
  error: (event: string, fields: Record<string, unknown> = {}) => write("error", event, fields),
};
