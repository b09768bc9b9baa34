#!/usr/bin/env node
// `npm start`: runs the Worker locally with `wrangler dev` (state persisted under .wrangler/state,
// port 8220 from wrangler.toml). Arguments are passed through to wrangler. When no admin token is
// configured anywhere, a fixed development token is supplied and printed, so the README's curl
// walkthrough works on a fresh clone; pass `--var FLEET_ADMIN_TOKEN:<token>` to choose your own.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";

const DEV_TOKEN = "dev-admin-token";
const args = process.argv.slice(2);

const configured =
  args.some((arg) => arg.includes("FLEET_ADMIN_TOKEN:") || arg.includes("FLEET_ADMIN_TOKEN=")) ||
  [".dev.vars", ".env"].some((file) => existsSync(file) && /^\s*FLEET_ADMIN_TOKEN\s*=/m.test(readFileSync(file, "utf8")));
if (!configured) {
  args.push("--var", `FLEET_ADMIN_TOKEN:${DEV_TOKEN}`);
  console.error(`[dev] admin API token for this local server: ${DEV_TOKEN} (Authorization: Bearer ${DEV_TOKEN})`);
}

const wrangler = createRequire(import.meta.url).resolve("wrangler/bin/wrangler.js");
// The Worker never reads `request.cf`, so wrangler need not fetch its real values from Cloudflare
// (offline, that fetch fails with a stack trace on every start); set the variable to `true` to fetch.
const child = spawn(process.execPath, [wrangler, "dev", ...args], {
  stdio: "inherit",
  env: { WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", ...process.env },
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
