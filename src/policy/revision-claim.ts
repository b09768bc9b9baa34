import type { RevisionClaim } from "../session/contract";

/**
 * The revision an agent is treated as running (fleet-server `processPolicyDetails`): what it
 * reported when it reported both policy id and revision (0 if that is another policy — a
 * reassignment — or a revision newer than the newest known one), else the acked revision on record.
 * The agent is sent the latest revision when it is newer than this.
 */
export function effectiveRevision(claim: RevisionClaim, policyId: string, latestRevision: number | null): number {
  if (!claim.reported) return claim.stored;
  if (claim.reported.policyId !== policyId) return 0;
  if (latestRevision !== null && claim.reported.revision > latestRevision) return 0;
  return claim.reported.revision;
}
