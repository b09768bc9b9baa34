import type { AnyValue, KeyValue } from "./gen/anyvalue_pb";
import { AgentCapabilities, RemoteConfigStatuses, type AgentToServer, type ComponentHealth } from "./gen/opamp_pb";
import type { Component } from "../protocol/checkin";
import type { AgentDoc, OpampState } from "../protocol/agent-doc";
import type { JsonObject, JsonValue } from "../protocol/parse";
import { CHECKIN_FIELD_LIMITS } from "../protocol/checkin";
import { jsonFits } from "../protocol/json-limits";
import { hashText } from "./collector-config";
import { redactConfig } from "./redact";

/**
 * What the agent's store records from one `AgentToServer` (opamp.md §3.1), as plain data that
 * crosses RPC. Sub-messages the collector left out (unchanged since its last message) are absent,
 * and the stored ones stay.
 */
export interface OpampReport {
  sequenceNum: number;
  capabilities: number;
  /** Sent with the enrollment token instead of the collector's own credential. */
  viaEnrollmentToken: boolean;
  description?: { metadata: JsonObject; version: string };
  health?: NonNullable<OpampState["health"]>;
  components?: Component[];
  remoteConfigStatus?: NonNullable<OpampState["remote_config_status"]>;
  effectiveConfig?: NonNullable<OpampState["effective_config"]>;
  disconnect: boolean;
}

/** What the store tells the codec back about the collector. */
export interface OpampOutcome {
  /** A `sequence_num` gap, or we hold no memory of its sequence (a restart of ours): ask for everything. */
  reportFullState: boolean;
  /** The config hash the collector last reported (applied, applying or failed), so it is not offered again. */
  reportedHash: string | null;
  /** An admin's restart is due: this answer is the `Restart` command (taken from the record with this check-in). */
  restart: boolean;
}

const STATUS_NAMES: Record<number, NonNullable<OpampState["remote_config_status"]>["status"]> = {
  [RemoteConfigStatuses.RemoteConfigStatuses_UNSET]: "UNSET",
  [RemoteConfigStatuses.RemoteConfigStatuses_APPLIED]: "APPLIED",
  [RemoteConfigStatuses.RemoteConfigStatuses_APPLYING]: "APPLYING",
  [RemoteConfigStatuses.RemoteConfigStatuses_FAILED]: "FAILED",
};

export const accepts = (capabilities: number, capability: AgentCapabilities): boolean => (capabilities & capability) !== 0;

/** What a collector's record keeps of its effective config, all files together (bytes of JSON). */
const EFFECTIVE_CONFIG_LIMIT = 512 * 1024;

/**
 * Why a report cannot be kept (the record is one SQLite row, docs/hardening.md), or null: its
 * description and components under an agent's check-in limits, its effective config under 512 KiB.
 */
export function oversized(report: OpampReport): string | null {
  if (report.description && !jsonFits(report.description.metadata, CHECKIN_FIELD_LIMITS.local_metadata)) return `agent_description exceeds ${CHECKIN_FIELD_LIMITS.local_metadata} bytes`;
  if (report.components && !jsonFits(report.components, CHECKIN_FIELD_LIMITS.components)) return `health.component_health_map exceeds ${CHECKIN_FIELD_LIMITS.components} bytes`;
  if (report.effectiveConfig && !jsonFits(report.effectiveConfig, EFFECTIVE_CONFIG_LIMIT)) return `effective_config exceeds ${EFFECTIVE_CONFIG_LIMIT} bytes`;
  return null;
}

/** Reads the parts of a message the store keeps. */
export function opampReport(message: AgentToServer, viaEnrollmentToken: boolean): OpampReport {
  const report: OpampReport = {
    sequenceNum: Number(message.sequenceNum),
    capabilities: Number(message.capabilities),
    viaEnrollmentToken,
    disconnect: message.agentDisconnect !== undefined,
  };
  if (message.agentDescription) {
    const identifying = attributes(message.agentDescription.identifyingAttributes);
    const other = attributes(message.agentDescription.nonIdentifyingAttributes);
    report.description = { metadata: localMetadata(identifying, other), version: text(identifying["service.version"]) };
  }
  if (message.health) {
    // Cut to what an agent's check-in may store as its status and message.
    report.health = {
      healthy: message.health.healthy,
      status: message.health.status.slice(0, CHECKIN_FIELD_LIMITS.status / 4),
      last_error: message.health.lastError.slice(0, CHECKIN_FIELD_LIMITS.message / 4),
    };
    report.components = Object.entries(message.health.componentHealthMap).map(([id, health]) => component(id, health));
  }
  if (message.remoteConfigStatus) {
    const status = message.remoteConfigStatus;
    report.remoteConfigStatus = {
      hash: hashText(status.lastRemoteConfigHash),
      status: STATUS_NAMES[status.status] ?? "UNSET",
      ...(status.errorMessage ? { error_message: status.errorMessage.slice(0, CHECKIN_FIELD_LIMITS.message / 4) } : {}),
    };
  }
  if (message.effectiveConfig?.configMap) {
    report.effectiveConfig = Object.fromEntries(
      Object.entries(message.effectiveConfig.configMap.configMap).map(([name, file]) => [
        name,
        { content_type: file.contentType, body: redactConfig(new TextDecoder().decode(file.body)) },
      ]),
    );
  }
  return report;
}

