import { z } from "zod";
import { JsonObject } from "./parse";
import type { JsonValue } from "./parse";

const isObject = (value: unknown): value is JsonObject => typeof value === "object" && value !== null && !Array.isArray(value);

/** The agent policy body an admin stores: a full agent policy, as Kibana's `/full` endpoint produces it. */
export const PolicyContent = JsonObject.superRefine((policy, ctx) => {
  const outputs = policy.outputs;
  if (!isObject(outputs) || Object.keys(outputs).length === 0) {
    ctx.addIssue({ code: "custom", path: ["outputs"], message: "a policy needs at least one output" });
    return;
  }
  for (const [name, output] of Object.entries(outputs)) {
    if (!isObject(output) || typeof output.type !== "string") {
      ctx.addIssue({ code: "custom", path: ["outputs", name, "type"], message: "every output needs a type" });
    }
  }
  for (const section of ["output_permissions", "agent", "fleet"] as const) {
    if (policy[section] !== undefined && !isObject(policy[section])) {
      ctx.addIssue({ code: "custom", path: [section], message: "must be an object" });
    }
  }
  if (policy.inputs !== undefined && !(Array.isArray(policy.inputs) && policy.inputs.every(isObject))) {
    ctx.addIssue({ code: "custom", path: ["inputs"], message: "must be an array of objects" });
  }
});
/** Stored as plain JSON; the schema above guarantees a non-empty `outputs`. */
export type PolicyContent = JsonObject;

/** `PUT /api/fleet/agent_policies/{id}` body. */
export const PolicyPutRequest = z.object({
  name: z.string().min(1).max(256),
  namespace: z
    .string()
    .regex(/^[a-z0-9_][a-z0-9_.-]{0,99}$/, { message: "lower-case letters, digits, _ . - (at most 100)" })
    .default("default"),
  description: z.string().max(4096).optional(),
  policy: PolicyContent,
});
export type PolicyPutRequest = z.infer<typeof PolicyPutRequest>;

/** Policy ids appear in `policy:<id>:<rev>` action ids, so they may not contain a colon. */
export const PolicyId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, {
  message: "policy id: letters, digits, _ . - (at most 128, no colon)",
});

/** One immutable revision as the PolicyHub stores it. */
export interface PolicyRevision {
  policy_id: string;
  revision: number;
  name: string;
  namespace: string;
  description?: string;
  created_at: string;
  policy: PolicyContent;
}

/**
 * The top-level keys fleet-server's `PolicyData` keeps; everything else is dropped before a policy
 * reaches an agent (fleet-protocol.md §4.3 step 5).
 */
const AGENT_POLICY_KEYS = [
  "outputs",
  "output_permissions",
  "inputs",
  "agent",
  "fleet",
  "signed",
  "secret_paths",
  "receivers",
  "processors",
  "exporters",
  "extensions",
  "connectors",
  "service",
] as const;

/** `data.policy` of a POLICY_CHANGE: the stored policy with its id and revision. */
export function toAgentPolicy(revision: PolicyRevision): JsonObject {
  const policy: JsonObject = { id: revision.policy_id, revision: revision.revision };
  for (const key of AGENT_POLICY_KEYS) {
    const value: JsonValue | undefined = revision.policy[key];
    if (value !== undefined) policy[key] = value;
  }
  return policy;
}
