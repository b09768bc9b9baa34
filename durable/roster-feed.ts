import type { AgentSummary } from "../src/agents/status";
import type { AgentEffects } from "./agent-effects";

/**
 * Feeds one agent's roster row to its policy hub through the store's effects: written when the row
 * (or the agent's policy) changed, inside the transaction of the change, so the roster follows the
 * stored record and nothing else. A move to another policy also removes the row from the old one.
 */
export class RosterFeed {
  readonly #effects: AgentEffects;
  /** The policy and row last written to the effects; as of the stored record when loaded. */
  #policy: string | null = null;
  #row: string | null = null;

  constructor(effects: AgentEffects) {
    this.#effects = effects;
  }

  /** What the stored record already implies: written to the effects with it, in its transaction. */
  loaded(policyId: string, summary: AgentSummary): void {
    this.#policy = policyId;
    this.#row = JSON.stringify(summary);
  }

  sync(policyId: string, summary: AgentSummary): void {
    const row = JSON.stringify(summary);
    if (policyId === this.#policy && row === this.#row) return;
    const joined = policyId !== this.#policy;
    if (this.#policy !== null && joined) this.#effects.leave(this.#policy, summary.agent_id);
    this.#effects.roster(policyId, summary, joined, row);
    this.#policy = policyId;
    this.#row = row;
  }

  /**
   * Only the check-in time moved since the last write (a held heartbeat): one column for the hub,
   * with no row to build. `summary` is asked for only when the policy changed meanwhile.
   */
  touch(policyId: string, agentId: string, lastCheckin: string, summary: () => AgentSummary): void {
    if (policyId !== this.#policy || this.#row === null) return this.sync(policyId, summary());
    this.#effects.touch(policyId, agentId, lastCheckin);
    // The row written last no longer matches the hub's; the next change writes the whole row.
    this.#row = "";
  }

  /** The agent left its policy without a new one (its record was deleted). */
  leave(agentId: string): void {
    if (this.#policy !== null) this.#effects.leave(this.#policy, agentId);
    this.#policy = null;
    this.#row = null;
  }
}
