import type { ServerVersion } from "../config";
import { FleetError } from "../errors";

/**
 * Refuses an upgrade to a version newer than this server's own, as Kibana does
 * (`checkFleetServerVersion`): an agent must not run ahead of its Fleet Server, whose protocol it
 * would then speak ahead of. A `-SNAPSHOT` of the same X.Y.Z is not newer.
 */
export function requireUpgradeWithinServer(target: string, server: ServerVersion): void {
  const wanted = /^(\d+)\.(\d+)\.(\d+)/.exec(target);
  const own = /^(\d+)\.(\d+)\.(\d+)/.exec(server.number)!;
  if (!wanted) throw new FleetError("AdminBadRequest", `version ${JSON.stringify(target)} is not X.Y.Z`);
  for (let i = 1; i <= 3; i++) {
    const a = Number(wanted[i]);
    const b = Number(own[i]);
    if (a < b) return;
    if (a > b) {
      throw new FleetError("AdminBadRequest", `Cannot upgrade agent to ${target} because it is higher than the latest fleet server version ${server.number}`);
    }
  }
}
