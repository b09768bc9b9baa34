import { DurableObject } from "cloudflare:workers";
import { composeOverview, overviewParts, type OverviewParts, type PolicyGlance } from "../src/admin/fleet-overview";
import { fleetConfig, type Env } from "../src/config";
import { channelCredential, stillValid, type ChannelCredential } from "../src/console/channel-credential";
import { CLOSE_UNAUTHORIZED, FEED_RESYNC_MS, FEED_WATCH_MS, LIVE_AUTH_TIMEOUT_MS, LIVE_RECHECK_MS, MAX_CHANNELS } from "../src/console/live-channel";
import { errorResponse } from "../src/http/error-response";
import { log, useLogSettings } from "../src/log";
import { CoalescedRun } from "./coalesced-run";

/** What a console socket remembers across hibernation (well under the 2 KiB attachment limit). */
interface ChannelAttachment {
  opened: number;
  /** Who signed in: null until the first message authenticates. */
  admin: string | null;
  credential: ChannelCredential | null;
  checkedAt: number;
}

/** Client messages are tiny (`auth`, `refresh`); anything larger closes the channel. */
const MAX_MESSAGE_BYTES = 4_096;
/** A refresh within this of the last reading is answered by the hubs' pushes: a client cannot make the feed spin. */
const MIN_REFRESH_GAP_MS = 1_000;

/**
 * The console's live overview for the whole fleet (one object, `console`): holds every open
 * console's WebSocket with hibernation and sends each the overview whenever it changes.
 *
 * - **Pushed by the hubs.** While a console is open the feed watches every policy: each policy hub
 *   pushes its glance (counts by status and version, revision, check-ins per minute, rollout) when
 *   it changes, at most once a second (durable/console-watch.ts); the feed swaps that one policy's
 *   part and sends the new overview. No agent's record is read, and no hub is polled per change.
 * - **Resynced.** Pushes are best effort (a view, nothing stored): every FEED_RESYNC_MS, on the
 *   half-minute, the feed reads every hub again, which repairs a lost push, renews the hubs' watch,
 *   refreshes the mirror's health and moves "the last minute" of the check-in rate on.
 * - **Authenticated by the first message**, as the browser cannot send a header on a WebSocket; the
 *   credential is checked again every LIVE_RECHECK_MS (its hash is kept, not the secret).
 */
