import { newAccessKeyId } from "../src/auth/access-key";
import type { ApiKey } from "../src/auth/api-key";
import { hashReplaceToken, verifyReplaceToken } from "../src/auth/replace-token";
import { randomToken, sha256Hex } from "../src/auth/secrets";
import { agentDocument } from "../src/es/documents";
import { INDEX } from "../src/es/indices";
import type { Failure } from "../src/errors";
import { parsePolicyActionId, statusText, type AckEvent, type AckItem } from "../src/protocol/ack";
import type { DeliveredAction } from "../src/protocol/action";
import type { KeyedOutput } from "../src/policy/output-keys";
import { unhealthyReason, type AgentDoc } from "../src/protocol/agent-doc";
import type { ActionResultSummary, NewAction, PendingAction, StatusChange } from "../src/agents/actions";
import type { AgentSummary } from "../src/agents/status";
import { agentSummary } from "../src/agents/summary";
import { CLOSE } from "../src/protocol/socket";
import type { AckOutcome, AgentEnrollInput, CheckinInput, CheckinOutcome } from "../src/session/contract";
import { MAX_AGENT_TAGS, normaliseTags } from "../src/protocol/enroll";
import { PER_AGENT_REQUESTS_PER_10S } from "../src/limits/tiers";
import { TokenBucket } from "../src/limits/token-bucket";
import type { UpgradeDetails } from "../src/protocol/checkin";
import type { EnrolledAgent } from "../src/protocol/enroll";
import { jsonEqual, jsonObjectsEqual } from "../src/protocol/json-equal";
import type { JsonObject } from "../src/protocol/parse";
import { AgentActions } from "./agent-actions";
import type { AgentEffects } from "./agent-effects";
import type { EsOutbox } from "./es-outbox";
import type { OutputKeyRing } from "./output-key-ring";
import { RosterFeed } from "./roster-feed";
import { SocketLease } from "./socket-lease";
import { StatusHistory } from "./status-history";
import { StoredKey } from "./stored-key";
import { log } from "../src/log";
import { recordReport, type OpampOutcome, type OpampReport } from "../src/opamp/report";
import { OPAMP_AGENT_TYPE } from "../src/opamp/collector";
import { AgentCapabilities } from "../src/opamp/gen/opamp_pb";

/** How many of its latest action results an agent's page shows. */
const LATEST_RESULTS_SHOWN = 10;
/** What every check-in moves; a check-in that changes nothing else is a heartbeat. */
const CHECKIN_TIMES: ReadonlySet<string> = new Set(["last_checkin", "updated_at"]);

/** What an agent needs from the store object that holds it: its storage, outboxes and key ring. */
export interface AgentHome {
  readonly storage: DurableObjectStorage;
  readonly outbox: EsOutbox;
  readonly effects: AgentEffects;
  readonly keys: OutputKeyRing;
  /**
   * Writes `write`'s changes in one transaction and delivers the effects they wrote before it
   * returns, rather than with the store's next alarm: for enrollments and admin changes, so an admin
   * reads what they wrote. Check-ins and acks write theirs directly and leave them to the alarm,
   * which batches them.
   */
  change<T>(write: () => T): Promise<T>;
  /** The agent holds check-in times not yet written: the store calls `journalCheckin` soon (see CHECKIN_FLUSH_MS). */
  deferSave(agent: Agent): void;
  /** The agent's newest check-in time in the store's journal (durable/checkin-journal.ts), if any. */
  journaledCheckin(agentId: string): string | undefined;
  /** One check-in of an agent of `policyId`, for the policy's check-ins per minute (durable/checkin-tally.ts). */
  countCheckin(policyId: string): void;
}

/**
 * One enrolled agent: identity, access-key hash, status, components, its stored actions and their
 * results. Lives inside an `AgentStore` (many agents per object, rows keyed by agent id); every
 * public method is one RPC of that store. Strong consistency per agent: every mutation goes through
 * `#save`, one synchronous SQLite transaction per change. The one exception is a check-in that
 * changes nothing but `last_checkin` / `updated_at`: like fleet-server's check-in bulker, those
 * times are held in memory and written by the store within CHECKIN_FLUSH_MS, into its check-in
 * journal rather than this agent's record.
 */
