import type { EnrollmentKeyRecord } from "../admin/directory-records";
import type { NewAction } from "../agents/actions";
import type { AgentDoc } from "../protocol/agent-doc";
import type { JsonObject } from "../protocol/parse";
import { capabilityNames } from "../opamp/report";
import { toAgentPolicy, type PolicyRevision } from "../protocol/policy";

/**
 * The documents fleet-server and Kibana keep in Elasticsearch, built field for field from
 * `reference/fleet-server/schema.json`. Secrets never appear: access keys are represented by their
 * id, replace tokens by their PBKDF2 hash, enrollment tokens not at all.
 */

/** `.fleet-agents/_doc/<agent id>`. `status` is what the agent last reported, or `unenrolled`. */
export function agentDocument(doc: AgentDoc): JsonObject {
  const { id: _id, ...fields } = doc;
  const body = JSON.parse(JSON.stringify(fields)) as JsonObject;
  // The document is written whole, so a field that is null here is simply absent.
  for (const [key, value] of Object.entries(body)) if (value === null) delete body[key];
  body.status = doc.active ? (doc.last_checkin_status ?? "enrolled") : "unenrolled";
  body.agent = { id: doc.agent.id, version: doc.agent.version, type: "PERMANENT" };
  if (doc.opamp) {
    delete body.opamp;
    Object.assign(body, collectorFields(doc));
  }
  if (doc.outputs) {
    // fleet-server keeps `api_key` ("id:key") here; the secret stays in the agent's store and the
    // field is empty, which a fleet-server reading this document takes as "mint a new key".
    body.outputs = Object.fromEntries(Object.entries(doc.outputs).map(([name, output]) => [name, { ...output, api_key: "" }]));
  }
  return body;
}

/**
 * A collector's OpAMP state in the fields fleet-server's schema gives `.fleet-agents` documents of
 * type OPAMP (effective_config, health, capabilities, attributes), instead of our `opamp` object.
 */
function collectorFields(doc: AgentDoc): JsonObject {
  const state = doc.opamp!;
  const otel = (doc.local_metadata?.otel ?? {}) as JsonObject;
  const fields: JsonObject = { capabilities: capabilityNames(state.capabilities) };
  if (state.effective_config) fields.effective_config = state.effective_config;
  if (state.health) fields.health = state.health;
  if (otel.identifying_attributes) fields.identifying_attributes = otel.identifying_attributes;
  if (otel.non_identifying_attributes) fields.non_identifying_attributes = otel.non_identifying_attributes;
  return fields;
}

/** `.fleet-actions-results/_doc/<action_id>:<agent_id>`. */
export function actionResultId(actionId: string, agentId: string): string {
  return `${actionId}:${agentId}`;
}

/** `.fleet-actions/_doc/<doc id>` for an action created here, so Kibana lists it. */
export function actionDocument(action: NewAction, agents: string[]): JsonObject {
  const body: JsonObject = {
    action_id: action.action_id,
    agents,
    type: action.type,
    data: action.data,
    "@timestamp": action.created_at,
    expiration: action.expiration,
  };
  if (action.start_time) body.start_time = action.start_time;
  if (action.input_type) body.input_type = action.input_type;
  if (action.timeout !== undefined) body.timeout = action.timeout;
  return body;
}

/** `.fleet-policies/_doc/<policy_id>:<revision>`: one document per revision, as Kibana writes them. */
export function policyDocumentId(revision: PolicyRevision): string {
  return `${revision.policy_id}:${revision.revision}`;
}

export function policyDocument(revision: PolicyRevision): JsonObject {
  return {
    "@timestamp": revision.created_at,
    policy_id: revision.policy_id,
    revision_idx: revision.revision,
    coordinator_idx: 0,
    namespaces: [],
    data: toAgentPolicy(revision),
    default_fleet_server: false,
  };
}

/** `.fleet-enrollment-api-keys/_doc/<key id>`; `api_key` (the token) is deliberately empty. */
export function enrollmentKeyDocument(key: EnrollmentKeyRecord, updatedAt: string): JsonObject {
  const body: JsonObject = {
    active: key.active,
    api_key_id: key.api_key_id,
    api_key: "",
    name: key.name,
    policy_id: key.policy_id,
    namespaces: [],
    created_at: key.created_at,
    updated_at: updatedAt,
  };
  if (key.expire_at) body.expire_at = key.expire_at;
  return body;
}