export class ConsoleFeed extends DurableObject<Env> {
  /** The overview's parts, in memory only: after hibernation the next use reads every hub again. */
  #parts: OverviewParts | null = null;
  /** The overview last sent (JSON), so an unchanged one is not sent again. */
  #sent = "";
  #readAt = 0;
  /** Channels signed in whose first overview is being read: broadcasts meanwhile skip them. */
  readonly #joining = new Set<WebSocket>();
  readonly #resync = new CoalescedRun(() => this.#readAll());

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    useLogSettings(env);
  }

  /** Takes over a console's WebSocket upgrade (forwarded by the Worker's route). */
  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") return errorResponse("UpgradeRequired");
    if (this.#open().length >= MAX_CHANNELS) return errorResponse("MaxLimit", `at most ${MAX_CHANNELS} console channels may be open: close one, or try again later`);
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server);
    const now = Date.now();
    server.serializeAttachment({ opened: now, admin: null, credential: null, checkedAt: 0 } satisfies ChannelAttachment);
    await this.#wakeBy(now + LIVE_AUTH_TIMEOUT_MS);
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, data: string | ArrayBuffer): Promise<void> {
    if (typeof data !== "string" || data.length > MAX_MESSAGE_BYTES) return close(ws, 1009, "messages are small JSON text");
    const message = parseMessage(data);
    const attachment = ws.deserializeAttachment() as ChannelAttachment;
    if (attachment.admin === null) {
      const authorization = message?.type === "auth" && typeof message.authorization === "string" ? message.authorization : null;
      const signedIn = authorization === null ? null : await channelCredential(this.env, authorization);
      if (signedIn === null) return close(ws, CLOSE_UNAUTHORIZED, "unauthorized");
      ws.serializeAttachment({ ...attachment, admin: signedIn.admin, credential: signedIn.credential, checkedAt: Date.now() } satisfies ChannelAttachment);
      log.debug("console.live.open", { admin: signedIn.admin });
      this.#joining.add(ws);
      try {
        // Every hub is read for a new channel (a policy created since the last resync is in it),
        // and told to push from now on.
        const parts = await this.#resync.request();
        // Its first overview (with any push taken meanwhile), whether or not the others got one.
        if (ws.readyState === WebSocket.OPEN) ws.send(this.#overviewMessage(this.#parts ?? parts));
        await this.#wakeBy(nextResync(Date.now()));
      } catch (err) {
        log.warn("console.feed.read_failed", { error: (err as Error).message });
        close(ws, 1011, "the overview could not be read: reconnect");
      } finally {
        this.#joining.delete(ws);
      }
      return;
    }
    if (message?.type !== "refresh") return;
    if (!(await this.#recheck(ws, attachment))) return;
    if (Date.now() - this.#readAt < MIN_REFRESH_GAP_MS) return;
    await this.#resync.request().catch((err: unknown) => log.warn("console.feed.read_failed", { error: (err as Error).message }));
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    // Complete the closing handshake (1005/1006/1015 cannot be sent).
    close(ws, code === 1005 || code === 1006 || code === 1015 ? 1000 : code, reason);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    close(ws, 1011, "socket error");
  }

  /**
   * A policy hub's glance changed. Returns until when the feed watches (0: no console is open, so
   * the hub stops pushing).
   */
  async hubChanged(policyId: string, glance: PolicyGlance): Promise<number> {
    if (this.#signedIn().length === 0) return 0;
    const parts = this.#parts;
    // A policy the feed has not listed (new, or the feed woke from hibernation): read everything once.
    if (!parts || !parts.glances.has(policyId)) await this.#resync.request();
    else {
      parts.glances.set(policyId, glance);
      this.#broadcast(parts);
    }
    return Date.now() + FEED_WATCH_MS;
  }

  /** Closes late sign-ins, checks credentials again, reads every hub, and sets the next wake-up. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    for (const ws of this.#open()) {
      const attachment = ws.deserializeAttachment() as ChannelAttachment;
      if (attachment.admin === null && now - attachment.opened >= LIVE_AUTH_TIMEOUT_MS) close(ws, CLOSE_UNAUTHORIZED, "authenticate within 10 s");
    }
    await Promise.all(this.#signedIn().map((ws) => this.#recheck(ws, ws.deserializeAttachment() as ChannelAttachment)));
    if (this.#signedIn().length > 0) {
      try {
        await this.#resync.request();
      } catch (err) {
        // A hub that is busy or restarting: the next resync reads it again.
        log.warn("console.feed.resync_failed", { error: (err as Error).message });
      }
    } else this.#parts = null;
    const next = Math.min(
      this.#signedIn().length > 0 ? nextResync(Date.now()) : Infinity,
      ...this.#open().map((ws) => {
        const attachment = ws.deserializeAttachment() as ChannelAttachment;
        return attachment.admin === null ? attachment.opened + LIVE_AUTH_TIMEOUT_MS : Infinity;
      }),
    );
    if (next !== Infinity) await this.ctx.storage.setAlarm(next);
  }

  /** Reads every hub (and asks each to push to the feed), then sends the overview if it changed. */
  async #readAll(): Promise<OverviewParts> {
    this.#readAt = Date.now();
    const parts = await overviewParts(this.env, Date.now() + FEED_WATCH_MS);
    this.#parts = parts;
    this.#broadcast(parts);
    return parts;
  }

  #broadcast(parts: OverviewParts): void {
    const message = this.#overviewMessage(parts);
    if (message === this.#sent) return;
    this.#sent = message;
    for (const ws of this.#signedIn()) if (!this.#joining.has(ws)) ws.send(message);
  }

  #overviewMessage(parts: OverviewParts): string {
    return JSON.stringify({ type: "overview", item: composeOverview(fleetConfig(this.env), parts, Date.now()) });
  }

  /** Checks a channel's credential again when due; closes the channel (false) when it no longer holds. */
  async #recheck(ws: WebSocket, attachment: ChannelAttachment): Promise<boolean> {
    if (attachment.credential === null) return false;
    if (Date.now() - attachment.checkedAt < LIVE_RECHECK_MS) return true;
    if (!(await stillValid(this.env, attachment.credential))) {
      close(ws, CLOSE_UNAUTHORIZED, "credential revoked");
      return false;
    }
    if (ws.readyState === WebSocket.OPEN) ws.serializeAttachment({ ...attachment, checkedAt: Date.now() } satisfies ChannelAttachment);
    return true;
  }

  /** The alarm fires no later than `at`. */
  async #wakeBy(at: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
  }

  /** Open sockets; `getWebSockets` may also return ones already closing. */
  #open(): WebSocket[] {
    return this.ctx.getWebSockets().filter((ws) => ws.readyState === WebSocket.OPEN);
  }

  #signedIn(): WebSocket[] {
    return this.#open().filter((ws) => (ws.deserializeAttachment() as ChannelAttachment).admin !== null);
  }
}

/** The next resync: on the half-minute grid, so "the last minute" of the check-in rate moves on as the minute turns. */
function nextResync(now: number): number {
  return Math.floor(now / FEED_RESYNC_MS) * FEED_RESYNC_MS + FEED_RESYNC_MS;
}

function close(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason);
  } catch {
    // already closed by the other side
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
