import { MAX_ID_BYTES } from "../protocol/ids";
import { z } from "zod";
import {
  ActionCreate,
  ActionItem,
  ActionStatusList,
  AdminKeyCreate,
  AdminKeyList,
  AdminKeyResponse,
  AgentDetail,
  AgentList,
  AgentListQuery,
  AgentUpdate,
  BulkAccepted,
  BulkAction,
  BulkDiagnostics,
  BulkReassign,
  BulkTags,
  BulkUnenroll,
  BulkUpgrade,
  ConsoleOverview,
  DiagnosticsRequest,
  EnrollmentKeyCreate,
  EnrollmentKeyList,
  EnrollmentKeyResponse,
  ErrorBody,
  FleetOverview,
  FullPolicy,
  Paging,
  PolicyList,
  PolicyPutResponse,
  PolicyRevisions,
  PolicyRollout,
  Reassign,
  RevisionDiff,
  RestartRequested,
  RolloutStart,
  RolloutView,
  Unenroll,
  UpgradeRequest,
} from "../protocol/admin";
import { AckRequest } from "../protocol/ack";
import { AuditUnenrollRequest } from "../protocol/audit";
import { CheckinRequest } from "../protocol/checkin";
import { EnrollRequest } from "../protocol/enroll";
import { ArtifactPut, DeliveryPut, PgpKeyPut } from "../protocol/files-admin";
import { JsonObject } from "../protocol/parse";
import { PolicyPutRequest } from "../protocol/policy";
import { SOCKET_PROTOCOL_VERSION, SocketAck, SocketCheckin, SocketPing, SocketServerMessage } from "../protocol/socket";

/** Path ids as the server accepts them (src/protocol/ids.ts): other values are refused before any lookup. */
const PATH_ID = { type: "string", minLength: 1, maxLength: MAX_ID_BYTES, pattern: "^[^/\\u0000-\\u001f\\u007f]+$" } as const;

/** Answers of the agent-facing routes, as fleet-server shapes them. */
const StatusResponse = z.object({
  name: z.literal("fleet-server"),
  status: z.string(),
  version: z.object({ number: z.string(), build_hash: z.string(), build_time: z.string() }).optional(),
  mirror: z.record(z.string(), z.json()).optional(),
});
const DeliveredActionSchema = z.object({
  agent_id: z.string(),
  created_at: z.string(),
  data: z.json(),
  expiration: z.string().optional(),
  id: z.string(),
  input_type: z.string(),
  start_time: z.string().optional(),
  timeout: z.number().int().optional(),
  type: z.string(),
});
const CheckinResponse = z.object({ ack_token: z.string(), action: z.literal("checkin"), actions: z.array(DeliveredActionSchema).optional() });
const EnrollResponse = z.object({
  action: z.literal("created"),
  item: z.object({
    access_api_key: z.string(),
    access_api_key_id: z.string(),
    active: z.boolean(),
    enrolled_at: z.string(),
    id: z.string(),
    local_metadata: JsonObject.nullable(),
    policy_id: z.string(),
    status: z.string(),
    tags: z.array(z.string()),
    type: z.string(),
    user_provided_metadata: z.null(),
  }),
});
const AckResponse = z.object({
  action: z.literal("acks"),
  errors: z.literal(true).optional(),
  items: z.array(z.object({ status: z.number().int(), message: z.string() })).optional(),
});
const UploadBegin = z.looseObject({ action_id: z.string(), agent_id: z.string(), src: z.string(), file: z.looseObject({ name: z.string(), size: z.number() }) });
const UploadBegun = z.object({ upload_id: z.string(), chunk_size: z.number().int() });
const UploadComplete = z.object({ transithash: z.object({ sha256: z.string() }) });
const Item = z.object({ item: JsonObject });
const Items = z.looseObject({ items: z.array(JsonObject) });

interface Operation {
  method: "get" | "post" | "put" | "delete";
  path: string;
  summary: string;
  auth: "agent" | "enrollment" | "admin" | "none";
  query?: z.ZodObject;
  body?: z.ZodType;
  /** The 200 answer; `binary` for raw bytes. */
  response: z.ZodType | "binary" | "empty";
  /** Non-200 answers that carry the 200 shape too (acks: the HTTP status is the worst item's). */
  partialFailure?: true;
}

