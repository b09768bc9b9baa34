import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { DeliverySnapshot } from "../src/checkin/shard-contract";
import type { PolicyPut } from "../durable/policy-hub";
import { isSplitting, type RolloutCriteria, type RolloutState } from "../src/policy/staged-rollout";
import type { PolicyRevision } from "../src/protocol/policy";
import worker from "../src/index";
import { ADMIN_TOKEN, BASE, json, policyBody } from "./helpers";

/**
 * A policy hub's read-await-write operations (publish, rollout start/promote/abort, ...) run one at
 * a time. Fired together in every order, from a settled policy and from a running rollout, they
 * never collide on a revision number, never lose one, and leave a rollout row that agrees with the
 * revisions.
 */

type Rollout = RolloutState & { current: unknown };
interface HubView {
  revisions(): Promise<Array<{ revision: number }>>;
  revision(n: number): Promise<PolicyRevision | null>;
  latest(): Promise<PolicyRevision | null>;
  snapshot(): Promise<DeliverySnapshot>;
  stagedRollout(): Promise<Rollout | null>;
  put(input: PolicyPut): Promise<unknown>;
  startRollout(input: PolicyPut & { stages: number[]; criteria: RolloutCriteria }): Promise<unknown>;
  rolloutCommand(command: "abort", by: string): Promise<unknown>;
}
/** The hub itself, to set a round up and read what it stored (the raced calls go over HTTP). */
const hub = (policyId: string) => env.POLICY_HUBS.get(env.POLICY_HUBS.idFromName(policyId)) as unknown as HubView;

/** Policy content told apart by the id of its one input. */
const content = (marker: string) => policyBody({ inputs: [{ id: marker, type: "logfile", use_output: "default", streams: [] }] });
const markerOf = (revision: PolicyRevision | null) => (revision?.policy.inputs as Array<{ id: string }> | undefined)?.[0]?.id;

type OpName = "put-a" | "start" | "promote" | "abort" | "put-b";
const OPS: OpName[] = ["put-a", "start", "promote", "abort", "put-b"];

/**
 * An admin request through the Worker's own fetch handler: the routes, auth and hub RPCs of a real
 * request. Not `SELF.fetch`: in this pool its latency grows with every request a test file makes
 * (measured: 3 ms to 45 ms per GET over 400), and these tests make over a thousand.
 */
