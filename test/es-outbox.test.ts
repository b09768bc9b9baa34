import { env, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { AlarmSchedule } from "../durable/alarm-schedule";
import { EsOutbox } from "../durable/es-outbox";
import { INDEX } from "../src/es/indices";

// Error paths only: a stub fetch stands in for an unreachable cluster (the real node is exercised
// in test/elasticsearch/).
describe("EsOutbox back-off", () => {
  afterEach(() => vi.restoreAllMocks());

  it("does not retry before its back-off when the shared alarm fires early for another concern", async () => {
    const fetch = vi.spyOn(globalThis, "fetch").mockRejectedValue(new TypeError("connect ECONNREFUSED"));
    const stub = env.AGENT_STORES.get(env.AGENT_STORES.idFromName("outbox-backoff-test"));
    await runInDurableObject(stub, async (_instance: unknown, state) => {
      const reports: unknown[] = [];
      const alarms = new AlarmSchedule(state.storage);
      const outbox = new EsOutbox(state, { ...env, ES_URL: "http://127.0.0.1:9", ES_API_KEY: "k" }, {
        flushDelayMs: 100,
        report: async (backlog) => void reports.push(backlog),
        wake: (at) => alarms.request(at),
      });
      outbox.add({ index: INDEX.agents, id: "a1", op: "index", body: { id: "a1" } });
      // The flush the outbox asked for is written (requests are written in order).
      await alarms.request(Date.now() + 100);

      await alarms.run(() => outbox.drain());
      const calls = fetch.mock.calls.length;
      expect(calls).toBeGreaterThan(0);
      expect(reports).toHaveLength(1);
      const retryAt = (await state.storage.getAlarm())!;
      expect(retryAt).toBeGreaterThan(Date.now());
      expect(Number.isInteger(retryAt)).toBe(true);

      // Another concern's alarm fires first: nothing is sent, and the outbox asks for its back-off time again.
      await state.storage.setAlarm(Date.now() + 10);
      await alarms.run(() => outbox.drain());
      expect(fetch.mock.calls.length).toBe(calls);
      expect(await state.storage.getAlarm()).toBe(retryAt);

      // At the back-off time it tries again.
      vi.spyOn(Date, "now").mockReturnValue(retryAt);
      await outbox.drain();
      expect(fetch.mock.calls.length).toBeGreaterThan(calls);
      expect(outbox.stats().pending).toBe(1);
    });
  });
});
