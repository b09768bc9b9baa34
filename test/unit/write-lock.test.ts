import { describe, expect, it } from "vitest";
import { CoalescedRun } from "../../durable/coalesced-run";
import { WriteLock } from "../../durable/write-lock";

/** A promise the test settles by hand, so the order of events is set by the test, not by timing. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe("WriteLock", () => {
  it("runs steps one at a time in call order, even when an earlier step awaits", async () => {
    const lock = new WriteLock();
    const events: string[] = [];
    const first = gate();
    const a = lock.run(async () => {
      events.push("a start");
      await first.promise;
      events.push("a end");
      return "a";
    });
    const b = lock.run(async () => {
      events.push("b start");
      return "b";
    });
    await Promise.resolve();
    expect(events).toEqual(["a start"]);
    first.open();
    expect(await Promise.all([a, b])).toEqual(["a", "b"]);
    expect(events).toEqual(["a start", "a end", "b start"]);
  });

  it("lets the next step run after a step fails, and hands the failure to its caller", async () => {
    const lock = new WriteLock();
    const failed = lock.run(async () => {
      throw new Error("step failed");
    });
    const next = lock.run(async () => "next");
    await expect(failed).rejects.toThrow("step failed");
    expect(await next).toBe("next");
  });
});

describe("CoalescedRun", () => {
  it("answers requests made during a run with one run that starts after it", async () => {
    const gates = [gate(), gate()];
    let runs = 0;
    const run = new CoalescedRun(async () => {
      const n = runs++;
      await gates[n]!.promise;
      return n;
    });
    const first = run.request();
    await Promise.resolve();
    const second = run.request();
    const third = run.request();
    expect(second).toBe(third);
    gates[0]!.open();
    expect(await first).toBe(0);
    gates[1]!.open();
    expect(await Promise.all([second, third])).toEqual([1, 1]);
    expect(runs).toBe(2);
  });

  it("starts a fresh run for a request after the last run ended, also after a failure", async () => {
    let runs = 0;
    const run = new CoalescedRun(async () => {
      runs++;
      if (runs === 1) throw new Error("send failed");
      return runs;
    });
    await expect(run.request()).rejects.toThrow("send failed");
    expect(await run.request()).toBe(2);
  });
});