const OPERATIONS: Operation[] = [
  { method: "get", path: "/api/status", summary: "Server health; the version with a genuine key; the mirror with the admin token", auth: "none", response: StatusResponse },
  { method: "post", path: "/api/fleet/agents/enroll", summary: "Enroll an agent with an enrollment key", auth: "enrollment", body: EnrollRequest, response: EnrollResponse },
  { method: "post", path: "/api/fleet/agents/{id}/checkin", summary: "Long-poll check-in", auth: "agent", body: CheckinRequest, response: CheckinResponse },
  { method: "post", path: "/api/fleet/agents/{id}/acks", summary: "Acknowledge actions", auth: "agent", body: AckRequest, response: AckResponse, partialFailure: true },
  {
    method: "get",
    path: "/api/fleet/agents/{id}/ws",
    summary: `WebSocket channel, protocol v${SOCKET_PROTOCOL_VERSION} (messages: components SocketCheckin, SocketAck, SocketPing, SocketServerMessage)`,
    auth: "agent",
    response: "empty",
  },
  { method: "post", path: "/api/fleet/agents/{id}/audit/unenroll", summary: "Record an uninstall or orphaned agent", auth: "agent", body: AuditUnenrollRequest, response: "empty" },
  { method: "get", path: "/api/fleet/artifacts/{id}/{sha2}", summary: "An artifact listed in the agent's policy", auth: "agent", response: "binary" },
  { method: "post", path: "/api/fleet/uploads", summary: "Begin a file upload (diagnostics)", auth: "agent", body: UploadBegin, response: UploadBegun },
  { method: "put", path: "/api/fleet/uploads/{id}/{chunkNum}", summary: "Upload one chunk (X-Chunk-SHA2)", auth: "agent", response: "empty" },
  { method: "post", path: "/api/fleet/uploads/{id}", summary: "Complete an upload with its transit hash", auth: "agent", body: UploadComplete, response: z.object({ status: z.literal("ok") }) },
  { method: "get", path: "/api/fleet/file/{id}", summary: "A file delivered to this agent (Range supported)", auth: "agent", response: "binary" },
  { method: "get", path: "/api/agents/upgrades/{version}/pgp-public-key", summary: "The PGP key that signs agent upgrades", auth: "none", response: "binary" },

  { method: "get", path: "/api/fleet/agent_policies", summary: "List agent policies", auth: "admin", query: Paging, response: PolicyList },
  { method: "post", path: "/api/fleet/agent_policies", summary: "Create an agent policy (revision 1)", auth: "admin", body: PolicyPutRequest.extend({ id: z.string().optional() }), response: PolicyPutResponse },
  { method: "put", path: "/api/fleet/agent_policies/{id}", summary: "Create or revise a policy; a content change is a new revision", auth: "admin", body: PolicyPutRequest, response: PolicyPutResponse },
  { method: "get", path: "/api/fleet/agent_policies/{id}", summary: "One agent policy", auth: "admin", response: z.object({ item: PolicyPutResponse.shape.item }) },
  { method: "delete", path: "/api/fleet/agent_policies/{id}", summary: "Delete a policy with no active agents (409 otherwise)", auth: "admin", response: z.object({ id: z.string(), name: z.string() }) },
  { method: "get", path: "/api/fleet/agent_policies/{id}/full", summary: "The policy exactly as agents receive it", auth: "admin", response: FullPolicy },
  { method: "get", path: "/api/fleet/agent_policies/{id}/revisions", summary: "Revision history: who, when, size, changed paths", auth: "admin", response: PolicyRevisions },
  {
    method: "get",
    path: "/api/fleet/agent_policies/{id}/revisions/{revision}/diff",
    summary: "What a revision changed against the one before it: paths with before/after values (at most 500)",
    auth: "admin",
    response: RevisionDiff,
  },
  { method: "post", path: "/api/fleet/agent_policies/{id}/revisions/{revision}/rollback", summary: "Publish an earlier revision's content as a new revision", auth: "admin", response: PolicyPutResponse },
  { method: "get", path: "/api/fleet/agent_policies/{id}/rollout", summary: "How far the latest revision has reached", auth: "admin", response: PolicyRollout },
  {
    method: "post",
    path: "/api/fleet/agent_policies/{id}/rollouts",
    summary: "Publish a change as a staged rollout (stages, promotion criteria)",
    auth: "admin",
    body: RolloutStart,
    response: RolloutView,
  },
  {
    method: "get",
    path: "/api/fleet/agent_policies/{id}/rollouts/current",
    summary: "The staged rollout's state, its current stage's progress, and its progress over time (samples)",
    auth: "admin",
    response: RolloutView,
  },
  { method: "post", path: "/api/fleet/agent_policies/{id}/rollouts/current/{command}", summary: "pause, resume, promote or abort the staged rollout; answers with its progress as the command left it", auth: "admin", response: RolloutView },
  { method: "get", path: "/api/fleet/enrollment_api_keys", summary: "List enrollment keys (secrets not shown)", auth: "admin", query: Paging, response: EnrollmentKeyList },
  { method: "post", path: "/api/fleet/enrollment_api_keys", summary: "Create an enrollment key (secret shown once)", auth: "admin", body: EnrollmentKeyCreate, response: EnrollmentKeyResponse },
  { method: "get", path: "/api/fleet/enrollment_api_keys/{id}", summary: "One enrollment key", auth: "admin", response: EnrollmentKeyResponse },
  { method: "delete", path: "/api/fleet/enrollment_api_keys/{id}", summary: "Revoke an enrollment key", auth: "admin", response: EnrollmentKeyResponse },
  { method: "get", path: "/api/fleet/agents", summary: "List agents (paged, filtered, sorted)", auth: "admin", query: AgentListQuery, response: AgentList },
  { method: "get", path: "/api/fleet/agents/{agentId}", summary: "One agent in full", auth: "admin", response: AgentDetail },
  { method: "put", path: "/api/fleet/agents/{agentId}", summary: "Set an agent's tags", auth: "admin", body: AgentUpdate, response: Item },
  { method: "get", path: "/api/fleet/agent_status", summary: "Fleet overview: counts by status, overall and per policy", auth: "admin", response: FleetOverview },
  { method: "post", path: "/api/fleet/agents/{agentId}/actions", summary: "Send an action to one agent", auth: "admin", body: ActionCreate, response: ActionItem },
  { method: "post", path: "/api/fleet/actions", summary: "Send an action to many agents or a whole policy", auth: "admin", body: BulkAction, response: BulkAccepted },
  { method: "post", path: "/api/fleet/agents/{agentId}/unenroll", summary: "Unenroll (UNENROLL action, or revoke: true at once)", auth: "admin", body: Unenroll, response: Item },
  { method: "post", path: "/api/fleet/agents/bulk_unenroll", summary: "Unenroll many agents", auth: "admin", body: BulkUnenroll, response: BulkAccepted },
  { method: "post", path: "/api/fleet/agents/{agentId}/restart", summary: "Restart an OpenTelemetry collector (OpAMP command)", auth: "admin", response: RestartRequested },
  { method: "post", path: "/api/fleet/agents/{agentId}/reassign", summary: "Move an agent to another policy", auth: "admin", body: Reassign, response: Item },
  { method: "post", path: "/api/fleet/agents/bulk_reassign", summary: "Move many agents to another policy", auth: "admin", body: BulkReassign, response: BulkAccepted },
  { method: "post", path: "/api/fleet/agents/bulk_update_agent_tags", summary: "Add and remove tags on many agents", auth: "admin", body: BulkTags, response: BulkAccepted },
  { method: "post", path: "/api/fleet/agents/{agentId}/upgrade", summary: "Upgrade one agent", auth: "admin", body: UpgradeRequest, response: ActionItem },
  { method: "post", path: "/api/fleet/agents/bulk_upgrade", summary: "Upgrade many agents, optionally spread over a rollout window", auth: "admin", body: BulkUpgrade, response: BulkAccepted },
  { method: "post", path: "/api/fleet/agents/{agentId}/request_diagnostics", summary: "Request a diagnostics bundle", auth: "admin", body: DiagnosticsRequest, response: ActionItem },
  { method: "post", path: "/api/fleet/agents/bulk_request_diagnostics", summary: "Request diagnostics from many agents", auth: "admin", body: BulkDiagnostics, response: BulkAccepted },
  { method: "get", path: "/api/fleet/agents/action_status", summary: "Actions and bulk operations with their progress", auth: "admin", query: Paging, response: ActionStatusList },
  { method: "post", path: "/api/fleet/agents/actions/{actionId}/cancel", summary: "Cancel an action: CANCEL to agents that have not answered", auth: "admin", response: ActionItem },
  {
    method: "get",
    path: "/api/fleet/console/overview",
    summary: "The console's overview: counts by status, version and policy, check-ins per minute, server version, mirror",
    auth: "admin",
    response: ConsoleOverview,
  },
  {
    method: "get",
    path: "/api/fleet/console/live",
    summary:
      'The console\'s live channel (WebSocket): first message {"type":"auth","authorization":"Bearer …"}, then {"type":"overview","item":…} pushed as the policy hubs report changes; {"type":"refresh"} asks for a reading now',
    auth: "none",
    response: "empty",
  },
  { method: "get", path: "/api/fleet/admin_api_keys", summary: "List admin API keys", auth: "admin", response: AdminKeyList },
  { method: "post", path: "/api/fleet/admin_api_keys", summary: "Create an admin API key (shown once)", auth: "admin", body: AdminKeyCreate, response: AdminKeyResponse },
  { method: "delete", path: "/api/fleet/admin_api_keys/{id}", summary: "Revoke an admin API key", auth: "admin", response: AdminKeyResponse },
  { method: "get", path: "/api/fleet/artifacts", summary: "List published artifacts", auth: "admin", response: Items },
  { method: "put", path: "/api/fleet/artifacts/{id}", summary: "Publish an artifact (.fleet-artifacts fields)", auth: "admin", body: ArtifactPut, response: Item },
  { method: "delete", path: "/api/fleet/artifacts/{id}", summary: "Delete one version of an artifact (?decoded_sha256=)", auth: "admin", response: JsonObject },
  { method: "put", path: "/api/fleet/files/{fileId}", summary: "Publish a file for agents to fetch", auth: "admin", body: DeliveryPut, response: Item },
  { method: "delete", path: "/api/fleet/files/{fileId}", summary: "Delete a delivered file", auth: "admin", response: JsonObject },
  { method: "get", path: "/api/fleet/agents/{agentId}/uploads", summary: "An agent's uploaded files (diagnostics)", auth: "admin", response: Items },
  { method: "get", path: "/api/fleet/agents/files/{fileId}/{fileName}", summary: "Download an uploaded file", auth: "admin", response: "binary" },
  { method: "get", path: "/api/fleet/pgp_public_key", summary: "The PGP key served to agents", auth: "admin", response: Item },
  { method: "put", path: "/api/fleet/pgp_public_key", summary: "Set the PGP key served to agents", auth: "admin", body: PgpKeyPut, response: Item },
  { method: "delete", path: "/api/fleet/pgp_public_key", summary: "Remove the admin-set PGP key", auth: "admin", response: JsonObject },
];

