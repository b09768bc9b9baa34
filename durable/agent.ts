import { DurableObject } from "cloudflare:workers";
import { newAccessKeyId } from "../src/auth/access-key";
import type { ApiKey } from "../src/auth/api-key";
import { hashReplaceToken, verifyReplaceToken } from "../src/auth/replace-token";
import { constantTimeEqual, randomToken, sha256Hex } from "../src/auth/secrets";
import type { Env } from "../src/config";
import type { Failure } from "../src/errors";
import { parsePolicyActionId, statusText, type AckEvent, type AckItem } from "../src/protocol/ack";
import { DELIVERED_TYPES, shapeActionData, type DeliveredAction } from "../src/protocol/action";
import { unhealthyReason, type AgentDoc } from "../src/protocol/agent-doc";
import type { Component, UpgradeDetails } from "../src/protocol/checkin";
import type { EnrolledAgent } from "../src/protocol/enroll";
import type { JsonObject, JsonValue } from "../src/protocol/parse";
import { migrateSchema } from "./sql-schema";

const SCHEMA = [
  `CREATE TABLE agent (k INTEGER PRIMARY KEY CHECK (k = 1), doc TEXT NOT NULL, access_key_hash TEXT);
   CREATE TABLE actions (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     action_id TEXT NOT NULL UNIQUE,
     doc_id TEXT NOT NULL UNIQUE,
     type TEXT NOT NULL,
     expiration TEXT NOT NULL,
     body TEXT NOT NULL);
   CREATE TABLE action_results (action_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, body TEXT NOT NULL);`,
];

/** fleet-server delivers at most this many stored actions per check-in. */
const MAX_ACTIONS_PER_CHECKIN = 100;

export interface AgentEnrollInput {
  agentId: string;
  /** The agent asked for this id (`id` in the body), so an existing record may be replaced. */
  clientChosenId: boolean;
  replaceToken?: string;
  policyId: string;
  namespaces: string[];
  type: string;
  localMetadata: JsonObject | null;
  tags: string[];
  enrollmentId?: string;
  version: string;
}

export interface CheckinInput {
  status: string;
  message: string;
  ackToken?: string;
  localMetadata?: JsonObject | null;
  components?: Component[] | null;
  upgradeDetails?: UpgradeDetails | null;
  reported?: { policyId: string; revision: number };
  rollbacks?: JsonObject[] | null;
  version: string;
}

/** What the policy hub needs to decide whether this agent's policy is out of date (fleet-protocol.md §4.2). */
export interface RevisionClaim {
  /** `policy_revision_idx` from the record before this check-in. */
  stored: number;
  /** `agent_policy_id` / `policy_revision_idx` the agent reported (9.2+). */
  reported?: { policyId: string; revision: number };
}

export interface CheckinOutcome {
  agentId: string;
  policyId: string;
  claim: RevisionClaim;
  actions: DeliveredAction[];
  ackToken: string;
  /** Highest stored action sequence number, so the hub can tell if it missed a notification. */
  actionSeq: number;
}

export interface NewAction {
  action_id: string;
  type: string;
  data: JsonValue;
  created_at: string;
  expiration: string;
  start_time?: string;
  input_type?: string;
  timeout?: number;
}

interface StoredActionRow extends Record<string, SqlStorageValue> {
  seq: number;
  doc_id: string;
  body: string;
}

/**
 * One enrolled agent: identity, access-key hash, status, components, its stored actions and their
 * results. Strong consistency per agent; a fleet scales by having many of these. Every mutation goes
 * through `#save`, one synchronous SQLite transaction per change.
 */
