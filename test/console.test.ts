import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ADMIN_TOKEN, BASE, ackEvent, ackRequest, adminRequest, checkinRequest, enrolledAgent, eventually, json, putPolicy, queueAction } from "./helpers";

describe("the console's page", () => {
  it("GET / answers the console's HTML with a strict Content-Security-Policy", async () => {
    const res = await SELF.fetch(`${BASE}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toMatch(/^text\/html/);
    const csp = res.headers.get("Content-Security-Policy")!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain("unsafe-inline");
    expect(csp).not.toContain("unsafe-eval");
    expect(res.headers.get("X-Content-Type-Options")).toBe("nosniff");
    const html = await res.text();
    expect(html).toContain('<script type="module" src="/console/main.js"></script>');
    // No inline script or style: every <script> has a src, and there is no <style> or style attribute.
    expect(html.match(/<script(?![^>]*\ssrc=)[^>]*>/g)).toBeNull();
    expect(html).not.toMatch(/<style|\sstyle=/);
  });

  it("serves the console's scripts and styles with the same headers, and nothing else under /console/", async () => {
    const script = await SELF.fetch(`${BASE}/console/main.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get("Content-Type")).toMatch(/javascript/);
    expect(script.headers.get("Content-Security-Policy")).toContain("default-src 'none'");
    expect((await SELF.fetch(`${BASE}/console/console.css`)).headers.get("Content-Type")).toMatch(/^text\/css/);
    for (const path of ["/console/missing.js", "/console/..%2Fwrangler.toml", "/console/main.js.map", "/index.html", "/console/"]) {
      const res = await SELF.fetch(`${BASE}${path}`);
      expect(res.status, path).toBe(404);
      expect(await json(res), path).toEqual({ statusCode: 404, error: "NotFound", message: "not found" });
    }
  });

  it("never builds markup from data: no innerHTML, outerHTML, insertAdjacentHTML or document.write in its scripts", async () => {
    for (const file of ["main.js", "dom.js", "api.js", "charts.js", "live.js", "page-overview.js", "page-policies.js", "page-policy.js", "page-agents.js", "page-agent.js", "page-actions.js", "page-keys.js"]) {
      const res = await SELF.fetch(`${BASE}/console/${file}`);
      expect(res.status, file).toBe(200);
      expect(await res.text(), file).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
    }
  });
});

describe("GET /api/fleet/console/overview", () => {
  it("counts agents by status, version and policy, and check-ins per minute", async () => {
    await putPolicy("console-a");
    const first = await enrolledAgent("console-a");
    await enrolledAgent("console-a");
    expect((await checkinRequest(first, { status: "online" })).status).toBe(200);
    type Overview = {
      server: { version: string };
      results: Record<string, number>;
      by_policy: Array<Record<string, unknown>>;
      by_version: Array<{ version: string; agents: number }>;
      checkins_last_minute: number;
      checkins_this_minute: number;
      checkins_per_minute: Array<{ minute: string; count: number }>;
      mirror: { mode: string };
    };
    // Check-ins are counted by the agents' stores and reach the hub with their flush (within 10 s).
    const overview = await eventually(async () => {
      const res = await adminRequest("GET", "/api/fleet/console/overview");
      expect(res.status).toBe(200);
      const answer = await json<Overview>(res);
      const mine = answer.by_policy.find((p) => p.policy_id === "console-a")!;
      expect(mine).toMatchObject({ enrolling: 1 });
      // The one check-in falls in this minute, or (read after the minute turned) the last one.
      expect((mine.checkins_last_minute as number) + (mine.checkins_this_minute as number)).toBe(1);
      return answer;
    }, 15_000, 250);
    expect(overview.server.version).toBe("9.6.0");
    expect(overview.mirror.mode).toBe("standalone");
    const mine = overview.by_policy.find((p) => p.policy_id === "console-a")!;
    expect(mine).toMatchObject({ name: "Linux servers", revision: 1, total: 2, active: 2, enrolling: 1, rollout: null });
    expect(overview.by_version).toContainEqual({ version: "9.6.0", agents: expect.any(Number) });
    expect(overview.checkins_per_minute).toHaveLength(30);
    expect(overview.checkins_per_minute.at(-1)!.count).toBe(overview.checkins_this_minute);
    expect(overview.checkins_per_minute.at(-2)!.count).toBe(overview.checkins_last_minute);
    expect(overview.checkins_last_minute + overview.checkins_this_minute).toBeGreaterThanOrEqual(1);
    expect(overview.results.total).toBeGreaterThanOrEqual(2);
  });

  it("is for admins only", async () => {
    expect((await SELF.fetch(`${BASE}/api/fleet/console/overview`)).status).toBe(401);
    expect((await adminRequest("GET", "/api/fleet/console/overview", undefined, "wrong")).status).toBe(401);
  });
});

