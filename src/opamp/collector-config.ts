import type { PolicyRevision } from "../protocol/policy";
import type { JsonValue } from "../protocol/parse";

/**
 * The OpenTelemetry collector part of a policy: its top-level `receivers`, `processors`,
 * `exporters`, `extensions`, `connectors` and `service`, the sections Kibana already puts in agent
 * policies for Elastic Agent's OTel mode (and fleet-server keeps in POLICY_CHANGE). A collector gets
 * them as one file of its `AgentConfigMap`.
 */
const COLLECTOR_SECTIONS = ["receivers", "processors", "exporters", "extensions", "connectors", "service"] as const;

/** The one file of a collector's remote configuration. */
export const CONFIG_FILE_NAME = "collector.yaml";
/** JSON is YAML 1.2 flow style: the collector's YAML loader reads it as is, and no YAML writer is needed. */
export const CONFIG_CONTENT_TYPE = "text/yaml";

export interface CollectorConfig {
  /** Empty when the policy has no collector sections: an empty config map means "local config only". */
  files: Record<string, { body: Uint8Array; contentType: string }>;
  /** `config_hash`: names the revision it belongs to, so an APPLIED status is that revision's ack. */
  hash: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** Renders a revision's collector sections (keys sorted, so equal content gives equal bytes) and its hash. */
export async function collectorConfig(revision: PolicyRevision): Promise<CollectorConfig> {
  const sections: Record<string, JsonValue> = {};
  for (const key of COLLECTOR_SECTIONS) {
    const value = revision.policy[key];
    if (value !== undefined) sections[key] = value;
  }
  const files: CollectorConfig["files"] = {};
  let body: Uint8Array = new Uint8Array();
  if (Object.keys(sections).length > 0) {
    body = encoder.encode(`${JSON.stringify(sortKeys(sections), null, 2)}\n`);
    files[CONFIG_FILE_NAME] = { body, contentType: CONFIG_CONTENT_TYPE };
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
  const hex = Array.from(digest.subarray(0, 16), (b) => b.toString(16).padStart(2, "0")).join("");
  return { files, hash: encoder.encode(`policy:${revision.policy_id}:${revision.revision}:${hex}`) };
}

/** The policy revision a `config_hash` of ours names (as `hashText` reads it), or null for any other. */
export function revisionOfHash(text: string): { policyId: string; revision: number } | null {
  const match = /^policy:([^:]+):(\d{1,15}):[0-9a-f]{32}$/.exec(text);
  return match ? { policyId: match[1]!, revision: Number(match[2]) } : null;
}

export const hashText = (hash: Uint8Array): string => {
  try {
    return decoder.decode(hash);
  } catch {
    return Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
  }
};

function sortKeys(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, sortKeys(value[key]!)]),
  );
}
