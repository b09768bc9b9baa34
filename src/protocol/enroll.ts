import { z } from "zod";
import { JsonObject, withinBytes } from "./parse";

/** An agent keeps at most this many tags, each at most `MAX_TAG_LENGTH` characters (docs/hardening.md). */
export const MAX_AGENT_TAGS = 100;
export const MAX_TAG_LENGTH = 1024;

/** What the agent's record keeps of the enrollment metadata, in bytes of JSON (see CHECKIN_FIELD_LIMITS). */
export const ENROLL_FIELD_LIMITS = { local: 256 * 1024, user_provided: 64 * 1024 } as const;

/** `POST /api/fleet/agents/enroll` body (fleet-protocol.md §2.2; elastic-agent-client.md §3.1). */
export const EnrollRequest = z.object({
  type: z.enum(["PERMANENT", "EPHEMERAL", "TEMPORARY"], { message: "unknown enroll request type" }),
  // Agents always send `id` and `replace_token`, as "" when unset.
  id: z.string().max(256).optional(),
  replace_token: z.string().max(4096).optional(),
  enrollment_id: z.string().max(256).optional(),
  shared_id: z.string().optional(),
  metadata: z
    .object({
      local: withinBytes(JsonObject, ENROLL_FIELD_LIMITS.local).nullish(),
      user_provided: withinBytes(JsonObject, ENROLL_FIELD_LIMITS.user_provided).nullish(),
      tags: z.array(z.string().max(MAX_TAG_LENGTH)).max(MAX_AGENT_TAGS).nullish(),
    })
    .nullish(),
});
export type EnrollRequest = z.infer<typeof EnrollRequest>;

/** The `item` of a successful enrollment; `access_api_key` is the only copy of the secret. */
export interface EnrolledAgent {
  access_api_key: string;
  access_api_key_id: string;
  active: true;
  enrolled_at: string;
  id: string;
  local_metadata: JsonObject | null;
  policy_id: string;
  status: "online";
  tags: string[];
  type: string;
  user_provided_metadata: null;
}

export interface EnrollResponse {
  action: "created";
  item: EnrolledAgent;
}

/** Trims, drops empties, de-duplicates and sorts, as fleet-server stores tags. */
export function normaliseTags(tags: readonly string[] | null | undefined): string[] {
  return [...new Set((tags ?? []).map((t) => t.trim()).filter((t) => t !== ""))].sort();
}
