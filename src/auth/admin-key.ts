/** Admin API keys read `fleet_admin_<id>.<secret>`, so they are never mistaken for agent credentials. */
export const ADMIN_KEY_PREFIX = "fleet_admin_";
