import { Hono, type Context } from "hono";
import type { AppEnv } from "../config";
import { FleetError } from "../errors";

/**
 * The console's own rules: scripts, styles and connections from this origin only; no inline script
 * or style, no plugins, no framing, no forms posting elsewhere. Data an agent sends is only ever
 * set as text by the console's scripts, and this policy is the second wall if one ever was not.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

const SECURITY_HEADERS: Record<string, string> = {
  "Content-Security-Policy": CONSOLE_CSP,
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "no-referrer",
  "Cross-Origin-Opener-Policy": "same-origin",
  // Revalidated on every load (the asset's ETag makes that a 304): a deploy is seen at once.
  "Cache-Control": "no-cache",
};

/** The console's file names: no dots but the extension's, so no path games reach the asset router. */
const CONSOLE_FILE = /^[a-z0-9][a-z0-9-]*\.(?:js|css|svg)$/;

/**
 * `GET /` and `GET /console/<file>`: the fleet console, static files in public/ served through the
 * Workers static assets binding (wrangler.toml [assets]). The Worker runs first for every request,
 * so agent and admin routes never reach the asset router, and every console file leaves with the
 * headers above.
 */
export const consolePage = new Hono<AppEnv>()
  .get("/", (c) => asset(c, "/index.html"))
  .get("/console/:file", (c) => {
    const file = c.req.param("file");
    if (!CONSOLE_FILE.test(file)) throw new FleetError("RouteNotFound");
    return asset(c, `/console/${file}`);
  });

async function asset(c: Context<AppEnv>, path: string): Promise<Response> {
  if (!c.env.ASSETS) throw new FleetError("RouteNotFound");
  const url = new URL(path, c.req.url);
  const found = await c.env.ASSETS.fetch(new Request(url, { headers: c.req.raw.headers, method: "GET" }));
  if (found.status !== 200 && found.status !== 304) throw new FleetError("RouteNotFound");
  const headers = new Headers(found.headers);
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) headers.set(name, value);
  return new Response(c.req.method === "HEAD" ? null : found.body, { status: found.status, headers });
}
