import { request } from "node:http";
import { connect } from "node:net";
import { gunzipSync, gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentHeaders } from "../support/agent-headers";
import { startDevServer, type DevServer } from "../support/dev-server";

let server: DevServer;

beforeAll(async () => {
  server = await startDevServer({ CHECKIN_LONG_POLL: "1s", CHECKIN_JITTER: "0s" });
});
afterAll(async () => server?.stop());

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/**
 * The JSON of an answer, undoing gzip as Go's transport does. Cloudflare's edge (and wrangler dev,
 * which emulates it) may gzip any JSON answer for a client that accepts gzip, on top of the
 * Worker's own fleet-server rule, so small answers can arrive compressed too.
 */
function decoded(res: RawResponse): unknown {
  const text = res.headers["content-encoding"] === "gzip" ? gunzipSync(res.body).toString() : res.body.toString();
  return JSON.parse(text);
}

/** An HTTP/1.1 request written as Go writes it: the path keeps its bare `?`, no automatic decoding. */
function raw(method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port: server.port, method, path, headers: body ? { ...headers, "Content-Length": String(body.length) } : headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function admin(method: string, path: string, body: unknown) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${server.adminToken}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { item: Record<string, string> };
}

describe("npm start over real HTTP", () => {
  it("serves an agent's whole first session: enroll, gzip check-in, ack, long poll", async () => {
    await admin("PUT", "/api/fleet/agent_policies/e2e", {
      name: "e2e",
      policy: {
        outputs: { default: { type: "elasticsearch", hosts: ["https://es.example:9200"] } },
        inputs: Array.from({ length: 30 }, (_, i) => ({ id: `in-${i}`, type: "logfile", use_output: "default" })),
      },
    });
    const key = (await admin("POST", "/api/fleet/enrollment_api_keys", { policy_id: "e2e" })).item.api_key!;

    const enrollBody = Buffer.from(JSON.stringify({ type: "PERMANENT", id: "", replace_token: "", metadata: { local: {}, user_provided: {}, tags: null } }));
    const enrolled = await raw("POST", "/api/fleet/agents/enroll?", { ...agentHeaders(), Authorization: `ApiKey ${key}` }, enrollBody);
    expect(enrolled.status).toBe(200);
    expect(enrolled.headers["x-request-id"]).toBe("01K3BWR7Q4M9ZJ8E2YV6T1N5PD");
    const item = (decoded(enrolled) as { item: unknown }).item as { id: string; access_api_key: string };

    // 9.4+ agents gzip the check-in body; the answer is > 1 KiB, so it comes back gzipped.
    const checkinBody = gzipSync(JSON.stringify({ status: "starting", message: "", components: null, upgrade: {} }));
    const auth = { ...agentHeaders(), Authorization: `ApiKey ${item.access_api_key}` };
    const first = await raw("POST", `/api/fleet/agents/${item.id}/checkin?`, { ...auth, "Content-Encoding": "gzip" }, checkinBody);
    expect(first.status).toBe(200);
    expect(first.headers["content-encoding"]).toBe("gzip");
    const checkin = JSON.parse(gunzipSync(first.body).toString()) as { ack_token: string; actions: Array<{ id: string }> };
    expect(checkin.ack_token).toBe("");
    expect(checkin.actions.map((a) => a.id)).toEqual(["policy:e2e:1"]);

    const ack = Buffer.from(JSON.stringify({ events: [{ action_id: "policy:e2e:1", agent_id: item.id, subtype: "ACKNOWLEDGED", type: "ACTION_RESULT", timestamp: new Date().toISOString(), message: "ok" }] }));
    const acked = await raw("POST", `/api/fleet/agents/${item.id}/acks?`, auth, ack);
    expect(acked.status).toBe(200);
    expect(decoded(acked)).toEqual({ action: "acks", items: [{ status: 200, message: "OK" }] });

    // A plain check-in with nothing pending is held for the (shortened) long poll.
    const started = Date.now();
    const polled = await raw("POST", `/api/fleet/agents/${item.id}/checkin?`, auth, Buffer.from(JSON.stringify({ status: "online", message: "Running", components: [], agent_policy_id: "e2e", policy_revision_idx: 1, upgrade: {} })));
    expect(polled.status).toBe(200);
    expect(decoded(polled)).toEqual({ ack_token: "", action: "checkin" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it("answers errors with fleet-server's headers", async () => {
    const res = await raw("POST", "/api/fleet/agents/enroll?", agentHeaders(), Buffer.from("{}"));
    expect(res.status).toBe(401);
    expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(res.headers["x-content-type-options"]).toBe("nosniff");
    expect(res.headers["elastic-api-version"]).toBe("2023-06-01");
    expect(decoded(res)).toEqual({ statusCode: 401, error: "ErrNoAuthHeader", message: "no authorization header" });
  });

  it("refuses an oversize chunked enrollment body at once in fleet-server's shape, and keeps answering new connections", async () => {
    await admin("PUT", "/api/fleet/agent_policies/e2e-big", {
      name: "e2e-big",
      policy: { outputs: { default: { type: "elasticsearch", hosts: ["https://es.example:9200"] } }, inputs: [] },
    });
    const key = (await admin("POST", "/api/fleet/enrollment_api_keys", { policy_id: "e2e-big" })).item.api_key!;

    // A keep-alive connection whose chunked body passes the 512 KiB limit and never ends: the answer
    // must come while the client is still sending (wrangler dev's proxy held it until the body ended).
    const socket = connect(server.port, "127.0.0.1");
    const answer = new Promise<string>((resolve, reject) => {
      let text = "";
      socket.on("data", (d: Buffer) => {
        text += d.toString();
        const head = text.indexOf("\r\n\r\n");
        if (head >= 0 && text.length >= head + 4 + Number(/content-length: (\d+)/i.exec(text)?.[1] ?? Infinity)) resolve(text);
      });
      socket.on("error", reject);
      socket.on("close", () => reject(new Error(`closed without a whole answer: ${JSON.stringify(text)}`)));
    });
    const headers = { ...agentHeaders(), Authorization: `ApiKey ${key}`, "Accept-Encoding": "identity", "Transfer-Encoding": "chunked", Connection: "keep-alive" };
    socket.write(`POST /api/fleet/agents/enroll? HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`);
    const chunk = Buffer.alloc(64 << 10, "a");
    for (let sent = 0; sent <= 600 << 10; sent += chunk.length) socket.write(`${chunk.length.toString(16)}\r\n${chunk.toString()}\r\n`);
    try {
      const text = await answer;
      expect(text.split("\r\n")[0]).toBe("HTTP/1.1 400 Bad Request");
      expect(JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4))).toEqual({
        statusCode: 400,
        error: "BadRequest",
        message: "Bad request: unable to read request body: http: request body too large",
      });
      // Meanwhile (the refused body still open) a new connection is answered.
      const status = await fetch(`${server.url}/api/status`, { signal: AbortSignal.timeout(10_000) });
      expect(status.status).toBe(200);
    } finally {
      socket.destroy();
    }
  });
});
