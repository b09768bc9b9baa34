// The bare baseline: what the runtime itself costs for the same traffic shapes, measured in the same
// run as the project. No application logic, no storage.
//   GET|POST /ok            → {"ok":true}                  (check-in throughput baseline)
//   POST /park              → Worker → DO RPC awaiting a promise; answers when released
//   GET  /ws (Upgrade)      → a hibernating WebSocket held by the same object; the client sends nothing
//   POST /release           → body {"payload": <any>} is handed to every parked request and sent on every socket
//   GET  /count             → number of parked requests plus open sockets
import { DurableObject } from "cloudflare:workers";

export class Parker extends DurableObject {
  #waiters = [];

  /** Holds the caller until release(): the same shape as a hub parking a check-in. */
  park() {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Accepts a hibernating WebSocket: the same shape as a hub shard holding an agent's socket. */
  async fetch() {
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server);
    return new Response(null, { status: 101, webSocket: client });
  }

  webSocketMessage() {}

  webSocketClose(ws, code) {
    ws.close(code, "closing");
  }

  release(payload) {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve(payload);
    const text = JSON.stringify(payload);
    const sockets = this.ctx.getWebSockets();
    for (const ws of sockets) ws.send(text);
    return waiters.length + sockets.length;
  }

  count() {
    return this.#waiters.length + this.ctx.getWebSockets().length;
  }
}

const json = (body) => new Response(JSON.stringify(body), { headers: { "Content-Type": "application/json; charset=utf-8" } });

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname === "/ok") {
      // Read the body like a check-in does, so both sides pay for the upload.
      if (request.body) await request.arrayBuffer();
      return json({ ok: true });
    }
    const parker = env.PARKER.get(env.PARKER.idFromName("one"));
    if (pathname === "/ws" && request.headers.get("Upgrade") === "websocket") return parker.fetch(request);
    if (pathname === "/park") {
      if (request.body) await request.arrayBuffer();
      return json(await parker.park());
    }
    if (pathname === "/release") {
      const { payload } = await request.json();
      return json({ released: await parker.release(payload) });
    }
    if (pathname === "/count") return json({ parked: await parker.count() });
    return new Response("not found", { status: 404 });
  },
};
