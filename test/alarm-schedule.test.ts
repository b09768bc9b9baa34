import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { AlarmSchedule } from "../durable/alarm-schedule";

/**
 * The runtime's rule for a fired alarm, as Cloudflare documents it: when the handler returns, the
 * alarm that fired is deleted unless the handler set one. `getAlarm()` during the run still answers
 * the firing time. Emulated here around `run`, on real Durable Object storage.
 */
async function fire(storage: DurableObjectStorage, schedule: AlarmSchedule, during: () => Promise<void>): Promise<void> {
  const fired = (await storage.getAlarm()) ?? Date.now();
  await storage.setAlarm(fired);
  let setDuringRun = false;
  const set = storage.setAlarm.bind(storage);
  storage.setAlarm = async (...args: Parameters<DurableObjectStorage["setAlarm"]>) => {
    setDuringRun = true;
    return set(...args);
  };
  try {
    await schedule.run(during);
  } finally {
    storage.setAlarm = set;
  }
  if (!setDuringRun) await storage.deleteAlarm();
}

// A BulkJob object without a job: its own alarm handler does nothing, so the storage is ours.
const scratch = (name: string) => env.BULK_JOBS.get(env.BULK_JOBS.idFromName(`alarm-schedule-${name}`));

describe("AlarmSchedule (one alarm, many concerns)", () => {
  it("keeps a wake-up asked for while the alarm handler runs (the fired alarm would otherwise be deleted)", async () => {
    await runInDurableObject(scratch("during-run"), async (_: unknown, state: DurableObjectState) => {
      const schedule = new AlarmSchedule(state.storage);
      const flushAt = Date.now() + 10_000;
      await fire(state.storage, schedule, async () => {
        // What a held heartbeat does when it arrives mid-run: the running alarm reads as already set.
        expect(await state.storage.getAlarm()).not.toBeNull();
        await schedule.request(flushAt);
      });
      expect(await state.storage.getAlarm()).toBe(flushAt);
    });
  });

  it("keeps the earliest of several wake-ups asked for during a run, and one asked for while it ends", async () => {
    await runInDurableObject(scratch("earliest"), async (_: unknown, state: DurableObjectState) => {
      const schedule = new AlarmSchedule(state.storage);
      const now = Date.now();
      let late: Promise<void> = Promise.resolve();
      await fire(state.storage, schedule, async () => {
        await schedule.request(now + 10_000);
        await schedule.request(now + 500);
        await schedule.request(now + 60_000);
        // Asked for without waiting, as a concern does from a synchronous write path.
        late = schedule.request(now + 200);
      });
      await late;
      expect(await state.storage.getAlarm()).toBe(now + 200);
    });
  });

  it("never postpones an earlier wake-up, and re-arms an alarm whose time has passed", async () => {
    await runInDurableObject(scratch("outside-run"), async (_: unknown, state: DurableObjectState) => {
      const schedule = new AlarmSchedule(state.storage);
      const now = Date.now();
      await schedule.request(now + 5_000);
      await schedule.request(now + 50_000);
      expect(await state.storage.getAlarm()).toBe(now + 5_000);
      await schedule.request(now + 1_000);
      expect(await state.storage.getAlarm()).toBe(now + 1_000);

      // After a restart (a new schedule on the same storage) an alarm in the past is not trusted to fire.
      await state.storage.setAlarm(now - 60_000);
      const restarted = new AlarmSchedule(state.storage);
      await restarted.request(now + 10_000);
      const alarm = (await state.storage.getAlarm())!;
      expect(alarm).toBeGreaterThanOrEqual(now);
      expect(alarm).toBeLessThanOrEqual(Date.now());
    });
  });

  it("writes nothing when nothing was asked for during the run, so the fired alarm is deleted", async () => {
    await runInDurableObject(scratch("idle"), async (_: unknown, state: DurableObjectState) => {
      const schedule = new AlarmSchedule(state.storage);
      await fire(state.storage, schedule, async () => {});
      expect(await state.storage.getAlarm()).toBeNull();
    });
  });
});
