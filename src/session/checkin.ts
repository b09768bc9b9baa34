import { policyChangeAnswer } from "../checkin/policy-change";
import type { Env } from "../config";
import { agentObject } from "../durable-stubs";
import { isFailure, type Failure } from "../errors";
import { esConfig } from "../es/config";
import { keyedOutputs } from "../policy/output-keys";
import type { DeliveredAction } from "../protocol/action";
import type { PolicyRevision } from "../protocol/policy";
import type { CheckinOutcome } from "./contract";

/** What a check-in answers, whatever the channel makes of it. */
export type CheckinAnswer =
  | { kind: "actions"; ackToken: string; actions: DeliveredAction[] }
  /** A POLICY_CHANGE: the whole check-in body as JSON text (see policyChangeAnswer). */
  | { kind: "policy"; revision: number; body: string }
  /** Nothing new: the agent keeps its ack token. */
  | { kind: "none"; ackToken: string };

/**
 * What a check-in answers a channel that carries no Fleet actions (OpAMP): the revision the agent
 * should run when it is behind, as the revision itself (the channel renders its own config from it).
 */
export type CollectorCheckinAnswer = { kind: "policy"; revision: PolicyRevision } | { kind: "none" };

/** What ended a channel's wait: a newer revision, a new action, or nothing (a poll's timeout). */
export type CheckinWake = { kind: "policy"; revision: PolicyRevision } | { kind: "actions" } | { kind: "none" };

/**
 * A channel's part of a check-in (HTTP long poll, WebSocket): how it reaches the agent's record,
 * and how it waits when nothing is pending. A long poll parks in the policy's shard; a socket does
 * not wait (what comes later is pushed) and only asks whether the agent is behind.
 */
export interface CheckinChannel {
  record(): Promise<CheckinOutcome | Failure>;
  wait(outcome: CheckinOutcome): Promise<CheckinWake | Failure>;
  /** The channel speaks OpAMP: no Fleet actions cross it, and a policy is answered as its revision. */
  collector?: false;
}

export interface CollectorChannel extends Omit<CheckinChannel, "collector"> {
  collector: true;
}

/**
 * The one check-in flow (fleet-protocol.md §2.3, §4): the agent's store records it and returns the
 * actions after the agent's cursor; with none, the channel waits for a revision the agent is behind
 * or a new action. Everything the check-in changes for other objects (roster, socket take-over) the
 * store writes as effects itself: no channel forwards anything.
 */
export async function checkin(env: Env, agentId: string, channel: CheckinChannel): Promise<CheckinAnswer | Failure>;
export async function checkin(env: Env, agentId: string, channel: CollectorChannel): Promise<CollectorCheckinAnswer | Failure>;
export async function checkin(env: Env, agentId: string, channel: CheckinChannel | CollectorChannel): Promise<CheckinAnswer | CollectorCheckinAnswer | Failure> {
  const outcome = await channel.record();
  if (isFailure(outcome)) return outcome;
  if (!channel.collector && outcome.actions.length > 0) return { kind: "actions", ackToken: outcome.ackToken, actions: outcome.actions };
  const woken = await channel.wait(outcome);
  if (isFailure(woken)) return woken;
  if (channel.collector) return woken.kind === "policy" ? { kind: "policy", revision: woken.revision } : { kind: "none" };
  switch (woken.kind) {
    case "policy":
      return policyAnswer(env, agentId, woken.revision);
    case "actions": {
      const pending = await agentObject(env, agentId).pendingActions(outcome.ackToken || undefined);
      return pending.actions.length > 0 ? { kind: "actions", ...pending } : { kind: "none", ackToken: pending.ackToken };
    }
    case "none":
      return { kind: "none", ackToken: outcome.ackToken };
  }
}

/**
 * A check-in answer carrying the agent's POLICY_CHANGE for `revision`, with the agent's own API key
 * for each Elasticsearch output when a mirror is configured (fleet-protocol.md §4.3). Check-ins and
 * socket pushes both answer with this.
 */
export async function policyAnswer(env: Env, agentId: string, revision: PolicyRevision): Promise<CheckinAnswer> {
  const keys = esConfig(env) ? await agentObject(env, agentId).outputKeys(await keyedOutputs(revision)) : {};
  return { kind: "policy", revision: revision.revision, body: policyChangeAnswer(agentId, revision, keys) };
}