/**
 * Merges a report into the agent's next record: the OpAMP state, and the Fleet fields every view
 * reads (status and message, components, metadata, version). A FAILED remote config makes the
 * agent `error` with the collector's message, so a staged rollout holds on it.
 */
export function recordReport(before: AgentDoc, doc: AgentDoc, report: OpampReport): { restart: boolean } {
  const state: OpampState = {
    ...before.opamp,
    capabilities: report.capabilities,
    credential_used: (before.opamp?.credential_used ?? false) || !report.viaEnrollmentToken,
  };
  if (report.health) state.health = report.health;
  if (report.remoteConfigStatus) state.remote_config_status = report.remoteConfigStatus;
  if (report.effectiveConfig) state.effective_config = report.effectiveConfig;
  // A requested restart goes out with this answer, and only once.
  const restart = state.restart_requested_at !== undefined && accepts(report.capabilities, AgentCapabilities.AgentCapabilities_AcceptsRestartCommand);
  if (restart) delete state.restart_requested_at;
  doc.opamp = state;
  const { status, message } = collectorStatus(state, report.disconnect);
  doc.last_checkin_status = status;
  doc.last_checkin_message = message;
  doc.agent = { ...before.agent, version: report.description?.version || before.agent.version };
  if (report.description) doc.local_metadata = report.description.metadata;
  if (report.components) doc.components = report.components;
  return { restart };
}

/** The Fleet status a collector's state amounts to (see src/agents/status.ts for what each means). */
export function collectorStatus(state: OpampState, disconnected: boolean): { status: string; message: string } {
  if (disconnected) return { status: "disconnected", message: "the collector said goodbye (agent_disconnect)" };
  const config = state.remote_config_status;
  if (config?.status === "FAILED") return { status: "error", message: `remote config ${config.hash} failed: ${config.error_message ?? "no reason given"}` };
  const health = state.health;
  if (health && !health.healthy) return { status: "error", message: health.last_error || health.status || "unhealthy" };
  if (health && /recoverable|degraded/i.test(health.status)) return { status: "degraded", message: health.last_error || health.status };
  return { status: "online", message: health?.status || "healthy" };
}

function component(id: string, health: ComponentHealth): Component {
  const status = !health.healthy ? "FAILED" : /recoverable|degraded/i.test(health.status) ? "DEGRADED" : "HEALTHY";
  return {
    id,
    type: id.split("/")[0] ?? id,
    status,
    message: health.lastError || health.status,
    units: Object.entries(health.componentHealthMap).map(([unit, h]) => ({
      id: unit,
      type: "other",
      status: !h.healthy ? "FAILED" : /recoverable|degraded/i.test(h.status) ? "DEGRADED" : "HEALTHY",
      message: h.lastError || h.status,
    })),
  };
}

/** Fleet's `local_metadata` layout (host, os), plus the collector's own attributes under `otel`. */
function localMetadata(identifying: Record<string, JsonValue>, other: Record<string, JsonValue>): JsonObject {
  const metadata: JsonObject = {
    host: { hostname: text(other["host.name"]), architecture: text(other["host.arch"]) },
    os: { family: text(other["os.type"]), full: text(other["os.description"]) },
    otel: { identifying_attributes: identifying, non_identifying_attributes: other },
  };
  return metadata;
}

function attributes(list: KeyValue[]): Record<string, JsonValue> {
  return Object.fromEntries(list.map((kv) => [kv.key, anyValue(kv.value)]));
}

function anyValue(value: AnyValue | undefined): JsonValue {
  const v = value?.value;
  switch (v?.case) {
    case "stringValue":
    case "boolValue":
    case "doubleValue":
      return v.value;
    case "intValue":
      return Number(v.value);
    case "arrayValue":
      return v.value.values.map(anyValue);
    case "kvlistValue":
      return attributes(v.value.values);
    case "bytesValue":
      return btoa(String.fromCharCode(...v.value));
    default:
      return null;
  }
}

const text = (value: JsonValue | undefined): string => (typeof value === "string" ? value : "");

/** Capability names as fleet-server lists them in `.fleet-agents` (`ReportsStatus`, ...). */
export function capabilityNames(capabilities: number): string[] {
  const names: string[] = [];
  for (let bit = 1; bit <= 0x8000; bit *= 2) {
    const name = AgentCapabilities[bit as AgentCapabilities] as string | undefined;
    if ((capabilities & bit) !== 0 && name) names.push(name.replace(/^AgentCapabilities_/, ""));
  }
  return names;
}
