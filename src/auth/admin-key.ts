/** Admin API keys read `fleet_admin_<id>.<secret>`, so they are never mistaken for agent credentials. */
export const ADMIN_KEY_PREFIX = "fleet_admin_";

/** `randomToken` halves are base64url without padding. */
const ADMIN_KEY = new RegExp(`^${ADMIN_KEY_PREFIX}([A-Za-z0-9_-]+)\\.([A-Za-z0-9_-]+)$`);

/**
 * The id and secret of an admin API key, or null when `token` is not exactly one: two non-empty
 * halves of token characters around a single dot (`<id>.<secret>.junk` is not a key).
 */
export function parseAdminKey(token: string): { id: string; secret: string } | null {
  const match = ADMIN_KEY.exec(token);
  return match ? { id: match[1]!, secret: match[2]! } : null;
}