async function adminRequest(method: string, path: string, body?: unknown): Promise<Response> {
  const ctx = createExecutionContext();
  const request = new Request(`${BASE}${path}`, {
    method,
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, "Content-Type": "application/json" },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const response = await worker.fetch(request as Parameters<typeof worker.fetch>[0], env, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

function fire(policyId: string, op: OpName): Promise<Response> {
  switch (op) {
    case "put-a":
    case "put-b":
      return adminRequest("PUT", `/api/fleet/agent_policies/${policyId}`, content(op));
    case "start":
      return adminRequest("POST", `/api/fleet/agent_policies/${policyId}/rollouts`, { ...content("start"), stages: [50, 100], window_seconds: 600 });
    case "promote":
    case "abort":
      return adminRequest("POST", `/api/fleet/agent_policies/${policyId}/rollouts/current/${op}`);
  }
}

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

const hubInput = (policyId: string, marker: string): PolicyPut => ({ policyId, createdBy: "setup", ...content(marker) });

/** Back to a settled policy of "base" content, then (when asked) a rollout of "start-0" running. */
async function settle(policyId: string, withRollout: boolean): Promise<void> {
  await hub(policyId).rolloutCommand("abort", "setup");
  expect(await hub(policyId).put(hubInput(policyId, "base"))).toHaveProperty("revision");
  if (!withRollout) return;
  const criteria = { min_acked_percent: 90, max_failed_percent: 5, window_seconds: 600 };
  expect(await hub(policyId).startRollout({ ...hubInput(policyId, "start-0"), stages: [50, 100], criteria })).toHaveProperty("target");
}

async function round(policyId: string, order: OpName[], withRollout: boolean): Promise<void> {
  await settle(policyId, withRollout);
  const before = (await hub(policyId).latest())!.revision;
  const replies = await Promise.all(order.map(async (op) => ({ op, res: await fire(policyId, op) })));
  const outcome = new Map<OpName, { status: number; body: Record<string, unknown> }>();
  for (const { op, res } of replies) outcome.set(op, { status: res.status, body: await json<Record<string, unknown>>(res) });
  const why = `${withRollout ? "from a running rollout" : "from a settled policy"}, order ${order.join(",")}: ${JSON.stringify([...outcome])}`;
  for (const [, reply] of outcome) expect([200, 409], why).toContain(reply.status);

  // Every revision is stored once, 1..N without a gap, and the latest is N.
  const numbers = (await hub(policyId).revisions()).map((row) => row.revision).sort((a, b) => a - b);
  expect(numbers, why).toEqual(numbers.map((_, i) => i + 1));
  const latest = numbers.length;
  expect((await hub(policyId).latest())?.revision, why).toBe(latest);

  // Each successful publish stored exactly what it published, and nothing else was stored.
  let published = 0;
  for (const op of ["put-a", "put-b"] as const) {
    const reply = outcome.get(op)!;
    if (reply.status !== 200) continue;
    const { item, changed } = reply.body as { item: { revision: number }; changed: boolean };
    expect(changed, why).toBe(true);
    expect(item.revision, why).toBeGreaterThan(before);
    expect(markerOf(await hub(policyId).revision(item.revision)), why).toBe(op);
    published++;
  }
  const started = outcome.get("start")!;
  if (started.status === 200) {
    const target = (started.body.item as RolloutState).target;
    expect(target, why).toBeGreaterThan(before);
    expect(markerOf(await hub(policyId).revision(target)), why).toBe("start");
    published++;
  }
  // A successful abort publishes the previous content again.
  if (outcome.get("abort")!.status === 200) published++;
  expect(latest - before, why).toBe(published);

  // The rollout row names revisions that exist and agrees with the latest one.
  const rollout = await hub(policyId).stagedRollout();
  if (!withRollout && started.status !== 200) {
    expect(rollout, why).toBeNull();
    return;
  }
  expect(rollout, why).not.toBeNull();
  if (!rollout) return;
  const target = await hub(policyId).revision(rollout.target);
  const previous = await hub(policyId).revision(rollout.previous);
  expect(rollout.previous, why).toBe(rollout.target - 1);
  expect(markerOf(target), why).toMatch(/^start(-0)?$/);
  expect(previous, why).not.toBeNull();
  const snapshot = await hub(policyId).snapshot();
  if (isSplitting(rollout)) {
    // Nothing is published over a rollout that still splits the fleet.
    expect(rollout.target, why).toBe(latest);
    expect(snapshot.previous?.revision, why).toBe(rollout.previous);
  } else {
    expect(snapshot.previous, why).toBeNull();
  }
  if (rollout.status === "aborted") {
    const after = await Promise.all(numbers.filter((n) => n > rollout.target).map((n) => hub(policyId).revision(n)));
    expect(after.map(markerOf), why).toContain(markerOf(previous));
  }
}

describe("policy hub serialization", () => {
  const orders = permutations(OPS);
  it("races every order of the five calls", () => expect(new Set(orders.map((order) => order.join())).size).toBe(120));

  // One test per first call and starting state: 24 orders each, all 120 over the five.
  for (const withRollout of [false, true]) {
    for (const first of OPS) {
      const from = withRollout ? "during a running rollout" : "on a settled policy";
      it(`keeps revisions and the rollout consistent when PUT, rollout start, promote, abort and PUT race ${from}, ${first} fired first`, async () => {
        const policyId = `serial-${withRollout ? "rolling" : "settled"}-${first}`;
        for (const order of orders.filter((o) => o[0] === first)) await round(policyId, order, withRollout);
      }, 60_000);
    }
  }
});
