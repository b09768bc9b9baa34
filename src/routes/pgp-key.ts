import { Hono } from "hono";
import type { AppEnv, Env } from "../config";
import { FleetError } from "../errors";
import { parseIntParam } from "./uploads";

/** Where an admin-uploaded key is kept; it takes precedence over the `PGP_PUBLIC_KEY` var. */
export const PGP_KEY_OBJECT = "pgp/default.pgp";
const DEFAULT_UPSTREAM = "https://artifacts.elastic.co/GPG-KEY-elastic-agent";

/**
 * `GET /api/agents/upgrades/{major}.{minor}.{patch}/pgp-public-key` (fleet-protocol.md §2.9): no auth,
 * the version is validated and ignored. fleet-server answers 501 ErrTLSRequired on a plain-HTTP
 * listener; here TLS ends at Cloudflare's edge and the Worker sees the scheme the agent used in
 * `request.url`, so a plain-HTTP request gets the same 501 unless `PGP_REQUIRE_TLS` is "false" (local
 * development). The key: the admin-uploaded one (R2), else the `PGP_PUBLIC_KEY` var, else fetched once
 * from `PGP_UPSTREAM_URL` (Elastic's key by default, as fleet-server does) and kept in R2.
 */
export const pgpKey = new Hono<AppEnv>().get("/api/agents/upgrades/:version/pgp-public-key", async (c) => {
  const parts = c.req.param("version").split(".");
  if (parts.length !== 3) throw new FleetError("RouteNotFound");
  ["major", "minor", "patch"].forEach((name, i) => parseIntParam(name, parts[i]!));
  if (c.env.PGP_REQUIRE_TLS !== "false" && new URL(c.req.url).protocol !== "https:") throw new FleetError("TLSRequired");
  const key = await currentPgpKey(c.env);
  return new Response(key, { status: 200, headers: { "Content-Type": "text/plain; charset=utf-8" } });
});

export async function currentPgpKey(env: Env): Promise<Uint8Array> {
  const stored = await env.FILES.get(PGP_KEY_OBJECT);
  if (stored) return new Uint8Array(await stored.arrayBuffer());
  if (env.PGP_PUBLIC_KEY) return new TextEncoder().encode(env.PGP_PUBLIC_KEY);
  const upstream = env.PGP_UPSTREAM_URL ?? DEFAULT_UPSTREAM;
  if (!upstream) throw new FleetError("PGPKeyUnavailable", "no PGP key configured: set PGP_PUBLIC_KEY or upload one");
  let response: Response;
  try {
    response = await fetch(upstream);
  } catch (err) {
    throw new FleetError("PGPKeyUnavailable", `unable to fetch the PGP key from ${upstream}: ${(err as Error).message}`);
  }
  if (response.status !== 200) {
    throw new FleetError("PGPKeyUnavailable", `upstream http server status error: ${response.status}`);
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  await env.FILES.put(PGP_KEY_OBJECT, bytes, { customMetadata: { source: upstream, stored_at: new Date().toISOString() } });
  return bytes;
}
