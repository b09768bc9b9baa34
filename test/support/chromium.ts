import { existsSync } from "node:fs";

/** Debian's `chromium` package (apt-get install -y chromium); CHROMIUM_PATH names another build. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Why the browser tests cannot run here, or null when they can. Under CI they fail instead of skipping. */
export function chromiumMissing(): string | null {
  return existsSync(CHROMIUM_PATH) ? null : `${CHROMIUM_PATH} is absent (apt-get install -y chromium, or set CHROMIUM_PATH)`;
}
