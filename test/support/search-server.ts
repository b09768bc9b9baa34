import { execFileSync } from "node:child_process";

/** The test search server started by scripts/test-search-server.sh (see .ci/run), as the suite reaches it. */
export interface SearchServer {
  url: string;
  vars: Record<string, string>;
  authorization: string;
}

/**
 * Where the search server is, from ES_URL and its credential in the environment. Absent on a developer
 * machine without Java: the Elasticsearch tests skip (test/support/announce-skips.ts says why). In CI (.ci/run starts the server)
 * its absence is a failure.
 */
export function searchServer(): SearchServer | null {
  const url = process.env.ES_URL;
  if (!url) {
    if (process.env.CI) throw new Error("CI must start the test search server first: set -a; eval \"$(bash scripts/test-search-server.sh start)\"; set +a");
    return null;
  }
  const vars: Record<string, string> = { ES_URL: url };
  let authorization: string;
  if (process.env.ES_API_KEY) {
    vars.ES_API_KEY = process.env.ES_API_KEY;
    authorization = `ApiKey ${process.env.ES_API_KEY}`;
  } else {
    vars.ES_USERNAME = process.env.ES_USERNAME ?? "elastic";
    vars.ES_PASSWORD = process.env.ES_PASSWORD ?? "";
    authorization = `Basic ${Buffer.from(`${vars.ES_USERNAME}:${vars.ES_PASSWORD}`).toString("base64")}`;
  }
  return { url, vars, authorization };
}

export async function es<T = Record<string, unknown>>(
  server: SearchServer,
  method: string,
  path: string,
  body?: unknown,
  authorization = server.authorization,
): Promise<{ status: number; body: T }> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { Authorization: authorization, "Content-Type": "application/json" },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

/** Polls until `probe` returns a value (not undefined), or fails after `timeoutMs`. */
export async function eventually<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Stops or starts the test search server through its script (for the outage test). */
export function searchServerScript(command: "stop" | "start"): void {
  // An outage, not a new cluster: the data directory survives the restart.
  execFileSync("bash", ["scripts/test-search-server.sh", command], {
    stdio: ["ignore", "ignore", "inherit"],
    timeout: 300_000,
    env: { ...process.env, SEARCH_KEEP_DATA: "1" },
  });
}
