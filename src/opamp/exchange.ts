import { create } from "@bufbuild/protobuf";
import type { Env } from "../config";
import { isFailure, type Failure } from "../errors";
import type { PolicyRevision } from "../protocol/policy";
import type { CheckinInput, CheckinOutcome } from "../session/contract";
import { checkin, type CheckinWake } from "../session/checkin";
import { collectorConfig, hashText, revisionOfHash } from "./collector-config";
import {
  AgentCapabilities,
  AgentConfigMapSchema,
  AgentRemoteConfigSchema,
  type AgentRemoteConfig,
  CommandType,
  ServerErrorResponseType,
  ServerToAgentFlags,
  type AgentToServer,
  type ServerToAgent,
} from "./gen/opamp_pb";
import { accepts, opampReport, oversized } from "./report";
import { idToUid } from "./wire";

/** How one message reaches the collector's record, per transport and credential. */
export interface OpampPath {
  agentId: string;
  /** The message came with the enrollment token, not the collector's own credential. */
  viaEnrollmentToken: boolean;
  record(input: CheckinInput): Promise<CheckinOutcome | Failure>;
  /** Asks the collector's shard whether it is behind (never holds: OpAMP has no long poll). */
  wait(outcome: CheckinOutcome): Promise<CheckinWake | Failure>;
  /** The server gave the collector a new uid (it asked, or its uid belongs to another collector). */
  newInstanceUid?: boolean;
  /** The collector's own credential, minted for this answer: offered as `connection_settings.opamp.headers`. */
  credential?: string | null;
}

export type OpampAnswer = Omit<ServerToAgent, "$typeName" | "$unknown">;

/**
 * One `AgentToServer` through the session's check-in flow (src/session/checkin.ts), as a codec:
 * the message becomes a check-in of the collector's record (status, metadata, components, its
 * APPLIED config as the revision it runs), the flow says whether it is behind its policy, and the
 * answer is one `ServerToAgent`: remote config when behind (and not already reported for that
 * hash), `ReportFullState` on a sequence gap, the new uid and credential when there are.
 */
export async function exchange(env: Env, message: AgentToServer, path: OpampPath): Promise<OpampAnswer | Failure> {
  const report = opampReport(message, path.viaEnrollmentToken);
  const tooBig = oversized(report);
  if (tooBig) return { instanceUid: message.instanceUid, errorResponse: { $typeName: "opamp.proto.ServerErrorResponse", type: ServerErrorResponseType.ServerErrorResponseType_BadRequest, errorMessage: tooBig, Details: { case: undefined } } } as OpampAnswer;
  const applied = report.remoteConfigStatus?.status === "APPLIED" ? revisionOfHash(report.remoteConfigStatus.hash) : null;
  const input: CheckinInput = { status: "", message: "", version: "", opamp: report, ...(applied ? { reported: applied } : {}) };
  let recorded: CheckinOutcome | null = null;
  const answer = await checkin(env, path.agentId, {
    collector: true,
    record: async () => {
      const outcome = await path.record(input);
      if (!isFailure(outcome)) recorded = outcome;
      return outcome;
    },
    wait: (outcome) => path.wait(outcome),
  });
  if (isFailure(answer)) return answer;
  const outcome = recorded as CheckinOutcome | null;

  // A restart is sent alone (opamp.md §3.2); what else is due follows the collector's next message.
  if (outcome?.opamp?.restart) {
    return { instanceUid: message.instanceUid, command: { $typeName: "opamp.proto.ServerToAgentCommand", type: CommandType.CommandType_Restart } } as OpampAnswer;
  }
  const reply: Partial<OpampAnswer> = {
    instanceUid: path.newInstanceUid ? idToUid(path.agentId) : message.instanceUid,
    flags: outcome?.opamp?.reportFullState ? BigInt(ServerToAgentFlags.ServerToAgentFlags_ReportFullState) : 0n,
  };
  if (path.newInstanceUid) reply.agentIdentification = { $typeName: "opamp.proto.AgentIdentification", newInstanceUid: idToUid(path.agentId) };
  if (path.credential) reply.connectionSettings = await credentialOffer(path.credential);
  if (answer.kind === "policy" && accepts(report.capabilities, AgentCapabilities.AgentCapabilities_AcceptsRemoteConfig)) {
    const config = await remoteConfig(answer.revision);
    if (outcome?.opamp?.reportedHash !== hashText(config.configHash)) reply.remoteConfig = config;
  }
  return reply as OpampAnswer;
}

/** A revision's collector configuration as `remote_config` (src/opamp/collector-config.ts). */
export async function remoteConfig(revision: PolicyRevision): Promise<AgentRemoteConfig> {
  const config = await collectorConfig(revision);
  return create(AgentRemoteConfigSchema, {
    configHash: config.hash,
    config: create(AgentConfigMapSchema, {
      configMap: Object.fromEntries(Object.entries(config.files).map(([name, file]) => [name, { body: file.body, contentType: file.contentType }])),
    }),
  });
}

/**
 * The collector's own credential as OpAMP connection settings (opamp.md §3.2, credential rotation):
 * the collector sends this header from now on, and the enrollment token stops speaking for it.
 */
async function credentialOffer(credential: string): Promise<NonNullable<OpampAnswer["connectionSettings"]>> {
  const header = `ApiKey ${credential}`;
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(header)));
  return {
    $typeName: "opamp.proto.ConnectionSettingsOffers",
    hash,
    opamp: {
      $typeName: "opamp.proto.OpAMPConnectionSettings",
      destinationEndpoint: "",
      headers: { $typeName: "opamp.proto.Headers", headers: [{ $typeName: "opamp.proto.Header", key: "Authorization", value: header }] },
      heartbeatIntervalSeconds: 0n,
    },
    otherConnections: {},
  };
}
