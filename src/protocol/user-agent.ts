import type { ServerVersion } from "../config";
import { FleetError } from "../errors";

const PREFIX = "elastic agent ";

/**
 * fleet-server's User-Agent rule for enroll and check-in: lower-cased, `elastic agent ` prefix,
 * version before the first `-`, accepted from 7.13 up to the server's major.minor (a snapshot build
 * may be one minor ahead). Returns the agent's version (`X.Y.Z`).
 */
export function checkUserAgent(header: string | undefined, server: ServerVersion): string {
  const ua = (header ?? "").toLowerCase();
  if (!ua.startsWith(PREFIX)) throw new FleetError("InvalidUserAgent");
  let raw = ua.slice(PREFIX.length).trim().split(/\s+/)[0] ?? "";
  if (raw.startsWith("v")) raw = raw.slice(1);
  const [core, ...suffix] = raw.split("-");
  const match = /^(\d+)\.(\d+)\.(\d+)$/.exec(core ?? "");
  if (!match) throw new FleetError("InvalidUserAgent");
  const [major, minor] = [Number(match[1]), Number(match[2])];
  const snapshot = suffix.some((s) => s === "snapshot");
  const maxMinor = server.minor + (snapshot ? 1 : 0);
  const tooOld = major < 7 || (major === 7 && minor < 13);
  const tooNew = major > server.major || (major === server.major && minor > maxMinor);
  if (tooOld || tooNew) throw new FleetError("UnsupportedVersion");
  return core!;
}