describe("an agent's page data (GET /api/fleet/agents/{id})", () => {
  it("keeps the changes of the status it reports, newest first, and its latest action results", async () => {
    const agent = await enrolledAgent("console-agent");
    const first = await json<{ actions: Array<{ id: string }> }>(await checkinRequest(agent, { status: "online", message: "Running" }));
    expect(first.actions.map((a) => a.id)).toEqual(["policy:console-agent:1"]);
    expect((await ackRequest(agent, [ackEvent(agent, "policy:console-agent:1", "POLICY_CHANGE")])).status).toBe(200);
    // The same status again writes nothing; a new one is a change. This check-in also takes an action, whose ack fails.
    const settings = await queueAction(agent.id, { type: "SETTINGS", data: { log_level: "debug" } });
    const second = await json<{ actions: Array<{ id: string }> }>(
      await checkinRequest(agent, { status: "online", message: "Running", agent_policy_id: "console-agent", policy_revision_idx: 1 }),
    );
    expect(second.actions.map((a) => a.id)).toEqual([settings.id]);
    expect((await ackRequest(agent, [ackEvent(agent, settings.id, "SETTINGS", { error: "log level refused" })])).status).toBe(200);
    expect((await checkinRequest(agent, { status: "degraded", message: "disk <b>full</b>", agent_policy_id: "console-agent", policy_revision_idx: 1 })).status).toBe(200);
    const { item } = await json<{ item: { status_history: Array<Record<string, unknown>>; latest_action_results: Array<Record<string, unknown>> } }>(
      await adminRequest("GET", `/api/fleet/agents/${agent.id}`),
    );
    expect(item.status_history).toEqual([
      { at: expect.any(String), status: "degraded", message: "disk <b>full</b>" },
      { at: expect.any(String), status: "online", message: "Running" },
      { at: expect.any(String), status: "enrolled", message: null },
    ]);
    // Policy changes are acked but are not stored actions: the SETTINGS action is the one result.
    expect(item.latest_action_results).toEqual([{ action_id: settings.id, type: "SETTINGS", created_at: expect.any(String), error: "log level refused" }]);
  });

  it("keeps only the latest 20 changes", async () => {
    const agent = await enrolledAgent("console-agent-long");
    // Never acking the policy, each check-in is answered at once (with the POLICY_CHANGE again).
    for (let i = 1; i <= 22; i++) {
      const res = await checkinRequest(agent, { status: i % 2 ? "degraded" : "online", message: `change ${i}` });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    const { item } = await json<{ item: { status_history: Array<{ status: string; message: string | null }> } }>(await adminRequest("GET", `/api/fleet/agents/${agent.id}`));
    expect(item.status_history).toHaveLength(20);
    expect(item.status_history[0]).toMatchObject({ status: "online", message: "change 22" });
    expect(item.status_history[19]).toMatchObject({ status: "degraded", message: "change 3" });
  });
});

describe("GET /api/fleet/agent_policies/{id}/revisions/{revision}/diff", () => {
  it("answers what a revision changed against the one before it, with values", async () => {
    await putPolicy("console-diff");
    await putPolicy("console-diff", { agent: { logging: { level: "debug" } } });
    const res = await adminRequest("GET", "/api/fleet/agent_policies/console-diff/revisions/2/diff");
    expect(res.status).toBe(200);
    const { item } = await json<{ item: Record<string, unknown> }>(res);
    expect(item).toEqual({
      revision: 2,
      previous: 1,
      created_at: expect.any(String),
      created_by: "admin-token",
      // `agent` was replaced whole: monitoring's leaves removed, logging's added.
      changes: [
        { path: "agent.monitoring.enabled", before: true },
        { path: "agent.monitoring.logs", before: true },
        { path: "agent.monitoring.metrics", before: true },
        { path: "agent.monitoring.namespace", before: "default" },
        { path: "agent.monitoring.use_output", before: "default" },
        { path: "agent.logging.level", after: "debug" },
      ],
      omitted: 0,
    });
    const first = await json<{ item: { previous: number | null; changes: unknown[] } }>(await adminRequest("GET", "/api/fleet/agent_policies/console-diff/revisions/1/diff"));
    expect(first.item.previous).toBeNull();
    expect(first.item.changes.length).toBeGreaterThan(5);
  });

  it("refuses a bad or unknown revision with a clear error", async () => {
    await putPolicy("console-diff-2");
    const bad = await adminRequest("GET", "/api/fleet/agent_policies/console-diff-2/revisions/abc/diff");
    expect(bad.status).toBe(400);
    expect((await json<{ message: string }>(bad)).message).toMatch(/^revision: /);
    const missing = await adminRequest("GET", "/api/fleet/agent_policies/console-diff-2/revisions/9/diff");
    expect(missing.status).toBe(404);
    expect(await json(missing)).toEqual({ statusCode: 404, error: "NotFound", message: "agent policy console-diff-2 has no revision 9" });
    expect((await adminRequest("GET", "/api/fleet/agent_policies/nope/revisions/1/diff")).status).toBe(404);
  });
});

describe("GET /api/fleet/console/live", () => {
  async function open(): Promise<WebSocket> {
    const res = await SELF.fetch(`${BASE}/api/fleet/console/live`, { headers: { Upgrade: "websocket" } });
    expect(res.status).toBe(101);
    const socket = res.webSocket!;
    socket.accept();
    return socket;
  }

  function next(socket: WebSocket): Promise<{ kind: "message"; data: string } | { kind: "close"; code: number }> {
    return new Promise((resolve) => {
      socket.addEventListener("message", (event) => resolve({ kind: "message", data: event.data as string }), { once: true });
      socket.addEventListener("close", (event) => resolve({ kind: "close", code: event.code }), { once: true });
    });
  }

  /** Reads overviews until `done` accepts one (true), the socket closes or `ms` pass (false). */
  function overviewsUntil(socket: WebSocket, ms: number, done: (item: { by_policy: Array<{ policy_id: string; total: number }> }) => boolean): Promise<boolean> {
    return new Promise((resolve) => {
      const finish = (result: boolean) => {
        clearTimeout(timer);
        socket.removeEventListener("message", onMessage);
        socket.removeEventListener("close", onClose);
        resolve(result);
      };
      const onMessage = (event: MessageEvent) => {
        const message = JSON.parse(event.data as string) as { type: string; item: { by_policy: Array<{ policy_id: string; total: number }> } };
        if (message.type === "overview" && done(message.item)) finish(true);
      };
      const onClose = () => finish(false);
      const timer = setTimeout(() => finish(false), ms);
      socket.addEventListener("message", onMessage);
      socket.addEventListener("close", onClose);
    });
  }

  it("pushes the overview once its first message authenticates, and again once a change lands (pushed by the hub or read on refresh)", async () => {
    await putPolicy("console-live");
    const socket = await open();
    const first = next(socket);
    socket.send(JSON.stringify({ type: "auth", authorization: `Bearer ${ADMIN_TOKEN}` }));
    const pushed = await first;
    expect(pushed.kind).toBe("message");
    const overview = JSON.parse((pushed as { data: string }).data) as { type: string; item: { by_policy: Array<{ policy_id: string; total: number }> } };
    expect(overview.type).toBe("overview");
    expect(overview.item.by_policy.find((p) => p.policy_id === "console-live")?.total).toBe(0);

    await enrolledAgent("console-live");
    // An overview composed while the enrollment was in flight (a resync, another hub's push) may
    // still arrive showing 0; what must come, within a bound, is one that shows 1.
    const totals: number[] = [];
    const seen = overviewsUntil(socket, 5_000, (item) => {
      const total = item.by_policy.find((p) => p.policy_id === "console-live")?.total ?? -1;
      totals.push(total);
      return total === 1;
    });
    socket.send(JSON.stringify({ type: "refresh" }));
    expect(await seen, `totals seen: ${totals.join(", ")}`).toBe(true);
    expect(totals.every((total) => total === 0 || total === 1)).toBe(true);
    socket.close(1000);
  });

  it("closes with 4401 and sends nothing when the first message is not a valid credential", async () => {
    for (const first of [JSON.stringify({ type: "auth", authorization: "Bearer wrong" }), JSON.stringify({ type: "refresh" }), "not json"]) {
      const socket = await open();
      const answer = next(socket);
      socket.send(first);
      expect(await answer, first).toEqual({ kind: "close", code: 4401 });
    }
  });

  it("answers 426 to a plain GET", async () => {
    const res = await SELF.fetch(`${BASE}/api/fleet/console/live`);
    expect(res.status).toBe(426);
    expect((await json<{ error: string }>(res)).error).toBe("UpgradeRequired");
  });
});
