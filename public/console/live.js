// The live channel (GET /api/fleet/console/live): a WebSocket whose first message carries the
// credential (a WebSocket cannot send headers, and the credential never goes in a URL). The server
// pushes the overview whenever it changes. Closed while the tab is hidden, reopened when it shows.
import { authorization, credential, signOut } from "./api.js";

const listeners = new Set();
const stateListeners = new Set();
let socket = null;
let retryMs = 1000;
let retryTimer = null;
let latest = null;
let state = "offline";

/** Calls `listener(overview)` with the latest overview now (if any) and on every push. */
export function onOverview(listener) {
  listeners.add(listener);
  if (latest) listener(latest);
  return () => listeners.delete(listener);
}

/**
 * Calls `reload` each time the fleet's counts change after the first overview seen: a page showing
 * one part of the fleet re-reads it then, and only then. Returns the unsubscribe function.
 */
export function onCountsChange(reload) {
  let last = "";
  return onOverview((overview) => {
    const key = JSON.stringify(overview.results);
    if (last && key !== last) reload();
    last = key;
  });
}

/** "live", "connecting" or "offline", for the header's indicator. */
export function onLiveState(listener) {
  stateListeners.add(listener);
  listener(state);
}

/** Asks the server to check now (after this console changed something). */
export function refresh() {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "refresh" }));
}

export function connect() {
  if (socket || !credential() || document.hidden) return;
  clearTimeout(retryTimer);
  setState("connecting");
  const url = new URL("/api/fleet/console/live", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(url);
  socket = ws;
  ws.addEventListener("open", () => ws.send(JSON.stringify({ type: "auth", authorization: authorization() })));
  ws.addEventListener("message", (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    if (message.type !== "overview") return;
    retryMs = 1000;
    setState("live");
    latest = message.item;
    for (const listener of listeners) listener(latest);
  });
  ws.addEventListener("close", (event) => {
    if (socket === ws) socket = null;
    setState("offline");
    if (event.code === 4401) return signOut();
    if (!credential() || document.hidden) return;
    retryTimer = setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 30_000);
  });
}

export function disconnect() {
  clearTimeout(retryTimer);
  const ws = socket;
  socket = null;
  latest = null;
  if (ws) ws.close(1000, "signed out or hidden");
  setState("offline");
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden) {
    const ws = socket;
    socket = null;
    if (ws) ws.close(1000, "tab hidden");
    setState("offline");
  } else connect();
});

function setState(next) {
  state = next;
  for (const listener of stateListeners) listener(state);
}
