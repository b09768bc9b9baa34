import { z } from "zod";

/** `POST /api/fleet/agents/{id}/audit/unenroll` body (fleet-protocol.md §2.5). */
export const AuditUnenrollRequest = z.object({
  reason: z.enum(["uninstall", "orphaned", "key_revoked", "migrated"]),
  timestamp: z.string(),
});
export type AuditUnenrollRequest = z.infer<typeof AuditUnenrollRequest>;
