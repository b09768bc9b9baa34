/**
 * The console's live channel (`GET /api/fleet/console/live`, held by durable/console-feed.ts): its
 * timings and limits, shared by the route, the feed and the policy hubs that push to it.
 */

/** A channel that has not authenticated by then is closed. */
export const LIVE_AUTH_TIMEOUT_MS = 10_000;
/** How often an open channel's credential is checked again: a revoked admin API key is closed within this (and the next resync). */
export const LIVE_RECHECK_MS = 30_000;
/** Close code the console reads as "sign in again"; any other close means "reconnect". */
export const CLOSE_UNAUTHORIZED = 4401;
/** Console channels open at once, fleet-wide (they are admins' browser tabs). */
export const MAX_CHANNELS = 256;
/**
 * How often the feed reads every policy hub while a console is open (on this grid): the bound
 * within which a lost push is repaired, the mirror's health is fresh, and "the last minute" moves on.
 */
export const FEED_RESYNC_MS = 30_000;
/** A hub pushes to the feed until this long after the feed last read it or took its push. */
export const FEED_WATCH_MS = 90_000;