/**
 * JSON Schemas for one document. zod puts the definitions a schema needs (recursive `z.json()`) in
 * its own `$defs` and points at them with `#/$defs/…`, which inside an OpenAPI document resolves
 * against the document's root, where nothing is. They are moved to `components.schemas` instead,
 * one copy of each distinct definition, and every `$ref` follows them there. zod's recursive
 * definition of any JSON value becomes `{}`: the same instances, and generators (schemathesis)
 * cannot expand a schema that refers to itself.
 */
/** zod's definition of `z.json()`, its reference to itself written `#self`. */
const ANY_JSON = (() => {
  const { $defs } = z.toJSONSchema(z.object({ value: z.json() })) as { $defs: Record<string, unknown> };
  const [name, def] = Object.entries($defs)[0]!;
  return JSON.stringify(def).replaceAll(`"#/$defs/${name}"`, '"#self"');
})();

class SchemaSet {
  readonly definitions: Record<string, unknown> = {};
  /** Names of definitions that refer to nothing but themselves, by content. */
  readonly #byContent = new Map<string, string>();
  #count = 0;

  of(type: z.ZodType, io: "input" | "output"): Record<string, unknown> {
    const { $defs, $schema: _dialect, ...body } = z.toJSONSchema(type, { io, unrepresentable: "any" }) as Record<string, unknown>;
    const defs = Object.entries(($defs ?? {}) as Record<string, unknown>).map(([name, def]) => ({ local: `"#/$defs/${name}"`, text: JSON.stringify(def), name: "" }));
    for (const def of defs) {
      const key = def.text.replaceAll(def.local, '"#self"');
      if (key === ANY_JSON) {
        def.name = "Json";
        this.definitions.Json = {};
        continue;
      }
      const shared = !key.includes('"#/$defs/');
      def.name = (shared ? this.#byContent.get(key) : undefined) ?? `Definition${++this.#count}`;
      if (shared) this.#byContent.set(key, def.name);
    }
    const rewrite = (text: string) => defs.reduce((out, def) => out.replaceAll(def.local, `"#/components/schemas/${def.name}"`), text);
    for (const def of defs) this.definitions[def.name] ??= JSON.parse(rewrite(def.text));
    return JSON.parse(rewrite(JSON.stringify(body))) as Record<string, unknown>;
  }
}

/**
 * The OpenAPI 3.1 document of the whole API, generated from the same zod schemas the routes parse
 * and answer with, so it cannot drift from them silently.
 */
export function openApiDocument(serverVersion: string): Record<string, unknown> {
  const schemas = new SchemaSet();
  const schema = (type: z.ZodType, io: "input" | "output") => schemas.of(type, io);
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of OPERATIONS) {
    const parameters = [
      ...[...op.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: "path", required: true, schema: PATH_ID })),
      ...Object.entries(op.query?.shape ?? {}).map(([name, field]) => ({ name, in: "query", required: false, schema: schema(field as z.ZodType, "input") })),
    ];
    const ok =
      op.response === "empty"
        ? { description: "OK, empty body" }
        : op.response === "binary"
          ? { description: "The bytes", content: { "application/octet-stream": { schema: { type: "string", contentMediaType: "application/octet-stream" } } } }
          : { description: "OK", content: { "application/json": { schema: schema(op.response, "output") } } };
    (paths[op.path] ??= {})[op.method] = {
      summary: op.summary,
      tags: [op.auth === "admin" ? "admin" : "agents"],
      security: op.auth === "none" ? [] : op.auth === "admin" ? [{ adminToken: [] }] : [{ apiKey: [] }],
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(op.body ? { requestBody: { required: true, content: { "application/json": { schema: schema(op.body, "input") } } } } : {}),
      responses: {
        "200": ok,
        default: {
          description: op.partialFailure ? "Per-item results with the worst item's status, or an error" : "An error",
          content: {
            "application/json": {
              schema:
                op.partialFailure && typeof op.response === "object"
                  ? { anyOf: [schema(op.response, "output"), { $ref: "#/components/schemas/Error" }] }
                  : { $ref: "#/components/schemas/Error" },
            },
          },
        },
      },
    };
  }
  // Generated before the definitions are collected below.
  const messages = {
    Error: schema(ErrorBody, "output"),
    // The WebSocket channel's messages (GET /api/fleet/agents/{id}/ws), one schema per type.
    SocketCheckin: schema(SocketCheckin, "input"),
    SocketAck: schema(SocketAck, "input"),
    SocketPing: schema(SocketPing, "input"),
    SocketServerMessage: schema(SocketServerMessage, "output"),
  };
  return {
    openapi: "3.1.0",
    info: { title: "Edge Fleet Server", version: serverVersion, description: "Elastic Agent's Fleet protocol and an admin API, on Cloudflare Workers." },
    paths,
    components: {
      schemas: { ...schemas.definitions, ...messages },
      securitySchemes: {
        apiKey: { type: "apiKey", in: "header", name: "Authorization", description: "ApiKey base64(id:secret): an access key, or an enrollment key on enroll" },
        adminToken: { type: "http", scheme: "bearer", description: "FLEET_ADMIN_TOKEN or an admin API key" },
      },
    },
  };
}
