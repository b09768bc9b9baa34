import { isFailure, type Failure } from "../errors";
import type { AckResponse } from "../protocol/ack";
import type { AckOutcome } from "./contract";

/** An ack batch's answer: the status is the worst item's (fleet-protocol.md §6). */
export interface AckAnswer {
  status: number;
  body: AckResponse;
}

/**
 * The one ack flow: the agent's store records the batch (results, revision, unenroll) with its
 * effects for other objects (action progress, socket close, roster); every channel answers the same.
 */
export async function ack(record: () => Promise<AckOutcome | Failure>): Promise<AckAnswer | Failure> {
  const outcome = await record();
  if (isFailure(outcome)) return outcome;
  const { items } = outcome;
  if (items.length === 0) return { status: 200, body: { action: "acks" } };
  // A loop, not Math.max(...items): a batch may hold more items than a call takes arguments.
  let worst = 200;
  for (const item of items) if (item.status > worst) worst = item.status;
  return { status: worst, body: worst >= 400 ? { action: "acks", errors: true, items } : { action: "acks", items } };
}
