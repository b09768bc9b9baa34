import { fleetOverview } from "../admin/fleet-overview";
import type { Env } from "../config";
import { log } from "../log";
import { adminIdentity } from "../middleware/admin-auth";

/** How often an open channel recomputes the overview (aggregates of the policy hubs' rosters). */
export const LIVE_INTERVAL_MS = 2_000;
/** A channel that has not authenticated by then is closed. */
export const LIVE_AUTH_TIMEOUT_MS = 10_000;
/** How often an open channel checks its credential again: a revoked admin API key stops the pushes within this. */
export const LIVE_RECHECK_MS = 30_000;
/** A channel lives at most this long; the console reconnects (and authenticates) again. */
export const LIVE_MAX_AGE_MS = 15 * 60_000;
/** A refresh within this of the last check is answered by the next one: a client cannot make the channel spin. */
const MIN_REFRESH_GAP_MS = 500;
/** Client messages are tiny (`auth`, `refresh`); anything larger closes the channel. */
const MAX_MESSAGE_BYTES = 4_096;

/** Close codes the console tells apart: 4401 is "sign in again", anything else "reconnect". */
export const CLOSE_UNAUTHORIZED = 4401;

/**
 * The console's live channel over one WebSocket. The browser cannot put an Authorization header on
 * a WebSocket, and a token never goes in a URL, so the first message authenticates:
 * `{"type":"auth","authorization":"Bearer …"}`. From then on the channel pushes
 * `{"type":"overview","item":…}` at once and whenever the overview changes, checking every
 * LIVE_INTERVAL_MS; `{"type":"refresh"}` asks for a check now (after the console changed something).
 * The overview is aggregates only (one SQL count per policy hub), never a read of each agent. The
 * credential is checked again every LIVE_RECHECK_MS, so revoking an admin API key closes its channels.
 */
export class LiveOverview {
  readonly #env: Env;
  readonly #socket: WebSocket;
  #admin: string | null = null;
  #authorization = "";
  #checkedAt = 0;
  #last = "";
  #lastCheckAt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #ageLimit: ReturnType<typeof setTimeout> | undefined;
  #running = false;
  #closed = false;

  readonly #recheckMs: number;

  /** `recheckMs`: how often the credential is checked again (tests shorten it). */
  constructor(env: Env, socket: WebSocket, { recheckMs = LIVE_RECHECK_MS } = {}) {
    this.#env = env;
    this.#socket = socket;
    this.#recheckMs = recheckMs;
  }

  start(): void {
    this.#socket.addEventListener("message", (event) => void this.#onMessage(event.data as string | ArrayBuffer));
    this.#socket.addEventListener("close", () => this.#stop());
    this.#socket.addEventListener("error", () => this.#stop());
    this.#timer = setTimeout(() => {
      if (this.#admin === null) this.#close(CLOSE_UNAUTHORIZED, "authenticate within 10 s");
    }, LIVE_AUTH_TIMEOUT_MS);
    this.#ageLimit = setTimeout(() => this.#close(1000, "channel age limit: reconnect"), LIVE_MAX_AGE_MS);
  }

  async #onMessage(data: string | ArrayBuffer): Promise<void> {
    if (typeof data !== "string" || data.length > MAX_MESSAGE_BYTES) return this.#close(1009, "messages are small JSON text");
    const message = parseMessage(data);
    if (this.#admin === null) {
      const authorization = message?.type === "auth" && typeof message.authorization === "string" ? message.authorization : null;
      const admin = authorization === null ? null : await adminIdentity(this.#env, authorization);
      if (authorization === null || admin === null) return this.#close(CLOSE_UNAUTHORIZED, "unauthorized");
      this.#admin = admin;
      this.#authorization = authorization;
      this.#checkedAt = Date.now();
      clearTimeout(this.#timer);
      log.debug("console.live.open", { admin });
      return this.#tick();
    }
    if (message?.type === "refresh" && Date.now() - this.#lastCheckAt >= MIN_REFRESH_GAP_MS) {
      clearTimeout(this.#timer);
      return this.#tick();
    }
  }

  /** One check: push the overview if it changed, then schedule the next. */
  async #tick(): Promise<void> {
    if (this.#closed || this.#running) return;
    this.#running = true;
    this.#lastCheckAt = Date.now();
    try {
      if (Date.now() - this.#checkedAt >= this.#recheckMs) {
        if ((await adminIdentity(this.#env, this.#authorization)) === null) return this.#close(CLOSE_UNAUTHORIZED, "credential revoked");
        this.#checkedAt = Date.now();
      }
      const overview = JSON.stringify({ type: "overview", item: await fleetOverview(this.#env) });
      if (overview !== this.#last && !this.#closed) {
        this.#last = overview;
        this.#socket.send(overview);
      }
    } catch (error) {
      // A hub that is busy or restarting: the next tick tries again.
      log.warn("console.live.overview_failed", { error: error instanceof Error ? error.message : String(error) });
    } finally {
      this.#running = false;
    }
    if (!this.#closed) this.#timer = setTimeout(() => void this.#tick(), LIVE_INTERVAL_MS);
  }

  #close(code: number, reason: string): void {
    this.#stop();
    try {
      this.#socket.close(code, reason);
    } catch {
      // already closed by the other side
    }
  }

  #stop(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#ageLimit);
  }
}

function parseMessage(text: string): { type?: unknown; authorization?: unknown } | null {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null ? value : null;
  } catch {
    return null;
  }
}