export class Agent extends DurableObject<Env> {
  #doc: AgentDoc | null = null;
  #keyHash: string | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      migrateSchema(ctx.storage, SCHEMA);
      const row = ctx.storage.sql
        .exec<{ doc: string; access_key_hash: string | null }>("SELECT doc, access_key_hash FROM agent WHERE k = 1")
        .toArray()[0];
      if (row) {
        this.#doc = JSON.parse(row.doc) as AgentDoc;
        this.#keyHash = row.access_key_hash;
      }
    });
  }

  async enroll(input: AgentEnrollInput): Promise<{ item: EnrolledAgent } | Failure> {
    const existing = this.#doc;
    const now = new Date().toISOString();
    let replaceTokenHash: string | undefined;
    if (existing?.active) {
      // Replacing a live agent needs its replace token, and the same policy (fleet-protocol.md §2.2 step 6).
      const token = input.replaceToken;
      const matches =
        input.clientChosenId &&
        existing.replace_token !== undefined &&
        token !== undefined &&
        token !== "" &&
        existing.policy_id === input.policyId &&
        (await verifyReplaceToken(token, existing.replace_token));
      if (!matches) return { error: "AgentNotReplaceable" };
      replaceTokenHash = existing.replace_token;
    } else if (input.replaceToken) {
      replaceTokenHash = await hashReplaceToken(input.replaceToken);
    }

    const secret = randomToken(32);
    const keyId = newAccessKeyId(input.agentId);
    const keyHash = await sha256Hex(secret);
    const doc: AgentDoc = {
      id: input.agentId,
      active: true,
      type: input.type,
      policy_id: input.policyId,
      namespaces: input.namespaces,
      enrolled_at: existing?.active ? existing.enrolled_at : now,
      updated_at: now,
      local_metadata: input.localMetadata,
      tags: input.tags,
      access_api_key_id: keyId,
      action_seq_no: existing?.active ? existing.action_seq_no : [-1],
      agent: { id: input.agentId, version: input.version },
      policy_revision_idx: 0,
      ...(input.enrollmentId ? { enrollment_id: input.enrollmentId } : {}),
      ...(replaceTokenHash ? { replace_token: replaceTokenHash } : {}),
    };
    this.ctx.storage.transactionSync(() => {
      if (existing && !existing.active) {
        // An inactive record is deleted and the agent starts over (fleet-server deletes the document).
        this.ctx.storage.sql.exec("DELETE FROM actions; DELETE FROM action_results");
      }
      this.#save(doc, keyHash);
    });
    console.log(JSON.stringify({ event: "agent.enrolled", agent_id: doc.id, policy_id: doc.policy_id, replaced: !!existing?.active }));
    return {
      item: {
        access_api_key: btoa(`${keyId}:${secret}`),
        access_api_key_id: keyId,
        active: true,
        enrolled_at: doc.enrolled_at,
        id: doc.id,
        local_metadata: doc.local_metadata,
        policy_id: doc.policy_id,
        status: "online",
        tags: doc.tags,
        type: doc.type,
        user_provided_metadata: null,
      },
    };
  }

  /**
   * Verifies the caller holds this agent's access key. `AgentIdentity` means the key is not this
   * agent's (or there is no such agent): the caller decides between 403 and 401.
   */
  async authenticate(key: ApiKey): Promise<{ agentId: string; policyId: string } | Failure> {
    const failure = await this.#verify(key);
    if (failure) return failure;
    return { agentId: this.#doc!.id, policyId: this.#doc!.policy_id };
  }

  /** True when `key` is this agent's current, unrevoked access key (active or not). */
  async holdsKey(key: ApiKey): Promise<boolean> {
    if (!this.#doc || this.#keyHash === null || this.#doc.access_api_key_id !== key.id) return false;
    return constantTimeEqual(await sha256Hex(key.secret), this.#keyHash);
  }

  async checkin(key: ApiKey, input: CheckinInput): Promise<CheckinOutcome | Failure> {
    const failure = await this.#verify(key);
    if (failure) return failure;
    const before = this.#doc!;
    const now = new Date().toISOString();
    const doc: AgentDoc = {
      ...before,
      updated_at: now,
      last_checkin: now,
      last_checkin_status: input.status,
      last_checkin_message: input.message,
      agent: { ...before.agent, version: input.version },
    };
    if (input.localMetadata !== undefined) doc.local_metadata = input.localMetadata;
    if (input.components !== undefined) doc.components = input.components;
    doc.unhealthy_reason = unhealthyReason(doc.components, input.status);
    if (input.upgradeDetails) {
      doc.upgrade_details = input.upgradeDetails;
      if (input.upgradeDetails.state === "UPG_WATCHING") doc.upgrade_attempts = null;
    } else if (before.upgrade_details) {
      // The agent stopped reporting an upgrade: it completed (fleet-protocol.md §2.3 step 3).
      doc.upgrade_details = null;
      doc.upgrade_started_at = null;
      doc.upgraded_at = now;
    }
    if (input.rollbacks !== undefined) doc.upgrade = { rollbacks: input.rollbacks };
    if (input.reported) {
      doc.agent_policy_id = input.reported.policyId;
      doc.policy_revision_idx = input.reported.revision;
    }
    // A check-in clears the audit trail of an earlier uninstall.
    delete doc.audit_unenrolled_reason;
    delete doc.audit_unenrolled_time;
    delete doc.unenrolled_at;

    const cursor = this.#resolveCursor(input.ackToken);
    if (cursor >= 0) doc.action_seq_no = [cursor];
    this.#save(doc);
    const pending = this.#pending(cursor);
    return {
      agentId: doc.id,
      policyId: doc.policy_id,
      claim: { stored: before.policy_revision_idx, ...(input.reported ? { reported: input.reported } : {}) },
      actions: pending.actions,
      ackToken: pending.ackToken ?? input.ackToken ?? "",
      actionSeq: this.#maxSeq(),
    };
  }

  /** Actions after the agent's cursor, for a check-in that was woken by a new action. */
  async pendingActions(ackToken: string | undefined): Promise<{ actions: DeliveredAction[]; ackToken: string }> {
    const pending = this.#pending(this.#resolveCursor(ackToken));
    return { actions: pending.actions, ackToken: pending.ackToken ?? ackToken ?? "" };
  }

  /** Processes one ack batch in order; the HTTP status is the worst item status (fleet-protocol.md §6). */
  async ack(key: ApiKey, events: AckEvent[]): Promise<{ items: AckItem[] } | Failure> {
    const failure = await this.#verify(key);
    if (failure) return failure;
    const doc: AgentDoc = { ...this.#doc! };
    const now = new Date().toISOString();
    const items: AckItem[] = [];
    let newRevision = -1;
    let unenroll = false;
    this.ctx.storage.transactionSync(() => {
      for (const event of events) {
        const status = this.#ackOne(doc, event, now, (revision) => (newRevision = Math.max(newRevision, revision)), () => (unenroll = true));
        items.push({ status, message: statusText(status) });
      }
      if (newRevision > doc.policy_revision_idx) {
        doc.policy_revision_idx = newRevision;
        doc.updated_at = now;
      }
      if (unenroll) {
        doc.active = false;
        doc.unenrolled_at = now;
        doc.updated_at = now;
      }
      // An unenrolled agent's key is revoked in the same transaction, so its next check-in gets 401.
      this.#save(doc, unenroll ? null : undefined);
    });
    if (unenroll) console.log(JSON.stringify({ event: "agent.unenrolled", agent_id: doc.id }));
    return { items };
  }

  async auditUnenroll(key: ApiKey, reason: string, timestamp: string): Promise<{ ok: true } | Failure> {
    const failure = await this.#verify(key);
    if (failure) return failure;
    const doc = this.#doc!;
    if (doc.audit_unenrolled_reason === "orphaned") return { error: "AuditReasonConflict" };
    this.#save({ ...doc, audit_unenrolled_reason: reason, audit_unenrolled_time: timestamp, updated_at: new Date().toISOString() });
    return { ok: true };
  }

  /** Stores an action for this agent; the caller then wakes the agent's parked check-in through its hub. */
  async addAction(action: NewAction): Promise<{ policyId: string; seq: number } | Failure> {
    const doc = this.#doc;
    if (!doc) return { error: "NotFound", detail: "agent not found" };
    if (!doc.active) return { error: "Conflict", detail: `agent ${doc.id} is unenrolled` };
    const row = this.ctx.storage.sql
      .exec<{ seq: number }>(
        "INSERT INTO actions (action_id, doc_id, type, expiration, body) VALUES (?, ?, ?, ?, ?) RETURNING seq",
        action.action_id,
        action.action_id,
        action.type,
        action.expiration,
        JSON.stringify(action),
      )
      .one();
    return { policyId: doc.policy_id, seq: row.seq };
  }

  /**
   * Forgets an agent that enrolled under an `enrollment_id` but never checked in, so a re-enrollment
   * with the same id replaces it (fleet-protocol.md §2.2 step 5). Returns whether it was dropped.
   */
  async dropIfNeverCheckedIn(): Promise<boolean> {
    if (!this.#doc || this.#doc.last_checkin) return false;
    await this.ctx.storage.deleteAll();
    this.#doc = null;
    this.#keyHash = null;
    return true;
  }

  /** The stored record (without secrets), for admin reads and tests. */
  async record(): Promise<AgentDoc | null> {
    return this.#doc;
  }

  async #verify(key: ApiKey): Promise<Failure | null> {
    const doc = this.#doc;
    if (!doc || doc.access_api_key_id !== key.id) return { error: "AgentIdentity" };
    if (this.#keyHash === null || !constantTimeEqual(await sha256Hex(key.secret), this.#keyHash)) {
      return { error: "Unauthorized" };
    }
    if (!doc.active) return { error: "AgentInactive" };
    return null;
  }

  #ackOne(doc: AgentDoc, event: AckEvent, now: string, onRevision: (r: number) => void, onUnenroll: () => void): number {
    if (event.agent_id && event.agent_id !== doc.id) return 400;
    const actionId = event.action_id ?? "";
    if (actionId.startsWith("policy:")) {
      const parsed = parsePolicyActionId(actionId);
      if (!event.error && parsed && parsed.policyId === doc.policy_id) onRevision(parsed.revision);
      return 200;
    }
    const stored = this.ctx.storage.sql
      .exec<{ type: string }>("SELECT type FROM actions WHERE action_id = ?", actionId)
      .toArray()[0];
    if (!stored) return 404;
    // The first result wins; agents re-send acks on retry and restart.
    this.ctx.storage.sql.exec(
      "INSERT OR IGNORE INTO action_results (action_id, created_at, body) VALUES (?, ?, ?)",
      actionId,
      now,
      JSON.stringify(actionResult(doc.id, event)),
    );
    if (stored.type === "UPGRADE") {
      if (!event.error) {
        doc.upgrade_started_at = null;
        doc.upgraded_at = now;
        if (!doc.upgrade_details) doc.upgrade_attempts = null;
      } else if (!event.payload?.retry) {
        doc.upgrade_started_at = null;
      }
    }
    if ((stored.type === "UNENROLL" || stored.type === "MIGRATE") && !event.error) onUnenroll();
    return 200;
  }

  /** The cursor named by the agent's ack_token, else the stored one (fleet-protocol.md §2.3). */
  #resolveCursor(ackToken: string | undefined): number {
    if (ackToken) {
      const row = this.ctx.storage.sql.exec<{ seq: number }>("SELECT seq FROM actions WHERE doc_id = ?", ackToken).toArray()[0];
      if (row) return Math.max(row.seq, this.#doc?.action_seq_no[0] ?? -1);
    }
    return this.#doc?.action_seq_no[0] ?? -1;
  }

  #pending(cursor: number): { actions: DeliveredAction[]; ackToken?: string } {
    const now = new Date().toISOString();
    const rows = this.ctx.storage.sql
      .exec<StoredActionRow>(
        `SELECT seq, doc_id, body FROM actions
         WHERE seq > ? AND expiration > ?
           AND action_id NOT IN (SELECT action_id FROM action_results)
         ORDER BY seq LIMIT ?`,
        cursor,
        now,
        MAX_ACTIONS_PER_CHECKIN,
      )
      .toArray();
    const actions: DeliveredAction[] = [];
    let ackToken: string | undefined;
    for (const row of rows) {
      const action = JSON.parse(row.body) as NewAction;
      if (!DELIVERED_TYPES.has(action.type)) continue;
      const shaped = shapeActionData(action.type, action.data);
      if (!shaped.ok) continue;
      actions.push(toDelivered(this.#doc!.id, action, shaped.data));
      ackToken = row.doc_id;
    }
    return ackToken === undefined ? { actions } : { actions, ackToken };
  }

  #maxSeq(): number {
    return this.ctx.storage.sql.exec<{ s: number | null }>("SELECT MAX(seq) AS s FROM actions").one().s ?? 0;
  }

  /** Writes the record; `keyHash` undefined keeps the current key, null revokes it. */
  #save(doc: AgentDoc, keyHash?: string | null): void {
    const hash = keyHash === undefined ? this.#keyHash : keyHash;
    this.ctx.storage.sql.exec(
      "INSERT INTO agent (k, doc, access_key_hash) VALUES (1, ?, ?) ON CONFLICT (k) DO UPDATE SET doc = excluded.doc, access_key_hash = excluded.access_key_hash",
      JSON.stringify(doc),
      hash,
    );
    this.#doc = doc;
    this.#keyHash = hash;
  }
}

/** Keys in the order fleet-server serialises an action (alphabetical). */
function toDelivered(agentId: string, action: NewAction, data: JsonValue): DeliveredAction {
  return {
    agent_id: agentId,
    created_at: action.created_at,
    data,
    expiration: action.expiration,
    id: action.action_id,
    input_type: action.input_type ?? "",
    ...(action.start_time ? { start_time: action.start_time } : {}),
    ...(action.timeout !== undefined ? { timeout: action.timeout } : {}),
    type: action.type,
  };
}

/** An `.fleet-actions-results` document body for one ack event. */
function actionResult(agentId: string, event: AckEvent): JsonObject {
  const result: JsonObject = { action_id: event.action_id ?? "", agent_id: agentId, "@timestamp": event.timestamp ?? new Date().toISOString() };
  for (const key of ["error", "data", "action_input_type", "action_data", "action_response", "started_at", "completed_at"] as const) {
    if (event[key] !== undefined && event[key] !== null) result[key] = event[key];
  }
  return result;
}
