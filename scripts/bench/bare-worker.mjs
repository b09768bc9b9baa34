// The bare baseline: what the runtime itself costs for the same traffic shapes, measured in the same
// run as the project. No application logic.
//   GET|POST /ok            → {"ok":true}                  (the trivial route: no Durable Object)
//   POST /floor/<agent id>  → the check-in floor: one RPC to one of 64 SQLite objects (as many as the
//                             project's agent stores, chosen by the agent id the same way), which reads
//                             one row and writes one row, and answers a POLICY_CHANGE-sized body
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

/** As many objects as the project's agent stores (src/agents/agent-stores.ts AGENT_STORES). */
const FLOOR_OBJECTS = 64;

/** FNV-1a, as the project's src/stable-hash.ts: agents spread over the objects as over its stores. */
function stableHash(text) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/**
 * A revision of a realistic policy (~2.5 KB, the size fleet-sim publishes), serialised once as the
 * project's shard does; each answer splices the agent id in: a POLICY_CHANGE-sized body (~3.1 KB).
 */
const POLICY_JSON = JSON.stringify({
  id: "floor",
  revision: 2,
  outputs: { default: { type: "elasticsearch", hosts: ["https://es.example.com:9200"], preset: "balanced" } },
  output_permissions: { default: { _elastic_agent_checks: { cluster: ["monitor"] }, _elastic_agent_monitoring: { indices: [{ names: ["logs-elastic_agent-default", "metrics-elastic_agent-default"], privileges: ["auto_configure", "create_doc"] }] } } },
  agent: { monitoring: { enabled: true, logs: true, metrics: true, use_output: "default", namespace: "default" }, download: { sourceURI: "https://artifacts.elastic.co/downloads/" } },
  fleet: { hosts: ["http://127.0.0.1:18331"] },
  inputs: [
    { id: "logfile-system", name: "system-1", revision: 2, type: "logfile", use_output: "default", data_stream: { namespace: "default" }, streams: [{ id: "logfile-system.auth", data_stream: { dataset: "system.auth", type: "logs" }, paths: ["/var/log/auth.log*", "/var/log/secure*"], exclude_files: [".gz$"] }, { id: "logfile-system.syslog", data_stream: { dataset: "system.syslog", type: "logs" }, paths: ["/var/log/messages*", "/var/log/syslog*"], exclude_files: [".gz$"] }] },
    { id: "system/metrics-system", name: "system-1", revision: 2, type: "system/metrics", use_output: "default", data_stream: { namespace: "default" }, streams: ["cpu", "load", "memory", "network", "process", "process.summary", "socket_summary", "filesystem", "fsstat", "uptime"].map((m) => ({ id: `system/metrics-system.${m}`, data_stream: { dataset: `system.${m}`, type: "metrics" }, metricsets: [m], period: "10s" })) },
    { id: "filestream-custom", name: "custom-logs", revision: 2, type: "filestream", use_output: "default", data_stream: { namespace: "default" }, streams: [{ id: "filestream-custom.app", data_stream: { dataset: "custom.app", type: "logs" }, paths: ["/var/log/app/*.log"], bench_revision: 2 }] },
  ],
});

/** The least a durable check-in does in its object: read the agent's row, write it, answer. */
export class FloorStore extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS agents (id TEXT PRIMARY KEY, checkins INTEGER NOT NULL, last_checkin TEXT NOT NULL)");
  }

  checkin(agentId) {
    const sql = this.ctx.storage.sql;
    const row = sql.exec("SELECT checkins FROM agents WHERE id = ?", agentId).toArray()[0];
    sql.exec("INSERT OR REPLACE INTO agents (id, checkins, last_checkin) VALUES (?, ?, ?)", agentId, (row?.checkins ?? 0) + 1, new Date().toISOString());
    const createdAt = new Date().toISOString();
    return `{"ack_token":"","action":"checkin","actions":[{"agent_id":${JSON.stringify(agentId)},"created_at":"${createdAt}","data":{"policy":${POLICY_JSON}},"id":"policy:floor:2","input_type":"","type":"POLICY_CHANGE"}]}`;
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
    if (pathname.startsWith("/floor/")) {
      if (request.body) await request.arrayBuffer();
      const agentId = pathname.slice("/floor/".length);
      const store = env.FLOOR.get(env.FLOOR.idFromName(`floor-${stableHash(`store:${agentId}`) % FLOOR_OBJECTS}`));
      return new Response(await store.checkin(agentId), { headers: { "Content-Type": "application/json; charset=utf-8" } });
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
