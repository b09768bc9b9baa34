import { sha256Hex } from "../auth/secrets";
import type { EsConfig } from "../es/config";
import type { JsonObject } from "../protocol/parse";
import type { PolicyRevision } from "../protocol/policy";
import { canonicalJson } from "./content-hash";

/** One Elasticsearch output of a policy that needs a per-agent API key (fleet-protocol.md §4.4). */
export interface KeyedOutput {
  name: string;
  permissions: JsonObject;
  permissionsHash: string;
  /** Where the key is minted: null for the server's own cluster, else a remote cluster's address and service token. */
  remote: EsConfig | null;
}

/** The outputs of a revision that get per-agent keys: `elasticsearch`, and `remote_elasticsearch` with a service token. */
export async function keyedOutputs(revision: PolicyRevision): Promise<KeyedOutput[]> {
  const outputs = (revision.policy.outputs ?? {}) as Record<string, JsonObject>;
  const permissions = (revision.policy.output_permissions ?? {}) as Record<string, JsonObject>;
  const keyed: KeyedOutput[] = [];
  for (const [name, output] of Object.entries(outputs)) {
    if (output.type !== "elasticsearch" && output.type !== "remote_elasticsearch") continue;
    let remote: EsConfig | null = null;
    if (output.type === "remote_elasticsearch") {
      const host = Array.isArray(output.hosts) ? output.hosts[0] : undefined;
      if (typeof host !== "string" || typeof output.service_token !== "string") continue;
      remote = { url: host.replace(/\/+$/, ""), authorization: `Bearer ${output.service_token}` };
    }
    const granted = permissions[name] ?? {};
    keyed.push({ name, permissions: granted, permissionsHash: await permissionsHash(granted), remote });
  }
  return keyed;
}

/** SHA-256 of the role descriptors in canonical JSON: a changed hash means the key's roles must change. */
export function permissionsHash(permissions: JsonObject): Promise<string> {
  return sha256Hex(canonicalJson(permissions));
}

/**
 * `data.policy.outputs` with each agent's key injected as `"api_key":"id:key"`; remote outputs are
 * rewritten to plain `elasticsearch` without their service token, as fleet-server sends them.
 */
export function withOutputKeys(policy: JsonObject, keys: Record<string, string>): JsonObject {
  const outputs = { ...((policy.outputs ?? {}) as Record<string, JsonObject>) };
  for (const [name, output] of Object.entries(outputs)) {
    const next: JsonObject = { ...output };
    if (next.type === "remote_elasticsearch") {
      next.type = "elasticsearch";
      delete next.service_token;
    }
    if (keys[name]) next.api_key = keys[name];
    outputs[name] = next;
  }
  return { ...policy, outputs };
}