export class Agent {
  readonly #id: string;
  readonly #storage: DurableObjectStorage;
  readonly #sql: SqlStorage;
  readonly #outbox: EsOutbox;
  readonly #keys: OutputKeyRing;
  readonly #effects: AgentEffects;
  readonly #home: AgentHome;
  #doc: AgentDoc | null = null;
  /** `#doc` has check-in times the stored row lacks (the store writes them; until then it keeps this agent loaded). */
  #unsaved = false;
  readonly #key = new StoredKey(null);
  readonly #roster: RosterFeed;
  /** Per-agent fairness: one agent cannot take the capacity of many (see src/limits/tiers.ts). */
  readonly #requests = new TokenBucket(PER_AGENT_REQUESTS_PER_10S / 10, PER_AGENT_REQUESTS_PER_10S);
  /** Serialises output-key work: it awaits Elasticsearch, and two check-ins must not mint two keys. */
  #keysInFlight: Promise<unknown> = Promise.resolve();
  readonly #actions: AgentActions;
  readonly #lease: SocketLease;
  readonly #history: StatusHistory;
  /**
   * An OpAMP collector's last `sequence_num`, in memory only: after a restart of this store (or an
   * unload) it is unknown, and the collector is asked for its full state, as OpAMP wants.
   */
  #opampSeq: number | null = null;

  constructor(home: AgentHome, agentId: string) {
    this.#id = agentId;
    this.#storage = home.storage;
    this.#sql = home.storage.sql;
    this.#outbox = home.outbox;
    this.#keys = home.keys;
    this.#effects = home.effects;
    this.#home = home;
    const row = this.#sql
      .exec<{ doc: string; access_key_hash: string | null }>("SELECT doc, access_key_hash FROM agents WHERE agent_id = ?", agentId)
      .toArray()[0];
    this.#actions = new AgentActions(this.#sql, agentId, home.outbox, !row);
    this.#lease = new SocketLease(this.#sql, agentId, !row);
    this.#history = new StatusHistory(this.#sql, agentId);
    this.#roster = new RosterFeed(home.effects);
    if (row) {
      this.#doc = withJournaledTimes(JSON.parse(row.doc) as AgentDoc, home.journaledCheckin(agentId));
      this.#key.hash = row.access_key_hash;
      this.#roster.loaded(this.#doc.policy_id, this.#summary());
    }
  }

  get id(): string {
    return this.#id;
  }

  /** False for an id that names no agent (or one forgotten before it ever checked in). */
  get enrolled(): boolean {
    return this.#doc !== null;
  }

  /** Check-in times are held in memory only (see `journalCheckin`). */
  get unsaved(): boolean {
    return this.#unsaved;
  }

  /**
   * The check-in time held in memory, for the store to write into its journal in this same
   * transaction (called by the store, not over RPC); its roster row and mirror document follow.
   * The record keeps the time of its last real change.
   */
  journalCheckin(): string | null {
    const doc = this.#doc;
    if (!this.#unsaved || !doc?.last_checkin) return null;
    this.#unsaved = false;
    this.#roster.touch(doc.policy_id, doc.id, doc.last_checkin, () => this.#summary());
    this.#mirror(doc);
    return doc.last_checkin;
  }

  async enroll(
    input: AgentEnrollInput,
  ): Promise<{ item: EnrolledAgent } | Failure> {
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
    await this.#home.change(() => {
      // An inactive record is deleted and the agent starts over (fleet-server deletes the document).
      if (existing && !existing.active) {
        this.#actions.forget();
        this.#history.forget();
      }
      // A socket opened with the previous key no longer speaks for this agent, and a parked check-in
      // made with it ends: the agent's new holder must connect with the new key.
      this.#lease.drop();
      if (existing) this.#effects.shard(existing.policy_id, { kind: "disconnect", agentId: doc.id, code: CLOSE.unauthorized, reason: "agent re-enrolled" });
      this.#save(doc, keyHash);
    });
    log.info("agent.enrolled", { agent_id: doc.id, policy_id: doc.policy_id, replaced: !!existing?.active });
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
    if (!this.#doc || this.#doc.access_api_key_id !== key.id) return false;
    return this.#key.holds(key.secret);
  }

