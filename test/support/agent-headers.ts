/** The agent version the tests speak as. Web APIs only: shared by the workerd and Node test projects. */
export const AGENT_VERSION = "9.6.0";

/** Headers a 9.x Elastic Agent puts on every request (elastic-agent-client.md §1.2). */
export function agentHeaders(extra: Record<string, string> = {}): Record<string, string> {
  return {
    "User-Agent": `Elastic Agent v${AGENT_VERSION}`,
    Accept: "application/json",
    "Content-Type": "application/json",
    "Elastic-Api-Version": "2023-06-01",
    "Kbn-Xsrf": "1",
    "X-Request-Id": "01K3BWR7Q4M9ZJ8E2YV6T1N5PD",
    "Accept-Encoding": "gzip",
    ...extra,
  };
}
