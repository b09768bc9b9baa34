import { SELF, env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { AgentRoster } from "../durable/agent-roster";
import { CheckinCounts, CHECKIN_COUNTS_SCHEMA, CHECKIN_SOURCES_SCHEMA } from "../durable/checkin-counts";
import type { FleetOverviewData } from "../src/admin/fleet-overview";
import type { AgentSummary } from "../src/agents/status";
import { CHECKIN_MINUTES_KEPT, MINUTE_MS, minuteOf } from "../src/agents/checkin-rate";
import { fleetConfig } from "../src/config";
import { FEED_RESYNC_MS } from "../src/console/live-channel";
import { policyHub } from "../src/durable-stubs";
import { ADMIN_TOKEN, BASE, adminRequest, agentHeaders, checkinRequest, enrolledAgent, eventually, json, putPolicy } from "./helpers";

type Overview = FleetOverviewData;

const feedStub = () => env.CONSOLE_FEED.get(env.CONSOLE_FEED.idFromName("console"));

/** A console's live channel, signed in, with a queue of the overviews pushed to it. */
async function signedInChannel(authorization = `Bearer ${ADMIN_TOKEN}`) {
  const res = await SELF.fetch(`${BASE}/api/fleet/console/live`, { headers: { Upgrade: "websocket" } });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  ws.accept();
  const inbox: Overview[] = [];
  const waiting: Array<() => void> = [];
  let closed: number | null = null;
  ws.addEventListener("message", (event) => {
    inbox.push((JSON.parse(event.data as string) as { item: Overview }).item);
    waiting.splice(0).forEach((wake) => wake());
  });
  ws.addEventListener("close", (event) => {
    closed = event.code;
    waiting.splice(0).forEach((wake) => wake());
  });
  /** The first overview pushed from now on (or already queued) that satisfies `check`. */
  const until = async (check: (o: Overview) => boolean, withinMs = 10_000): Promise<Overview> => {
    const deadline = Date.now() + withinMs;
    for (;;) {
      const found = inbox.splice(0).find(check);
      if (found) return found;
      if (closed !== null) throw new Error(`channel closed with ${closed}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no such overview within ${withinMs} ms`);
      await new Promise<void>((resolve) => {
        waiting.push(resolve);
        setTimeout(resolve, left);
      });
    }
  };
  ws.send(JSON.stringify({ type: "auth", authorization }));
  const first = await until(() => true);
  return { first, until, closed: () => closed, send: (message: unknown) => ws.send(JSON.stringify(message)), close: () => ws.close(1000, "done") };
}

const policyIn = (overview: Overview, policyId: string) => overview.by_policy.find((p) => p.policy_id === policyId);

/** Writes a roster row in the hub's SQLite directly, as its roster would, but behind the hub's back: no push follows. */
async function rosterRowBehindTheHub(policyId: string, row: Partial<AgentSummary> & { agent_id: string }): Promise<void> {
  const summary: AgentSummary = {
    active: true,
    enrolled_at: new Date().toISOString(),
    last_checkin: null,
    last_checkin_status: null,
    last_checkin_message: null,
    hostname: null,
    version: "9.6.0",
    tags: [],
    policy_revision_idx: 0,
    upgrading: false,
    unenrolling: false,
    unhealthy_reason: null,
    type: "PERMANENT",
    ...row,
  };
  await runInDurableObject(env.POLICY_HUBS.get(env.POLICY_HUBS.idFromName(policyId)), async (_instance, state) => {
    new AgentRoster(state.storage.sql).upsert(summary, 1);
  });
}

describe("the console's feed: live overview pushed by the policy hubs", () => {
  it("sends a hub's change to an open console with no reading of its own (its timer removed)", async () => {
    await putPolicy("feed-push");
    const channel = await signedInChannel();
    expect(policyIn(channel.first, "feed-push")).toMatchObject({ total: 0 });
    // The feed's only timer (its resync) is gone and nobody asks for a refresh: only a push can tell it.
    await runInDurableObject(feedStub(), async (_instance, state) => {
      expect(await state.storage.getAlarm()).not.toBeNull();
      await state.storage.deleteAlarm();
    });
    await enrolledAgent("feed-push");
    const pushed = await channel.until((o) => policyIn(o, "feed-push")?.total === 1);
    expect(policyIn(pushed, "feed-push")).toMatchObject({ total: 1, enrolling: 1, active: 1 });
    channel.close();
  });

  it("pushes a status that changes with time alone: the hub wakes when its next agent goes offline", async () => {
    await putPolicy("feed-offline");
    // An agent whose last check-in leaves it online for 6 s more (AGENT_OFFLINE_AFTER after it).
    const lastCheckin = new Date(Date.now() - fleetConfig(env).offlineAfterMs + 6_000).toISOString();
    await rosterRowBehindTheHub("feed-offline", { agent_id: "going-offline", last_checkin: lastCheckin, last_checkin_status: "online", policy_revision_idx: 1 });
    const channel = await signedInChannel();
    expect(policyIn(channel.first, "feed-offline")).toMatchObject({ online: 1, offline: 0 });
    // No event will come, and the feed's own timer is gone: only the hub's wake-up can tell.
    await runInDurableObject(feedStub(), async (_instance, state) => state.storage.deleteAlarm());
    const later = await channel.until((o) => policyIn(o, "feed-offline")?.offline === 1, 15_000);
    expect(policyIn(later, "feed-offline")).toMatchObject({ online: 0, offline: 1 });
    channel.close();
  });

  it("repairs a change whose push was lost at its next resync, due within 30 s", async () => {
    await putPolicy("feed-lost");
    const channel = await signedInChannel();
    expect(policyIn(channel.first, "feed-lost")?.total).toBe(0);
    // A roster row written behind the hub's back: the change happened, its push never did.
    await rosterRowBehindTheHub("feed-lost", { agent_id: "lost-push-agent" });
    const alarm = await runInDurableObject(feedStub(), async (_instance, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect(alarm! - Date.now()).toBeLessThanOrEqual(FEED_RESYNC_MS);
    expect(await runDurableObjectAlarm(feedStub())).toBe(true);
    const repaired = await channel.until((o) => policyIn(o, "feed-lost")?.total === 1);
    expect(policyIn(repaired, "feed-lost")).toMatchObject({ total: 1, enrolling: 1 });
    // ...and the feed keeps resyncing while a console is open.
    expect(await runInDurableObject(feedStub(), async (_instance, state) => state.storage.getAlarm())).not.toBeNull();
    channel.close();
  });

  it("checks a channel's credential again: a revoked admin API key is closed with 4401 at the next check", async () => {
    const created = await json<{ item: { id: string; api_key: string } }>(await adminRequest("POST", "/api/fleet/admin_api_keys", { name: "feed-revoke" }));
    const channel = await signedInChannel(`Bearer ${created.item.api_key}`);
    const token = await signedInChannel();
    expect((await adminRequest("DELETE", `/api/fleet/admin_api_keys/${created.item.id}`)).status).toBe(200);
    // As if LIVE_RECHECK_MS had passed since both signed in.
    await runInDurableObject(feedStub(), async (_instance, state) => {
      for (const ws of state.getWebSockets()) ws.serializeAttachment({ ...(ws.deserializeAttachment() as object), checkedAt: 0 });
    });
    await runDurableObjectAlarm(feedStub());
    await eventually(async () => expect(channel.closed()).toBe(4401));
    // The admin token's channel holds: its credential is still the configured one.
    expect(token.closed()).toBeNull();
    token.close();
  });

  it("closes a channel that has not signed in within 10 s, at the feed's alarm", async () => {
    const res = await SELF.fetch(`${BASE}/api/fleet/console/live`, { headers: { Upgrade: "websocket" } });
    const ws = res.webSocket!;
    ws.accept();
    const closed = new Promise<number>((resolve) => ws.addEventListener("close", (event) => resolve(event.code)));
    await runInDurableObject(feedStub(), async (_instance, state) => {
      const alarm = await state.storage.getAlarm();
      expect(alarm).not.toBeNull();
      for (const socket of state.getWebSockets()) {
        const attachment = socket.deserializeAttachment() as { admin: string | null };
        if (attachment.admin === null) socket.serializeAttachment({ ...attachment, opened: 0 });
      }
    });
    await runDurableObjectAlarm(feedStub());
    expect(await closed).toBe(4401);
  });
});

describe("check-ins per minute", () => {
  it("counts every check-in (HTTP polls and socket check-ins), not the agents that checked in", async () => {
    await putPolicy("rate-p");
    const a = await enrolledAgent("rate-p");
    const b = await enrolledAgent("rate-p");
    const started = Date.now();
    // Never acked, the policy is pending: each HTTP check-in is answered at once.
    for (let i = 0; i < 3; i++) expect((await checkinRequest(a, { status: "online" })).status).toBe(200);
    const res = await SELF.fetch(`${BASE}/api/fleet/agents/${b.id}/ws`, { headers: { ...agentHeaders(), Authorization: `ApiKey ${b.key}`, Upgrade: "websocket" } });
    expect(res.status).toBe(101);
    const socket = res.webSocket!;
    socket.accept();
    for (const id of [1, 2]) {
      const answered = new Promise<string>((resolve) => socket.addEventListener("message", (event) => resolve(event.data as string), { once: true }));
      socket.send(JSON.stringify({ v: 1, type: "checkin", id, body: { status: "online", message: "Running" } }));
      expect(JSON.parse(await answered)).toMatchObject({ type: "checkin", id, status: 200 });
    }
    socket.close(1000, "done");
    const ended = Date.now();

    // The stores flush their counts with their held check-in times (within 10 s), one batch each.
    const counted = await eventually(
      async () => {
        const { checkins } = await policyHub(env, "rate-p").glance("rate-p");
        expect(checkins.reduce((sum, [, n]) => sum + n, 0)).toBe(5);
        return checkins;
      },
      15_000,
      250,
    );
    // Each in the minute it happened.
    for (const [minute] of counted) expect(minute === minuteOf(started) || minute === minuteOf(ended)).toBe(true);
    const before = Date.now();
    const item = await json<Overview>(await adminRequest("GET", "/api/fleet/console/overview"));
    // The overview's current minute is its last; the policy's two counts are that minute and the one before.
    expect(item.checkins_per_minute).toHaveLength(30);
    const current = Date.parse(item.checkins_per_minute.at(-1)!.minute);
    expect([minuteOf(before), minuteOf(Date.now())]).toContain(current);
    const mine = policyIn(item, "rate-p")!;
    const at = (minute: number) => counted.find(([m]) => m === minute)?.[1] ?? 0;
    expect(mine.checkins_this_minute).toBe(at(current));
    expect(mine.checkins_last_minute).toBe(at(current - MINUTE_MS));
  });

  it("counts a batch delivered twice once", async () => {
    await putPolicy("rate-twice");
    const hub = policyHub(env, "rate-twice");
    const minute = minuteOf(Date.now());
    const batch = { source: "store-x", seq: 41, minutes: [[minute, 7]] as Array<[number, number]> };
    await hub.countCheckins([batch]);
    await hub.countCheckins([batch, { source: "store-x", seq: 42, minutes: [[minute, 2]] }]);
    expect((await hub.glance("rate-twice")).checkins).toEqual([[minute, 9]]);
    // Minutes older than the hour kept are not counted at all.
    await hub.countCheckins([{ source: "store-x", seq: 43, minutes: [[minute - 61 * MINUTE_MS, 5]] }]);
    expect((await hub.glance("rate-twice")).checkins).toEqual([[minute, 9]]);
  });

  it("keeps its counts, and counts a batch once, across the change to one row per store", async () => {
    await putPolicy("rate-migrated");
    const minute = minuteOf(Date.now());
    const store = "0f".repeat(32);
    await runInDurableObject(env.POLICY_HUBS.get(env.POLICY_HUBS.idFromName("rate-migrated")), async (_instance, state: DurableObjectState) => {
      // A hub as the earlier schema left it: batch 5 of this store counted, a row per batch and per minute.
      state.storage.sql.exec(`DROP TABLE checkin_sources; ${CHECKIN_COUNTS_SCHEMA}`);
      state.storage.sql.exec("INSERT INTO checkin_batches (batch, minute) VALUES (?, ?)", `${store}:5`, minute);
      state.storage.sql.exec("INSERT INTO checkin_minutes (minute, count) VALUES (?, 4), (?, 2)", minute, minute - MINUTE_MS);
      state.storage.sql.exec(CHECKIN_SOURCES_SCHEMA);
      expect(state.storage.sql.exec("SELECT source, batches FROM checkin_sources ORDER BY source").toArray()).toEqual([
        { source: "", batches: "[]" },
        { source: store, batches: JSON.stringify([[5, minute]]) },
      ]);
    });
    const hub = policyHub(env, "rate-migrated");
    await hub.countCheckins([{ source: store, seq: 5, minutes: [[minute, 4]] }]);
    await hub.countCheckins([{ source: store, seq: 6, minutes: [[minute, 1]] }]);
    expect((await hub.glance("rate-migrated")).checkins).toEqual([
      [minute - MINUTE_MS, 2],
      [minute, 5],
    ]);
  });

  it("remembers a store's counted batches and minutes only for the minutes it keeps, and sums the stores' minutes", async () => {
    await putPolicy("rate-forget");
    await runInDurableObject(env.POLICY_HUBS.get(env.POLICY_HUBS.idFromName("rate-forget")), async (_instance, state: DurableObjectState) => {
      const counts = new CheckinCounts(state.storage.sql);
      const t0 = minuteOf(Date.now());
      const remembered = () => JSON.parse(state.storage.sql.exec<{ batches: string }>("SELECT batches FROM checkin_sources WHERE source = 's'").one().batches) as unknown;
      expect(counts.add([{ source: "s", seq: 1, minutes: [[t0, 1]] }, { source: "s", seq: 2, minutes: [[t0, 2]] }], t0)).toBe(true);
      expect(counts.add([{ source: "s", seq: 2, minutes: [[t0, 2]] }], t0)).toBe(false);
      expect(remembered()).toEqual([[1, t0], [2, t0]]);
      // An hour on, the minute t0 is no longer kept: its batches are forgotten as the next one is counted.
      const later = t0 + CHECKIN_MINUTES_KEPT * MINUTE_MS;
      expect(counts.add([{ source: "s", seq: 3, minutes: [[later, 1]] }], later)).toBe(true);
      expect(remembered()).toEqual([[3, later]]);
      expect(counts.recent(later)).toEqual([[later, 1]]);
      // Another store's batch in the same minute adds to it; one a minute earlier shows beside it.
      expect(counts.add([{ source: "t", seq: 1, minutes: [[later, 4], [later - MINUTE_MS, 2]] }], later)).toBe(true);
      expect(counts.recent(later)).toEqual([[later - MINUTE_MS, 2], [later, 5]]);
    });
  });

  it("counts a batch that rides the roster's call once, however often the call is delivered", async () => {
    await putPolicy("rate-roster");
    const hub = policyHub(env, "rate-roster");
    const minute = minuteOf(Date.now());
    const none = { upserts: [], removes: [], touches: [] };
    const batch = { source: "store-y", seq: 7, minutes: [[minute, 3]] as Array<[number, number]> };
    await hub.applyRoster("rate-roster", none, [batch]);
    await hub.applyRoster("rate-roster", none, [batch, { source: "store-y", seq: 8, minutes: [[minute, 1]] }]);
    expect((await hub.glance("rate-roster")).checkins).toEqual([[minute, 4]]);
  });
});
