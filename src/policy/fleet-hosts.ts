import type { JsonObject } from "../protocol/parse";
import type { PolicyContent } from "../protocol/policy";

/**
 * Adds the server's public URLs as `fleet.hosts` to a policy that names none, as Kibana writes its
 * Fleet Server hosts into every agent policy. Agents take `fleet.hosts` as the hosts to check in
 * with, and a container-mode agent compares them with its `FLEET_URL` when it restarts: without
 * them it enrolls again as a new agent (seen with Elastic Agent 9.0.1). A policy that sets its own
 * `fleet.hosts` keeps them.
 */
export function withFleetHosts(policy: PolicyContent, hosts: readonly string[]): PolicyContent {
  if (hosts.length === 0) return policy;
  // PolicyContent guarantees `fleet` is an object when present.
  const fleet = (policy.fleet ?? {}) as JsonObject;
  if (fleet.hosts !== undefined) return policy;
  return { ...policy, fleet: { ...fleet, hosts: [...hosts] } };
}