  async checkin(key: ApiKey, input: CheckinInput): Promise<CheckinOutcome | Failure> {
    const failure = (await this.#verify(key)) ?? this.#admit();
    if (failure) return failure;
    return this.#checkin(input, false);
  }

  /** A check-in that arrived on the agent's WebSocket, authenticated when the socket was opened. */
  async checkinOverSocket(connection: string, input: CheckinInput): Promise<CheckinOutcome | Failure> {
    const failure = this.#stillActive() ?? this.#ownsLease(connection) ?? this.#admit();
    if (failure) return failure;
    return this.#checkin(input, true);
  }

  /**
   * An OpenTelemetry collector's check-in made with its policy's enrollment token (docs/opamp.md):
   * allowed only until the collector has used its own credential once.
   */
  async checkinWithEnrollment(policyId: string, input: CheckinInput): Promise<CheckinOutcome | Failure> {
    const doc = this.#doc;
    if (!doc || !doc.active || doc.type !== OPAMP_AGENT_TYPE || doc.policy_id !== policyId || doc.opamp?.credential_used) return { error: "Unauthorized" };
    const failure = this.#admit();
    if (failure) return failure;
    return this.#checkin(input, false);
  }

  /**
   * A collector presenting its policy's enrollment token: an unknown (or unenrolled) uid is
   * enrolled (with a credential); a collector enrolled with that token that has not used its own
   * credential yet gets a fresh one when `issueCredential` (it may have restarted before keeping
   * the last), else none. Any other
   * active agent with this id is someone else's: `taken`, and the caller gets a new uid.
   */
  async enrollCollector(input: AgentEnrollInput, issueCredential: boolean): Promise<{ credential: string | null } | { taken: true } | Failure> {
    const existing = this.#doc;
    if (!existing?.active) {
      const enrolled = await this.enroll(input);
      return "error" in enrolled ? enrolled : { credential: enrolled.item.access_api_key };
    }
    if (existing.type !== OPAMP_AGENT_TYPE || existing.policy_id !== input.policyId || existing.opamp?.credential_used) return { taken: true };
    if (!issueCredential) return { credential: null };
    const secret = randomToken(32);
    const keyId = newAccessKeyId(existing.id);
    const keyHash = await sha256Hex(secret);
    this.#save({ ...existing, access_api_key_id: keyId, updated_at: new Date().toISOString() }, keyHash);
    return { credential: btoa(`${keyId}:${secret}`) };
  }

  /**
   * An admin asks a collector to restart (OpAMP `command: Restart`): it goes out with the answer
   * to its next message, or at once on its socket (the wake-up effect reaches its shard).
   */
  async requestRestart(): Promise<{ requested_at: string } | Failure> {
    const doc = this.#doc;
    if (!doc) return { error: "NotFound", detail: "agent not found" };
    if (!doc.active) return { error: "Conflict", detail: `agent ${doc.id} is unenrolled` };
    if (doc.type !== OPAMP_AGENT_TYPE || !doc.opamp) return { error: "Conflict", detail: `agent ${doc.id} is not an OpenTelemetry collector: restart is an OpAMP command` };
    if ((doc.opamp.capabilities & AgentCapabilities.AgentCapabilities_AcceptsRestartCommand) === 0) {
      return { error: "Conflict", detail: `collector ${doc.id} does not accept restart commands (no AcceptsRestartCommand capability)` };
    }
    const now = new Date().toISOString();
    await this.#home.change(() => {
      this.#save({ ...doc, opamp: { ...doc.opamp!, restart_requested_at: now }, updated_at: now });
      this.#effects.shard(doc.policy_id, { kind: "wake", agentId: doc.id, seq: this.#actions.maxSeq() });
    });
    return { requested_at: now };
  }

  /** Takes a requested restart for the collector's socket `connection` to send; false when none is due. */
  async takeRestart(connection: string): Promise<boolean> {
    const doc = this.#doc;
    if (this.#stillActive() ?? this.#ownsLease(connection)) return false;
    if (!doc?.opamp?.restart_requested_at) return false;
    const { restart_requested_at: _sent, ...opamp } = doc.opamp;
    this.#save({ ...doc, opamp, updated_at: new Date().toISOString() });
    return true;
  }

  /** The socket `connection` now delivers this agent's actions, until a newer socket or an HTTP check-in takes over. */
  async attachSocket(connection: string): Promise<Failure | null> {
    const failure = this.#stillActive();
    if (failure) return failure;
    this.#lease.grant(connection);
    return null;
  }

  /** The socket closed: long polls deliver again. A newer socket's lease is left alone. */
  async detachSocket(connection: string): Promise<void> {
    this.#lease.release(connection);
  }

  async #checkin(input: CheckinInput, viaSocket: boolean): Promise<CheckinOutcome> {
    const before = this.#doc!;
    this.#home.countCheckin(before.policy_id);
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
    const restart = input.opamp ? recordReport(before, doc, input.opamp).restart : false;
    doc.unhealthy_reason = unhealthyReason(doc.components, doc.last_checkin_status ?? input.status);
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

    const cursor = this.#actions.cursor(input.ackToken, this.#storedCursor());
    if (cursor >= 0) doc.action_seq_no = [cursor];
    this.#recordCheckin(before, doc);
    this.#upgradeOutcome(before.upgrade_details ?? null, doc.upgrade_details ?? null, now);
    // An agent that polls over HTTP has stopped using its socket (or lost it without a close reaching
    // us): the poll takes delivery over at once, rather than when a lease would have run out.
    const replacedSocket = viaSocket ? null : this.#lease.holder();
    if (replacedSocket) {
      this.#storage.transactionSync(() => {
        this.#lease.drop();
        this.#effects.shard(doc.policy_id, { kind: "disconnect", agentId: doc.id, code: CLOSE.superseded, reason: "superseded by an HTTP check-in", connection: replacedSocket });
      });
    }
    const pending = this.#actions.pending(cursor);
    return {
      ...(input.opamp ? { opamp: this.#opampOutcome(input.opamp, doc, restart) } : {}),
      policyId: doc.policy_id,
      // An output without its key forces the policy to be sent again (fleet-protocol.md §4.2).
      claim: this.#keys.incomplete(this.#id)
        ? { stored: 0 }
        : { stored: before.policy_revision_idx, ...(input.reported ? { reported: input.reported } : {}) },
      actions: pending.actions,
      ackToken: pending.ackToken ?? input.ackToken ?? "",
      actionSeq: this.#actions.maxSeq(),
    };
  }

  /**
   * Writes a check-in's record, unless only its times changed: a heartbeat costs no write here
   * (nor a mirror record), and its times reach storage with the store's next flush. `before` is the
   * stored row, or that row with times not yet written, so comparing with it is comparing with storage.
   */
  #recordCheckin(before: AgentDoc, doc: AgentDoc): void {
    // A first check-in is always written: "has checked in" is itself state (see dropIfNeverCheckedIn).
    if (before.last_checkin && jsonObjectsEqual(before as unknown as JsonObject, doc as unknown as JsonObject, CHECKIN_TIMES)) {
      // Equal but for the times: keep the old record's nested objects, so the check-in's freshly
      // parsed copies die young instead of churning the old generation (GC was ~15% of a check-in
      // at 4,000 agents).
      this.#doc = { ...before, last_checkin: doc.last_checkin, updated_at: doc.updated_at };
      if (!this.#unsaved) {
        this.#unsaved = true;
        this.#home.deferSave(this);
      }
      return;
    }
    this.#save(doc);
  }

  /**
   * An upgrade's outcome for its action's progress: failed when the agent reports UPG_FAILED, done
   * when it stops reporting one it had reported failed (a retry worked). Written with the check-in's
   * record (an upgrade state change is never a heartbeat).
   */
  #upgradeOutcome(before: UpgradeDetails | null, after: UpgradeDetails | null, now: string): void {
    if (after?.state === "UPG_FAILED" && after.action_id && before?.state !== "UPG_FAILED") {
      const error = typeof after.metadata?.error_msg === "string" ? after.metadata.error_msg : "upgrade failed";
      this.#effects.result(after.action_id, { agentId: this.#id, error, at: now, upgrade: true });
    } else if (before?.state === "UPG_FAILED" && before.action_id && after === null) {
      this.#effects.result(before.action_id, { agentId: this.#id, at: now, upgrade: true });
    }
  }

  /** Actions after the agent's cursor, for a check-in that was woken by a new action. */
  async pendingActions(ackToken: string | undefined): Promise<{ actions: DeliveredAction[]; ackToken: string }> {
    const pending = this.#actions.pending(this.#actions.cursor(ackToken, this.#storedCursor()));
    return { actions: pending.actions, ackToken: pending.ackToken ?? ackToken ?? "" };
  }

  /** Processes one ack batch in order; the HTTP status is the worst item status (fleet-protocol.md §6). */
  async ack(
    key: ApiKey,
    events: AckEvent[],
  ): Promise<AckOutcome | Failure> {
    const failure = (await this.#verify(key)) ?? this.#admit();
    if (failure) return failure;
    return this.#ack(events);
  }

  /** Acks that arrived on the agent's WebSocket. */
  async ackOverSocket(connection: string, events: AckEvent[]): Promise<AckOutcome | Failure> {
    const failure = this.#stillActive() ?? this.#ownsLease(connection) ?? this.#admit();
    if (failure) return failure;
    return this.#ack(events);
  }

  async #ack(events: AckEvent[]): Promise<AckOutcome> {
    const doc: AgentDoc = { ...this.#doc! };
    const now = new Date().toISOString();
    const items: AckItem[] = [];
    let newRevision = -1;
    let unenroll = false;
    this.#storage.transactionSync(() => {
      for (const event of events) {
        const status = this.#ackOne(
          doc,
          event,
          now,
          (revision) => (newRevision = Math.max(newRevision, revision)),
          () => (unenroll = true),
          (result) => this.#effects.result(result.action_id, { agentId: doc.id, ...(result.error !== undefined ? { error: result.error } : {}), at: now }),
        );
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
      // An unenrolled agent's key is revoked in the same transaction, so its next check-in gets 401;
      // its output keys are queued for invalidation in Elasticsearch.
      this.#save(doc, unenroll ? null : undefined);
      if (unenroll) {
        this.#keys.retire(this.#id, null);
        this.#effects.shard(doc.policy_id, { kind: "disconnect", agentId: doc.id, code: CLOSE.unenrolled, reason: "agent unenrolled" });
      }
    });
    if (unenroll) await this.#keys.scheduleRetirement();
    if (unenroll) log.info("agent.unenrolled", { agent_id: doc.id });
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

  /** Stores an action for this agent and, with it, the wake-up of its socket or parked check-in. */
  async addAction(action: NewAction): Promise<{ seq: number } | Failure> {
    const doc = this.#doc;
    if (!doc) return { error: "NotFound", detail: "agent not found" };
    if (!doc.active) return { error: "Conflict", detail: `agent ${doc.id} is unenrolled` };
    if (doc.type === OPAMP_AGENT_TYPE) {
      // A collector reads no Fleet actions: unenrolling it revokes its credential at once, as `revoke: true` does.
      if (action.type !== "UNENROLL") return { error: "Conflict", detail: `agent ${doc.id} is an OpenTelemetry collector (OPAMP): it takes no ${action.type} action` };
      const revoked = await this.forceUnenroll();
      if ("error" in revoked) return revoked;
      // The action is done for this agent: its progress counts it, as an ack would.
      await this.#home.change(() => this.#effects.result(action.action_id, { agentId: doc.id, at: new Date().toISOString() }));
      return { seq: 0 };
    }
    const stored = await this.#home.change(() => {
      const stored = this.#actions.add(action);
      if (!stored.added) return stored;
      // Kibana marks an upgrade as started when it creates the action.
      if (action.type === "UPGRADE") this.#save({ ...doc, upgrade_started_at: action.created_at, updated_at: action.created_at });
      // A pending UNENROLL shows in the roster (unenrolling).
      else this.#roster.sync(doc.policy_id, this.#summary());
      this.#effects.shard(doc.policy_id, { kind: "wake", agentId: doc.id, seq: stored.seq });
      return stored;
    });
    return { seq: stored.seq };
  }

  /**
   * Forgets an agent that enrolled under an `enrollment_id` but never checked in, so a re-enrollment
   * with the same id replaces it (fleet-protocol.md §2.2 step 5). Returns whether it was dropped.
   */
  async dropIfNeverCheckedIn(): Promise<boolean> {
    const doc = this.#doc;
    if (!doc || doc.last_checkin) return false;
    await this.#home.change(() => {
      this.#sql.exec("DELETE FROM agents WHERE agent_id = ?", this.#id);
      this.#actions.forget();
      this.#history.forget();
      this.#lease.drop();
      this.#outbox.add({ index: INDEX.agents, id: doc.id, op: "delete", coalesce: true });
      this.#roster.leave(doc.id);
      this.#effects.shard(doc.policy_id, { kind: "disconnect", agentId: doc.id, code: CLOSE.unauthorized, reason: "agent re-enrolled" });
    });
    this.#doc = null;
    this.#key.hash = null;
    this.#unsaved = false;
    return true;
  }

  /**
   * This agent's API key for each Elasticsearch output of the policy it is about to receive, as
   * `id:key` (see OutputKeyRing). Serialised: two check-ins must not mint two keys.
   */
  async outputKeys(outputs: KeyedOutput[]): Promise<Record<string, string>> {
    const run = this.#keysInFlight.then(async () => {
      const doc = this.#doc;
      if (!doc) return {};
      const keys = await this.#keys.ensure(doc.id, outputs);
      const summary = this.#keys.summary(this.#id);
      // Every POLICY_CHANGE asks; only a new or retired key changes the record.
      if (!jsonEqual(summary, this.#doc!.outputs ?? {})) this.#save({ ...this.#doc!, outputs: summary });
      return keys;
    });
    this.#keysInFlight = run.catch(() => undefined);
    return run;
  }

  /**
   * Unenrolls at once (`revoke: true`): the agent is deactivated and its access key revoked, so its
   * next check-in gets 401, without waiting for an UNENROLL ack. Its output keys are invalidated.
   */
  async forceUnenroll(): Promise<{ ok: true } | Failure> {
    const doc = this.#doc;
    if (!doc) return { error: "NotFound", detail: "agent not found" };
    const now = new Date().toISOString();
    await this.#home.change(() => {
      this.#save({ ...doc, active: false, unenrolled_at: doc.unenrolled_at ?? now, unenrolled_reason: "manual", updated_at: now }, null);
      this.#keys.retire(this.#id, null);
      this.#effects.shard(doc.policy_id, { kind: "disconnect", agentId: doc.id, code: CLOSE.unenrolled, reason: "agent revoked" });
    });
    await this.#keys.scheduleRetirement();
    log.info("agent.revoked", { agent_id: doc.id });
    return { ok: true };
  }

  /**
   * Moves the agent to another policy; its revision resets so the new policy is delivered. Its socket
   * and parked check-in in the old policy's shard end, so it checks in again where it now belongs.
   */
  async reassign(policyId: string): Promise<{ previousPolicyId: string } | Failure> {
    const doc = this.#doc;
    if (!doc) return { error: "NotFound", detail: "agent not found" };
    if (!doc.active) return { error: "Conflict", detail: `agent ${doc.id} is unenrolled` };
    if (doc.policy_id === policyId) return { error: "Conflict", detail: `agent ${doc.id} is already assigned to ${policyId}` };
    await this.#home.change(() => {
      this.#save({ ...doc, policy_id: policyId, policy_revision_idx: 0, updated_at: new Date().toISOString() });
      this.#effects.shard(doc.policy_id, { kind: "disconnect", agentId: doc.id, code: CLOSE.reassigned, reason: "agent reassigned" });
    });
    return { previousPolicyId: doc.policy_id };
  }

  /** Adds and removes tags, or replaces them all (kept trimmed, unique and sorted). */
  async updateTags(add: string[], remove: string[], replace?: string[]): Promise<{ tags: string[] } | Failure> {
    const doc = this.#doc;
    if (!doc) return { error: "NotFound", detail: "agent not found" };
    const removed = new Set(remove);
    const tags = normaliseTags([...(replace ?? doc.tags).filter((t) => !removed.has(t)), ...add]);
    // Repeated bulk adds must not grow the record past what a row holds (docs/hardening.md).
    if (tags.length > MAX_AGENT_TAGS) return { error: "AdminBadRequest", detail: `tags: an agent keeps at most ${MAX_AGENT_TAGS} tags` };
    await this.#home.change(() => this.#save({ ...doc, tags, updated_at: new Date().toISOString() }));
    return { tags };
  }

  /** Everything an admin sees on one agent: the record (no secrets), pending actions, results. */
  async detail(): Promise<{
    doc: AgentDoc;
    summary: AgentSummary;
    pending: PendingAction[];
    results: number;
    latestResults: ActionResultSummary[];
    statusHistory: StatusChange[];
  } | null> {
    const doc = this.#doc;
    if (!doc) return null;
    const { replace_token: _hidden, ...visible } = doc;
    return {
      doc: visible,
      summary: this.#summary(),
      pending: this.#actions.awaiting(),
      results: this.#actions.resultCount(),
      latestResults: this.#actions.latestResults(LATEST_RESULTS_SHOWN),
      statusHistory: this.#history.list(),
    };
  }

  /** The stored record (without secrets), for admin reads and tests. */
  async record(): Promise<AgentDoc | null> {
    return this.#doc;
  }

  /** Tracks the collector's `sequence_num` (opamp.md §3.1): a gap, or no memory of it, asks for its full state. */
  #opampOutcome(report: OpampReport, doc: AgentDoc, restart: boolean): OpampOutcome {
    const last = this.#opampSeq;
    // 0 starts a client's session and is whole by definition; the same number again is a retry of the last message.
    const seq = report.sequenceNum;
    const gap = seq !== 0 && (last === null || (seq !== last + 1 && seq !== last));
    this.#opampSeq = report.sequenceNum;
    return { reportFullState: gap, reportedHash: doc.opamp?.remote_config_status?.hash ?? null, restart };
  }

  /** The highest action sequence number the agent was last sent (its stored cursor); -1 before any. */
  #storedCursor(): number {
    return this.#doc?.action_seq_no[0] ?? -1;
  }

  /** This agent's row in its policy hub's roster. */
  #summary(): AgentSummary {
    return agentSummary(this.#doc!, this.#actions.unenrollPending());
  }

  #admit(): Failure | null {
    const admitted = this.#requests.take();
    return admitted.ok ? null : { error: "RateLimit", retryAfterMs: admitted.retryAfterMs };
  }

  /** For socket traffic: the key was checked when the socket opened; the agent must still be active. */
  #stillActive(): Failure | null {
    const doc = this.#doc;
    if (!doc || this.#key.hash === null) return { error: "Unauthorized" };
    return doc.active ? null : { error: "AgentInactive" };
  }

  /**
   * Only the socket that holds the lease speaks for the agent: a socket superseded by a newer one or
   * by an HTTP check-in, or opened before the agent was re-enrolled with a replace token, is refused
   * (and closed).
   */
  #ownsLease(connection: string): Failure | null {
    return this.#lease.holder() === connection ? null : { error: "SocketSuperseded" };
  }

  async #verify(key: ApiKey): Promise<Failure | null> {
    const doc = this.#doc;
    if (!doc || doc.access_api_key_id !== key.id) return { error: "AgentIdentity" };
    if (!(await this.#key.holds(key.secret))) return { error: "Unauthorized" };
    if (!doc.active) return { error: "AgentInactive" };
    return null;
  }

  #ackOne(
    doc: AgentDoc,
    event: AckEvent,
    now: string,
    onRevision: (r: number) => void,
    onUnenroll: () => void,
    onResult: (result: { action_id: string; error?: string }) => void,
  ): number {
    if (event.agent_id && event.agent_id !== doc.id) return 400;
    const actionId = event.action_id ?? "";
    if (actionId.startsWith("policy:")) {
      const parsed = parsePolicyActionId(actionId);
      if (!event.error && parsed && parsed.policyId === doc.policy_id) onRevision(parsed.revision);
      return 200;
    }
    const stored = this.#actions.recordResult(event, now, doc.namespaces);
    if (!stored) return 404;
    if (stored.first) onResult(event.error ? { action_id: actionId, error: event.error } : { action_id: actionId });
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

  /** Writes the record; `keyHash` undefined keeps the current key, null revokes it. */
  #save(doc: AgentDoc, keyHash?: string | null): void {
    const hash = keyHash === undefined ? this.#key.hash : keyHash;
    this.#history.record(this.#doc, doc, doc.updated_at);
    this.#sql.exec(
      "INSERT INTO agents (agent_id, doc, access_key_hash) VALUES (?, ?, ?) ON CONFLICT (agent_id) DO UPDATE SET doc = excluded.doc, access_key_hash = excluded.access_key_hash",
      this.#id,
      JSON.stringify(doc),
      hash,
    );
    this.#doc = doc;
    this.#key.hash = hash;
    this.#unsaved = false;
    this.#roster.sync(doc.policy_id, this.#summary());
    this.#mirror(doc);
  }

  /** Building the document costs a deep copy per check-in: only when there is a mirror to feed. */
  #mirror(doc: AgentDoc): void {
    if (this.#outbox.enabled) this.#outbox.add({ index: INDEX.agents, id: doc.id, op: "index", body: agentDocument(doc), coalesce: true });
  }
}

/**
 * A record with its check-in times brought up to the journal's, when the journal holds a newer
 * time. A record that never checked in takes none: its first check-in is always written to it.
 */
function withJournaledTimes(doc: AgentDoc, journaled: string | undefined): AgentDoc {
  if (!journaled || !doc.last_checkin || journaled <= doc.last_checkin) return doc;
  return { ...doc, last_checkin: journaled, updated_at: doc.updated_at > journaled ? doc.updated_at : journaled };
}
