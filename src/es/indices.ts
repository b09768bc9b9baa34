/** The fleet indices, named as fleet-server and Kibana name them. */
export const INDEX = {
  agents: ".fleet-agents",
  actions: ".fleet-actions",
  actionResults: ".fleet-actions-results",
  policies: ".fleet-policies",
  enrollmentKeys: ".fleet-enrollment-api-keys",
  /** Upload metadata, one index per `src` (`agent`, `endpoint`): a pattern, see `uploadMetaIndex`. */
  uploadMeta: ".fleet-fileds-fromhost-meta-*",
  /** Upload chunks (CBOR documents), one index per `src`: a pattern, see `uploadDataIndex`. */
  uploadData: ".fleet-fileds-fromhost-data-*",
} as const;
type Named = (typeof INDEX)[keyof typeof INDEX];
/** What a template is installed for: a fleet index, or an index pattern. */
export type TemplateName = Named;
/** A concrete index a document is written to. */
export type IndexName = Exclude<Named, `${string}*`> | `.fleet-fileds-fromhost-meta-${string}` | `.fleet-fileds-fromhost-data-${string}`;

export const uploadMetaIndex = (src: string): IndexName => `.fleet-fileds-fromhost-meta-${src}`;
export const uploadDataIndex = (src: string): IndexName => `.fleet-fileds-fromhost-data-${src}`;

/**
 * Kibana's artifacts, only read here (no template: Elasticsearch's Fleet plugin owns this system
 * index; where it is absent nothing was published).
 */
export const ARTIFACTS_INDEX = ".fleet-artifacts";

const keyword = { type: "keyword" } as const;
const date = { type: "date" } as const;
const bool = { type: "boolean" } as const;
const long = { type: "long" } as const;
const opaque = { type: "object", enabled: false } as const;

/**
 * Mappings for the fields Kibana's Fleet UI queries; payloads that are opaque to search are stored
 * unindexed. One shard each, so `_seq_no` orders every document of an index (the ingest watcher
 * depends on that, as fleet-server does).
 */
export const TEMPLATES: Record<TemplateName, Record<string, unknown>> = {
  [INDEX.agents]: {
    active: bool,
    type: keyword,
    policy_id: keyword,
    policy_base_id: keyword,
    agent_policy_id: keyword,
    policy_revision_idx: long,
    namespaces: keyword,
    enrolled_at: date,
    updated_at: date,
    unenrolled_at: date,
    unenrolled_reason: keyword,
    audit_unenrolled_time: date,
    audit_unenrolled_reason: keyword,
    upgraded_at: date,
    upgrade_started_at: date,
    access_api_key_id: keyword,
    agent: { properties: { id: keyword, version: keyword, type: keyword } },
    tags: keyword,
    local_metadata: { type: "object", dynamic: true },
    last_checkin: date,
    last_checkin_status: keyword,
    last_checkin_message: { type: "text" },
    unhealthy_reason: keyword,
    components: opaque,
    upgrade_details: opaque,
    upgrade: opaque,
    outputs: opaque,
    action_seq_no: long,
    enrollment_id: keyword,
    replace_token: { type: "keyword", index: false },
    status: keyword,
  },
  [INDEX.actions]: {
    action_id: keyword,
    agents: keyword,
    type: keyword,
    input_type: keyword,
    "@timestamp": date,
    expiration: date,
    start_time: date,
    rollout_duration_seconds: long,
    timeout: long,
    namespaces: keyword,
    data: opaque,
    signed: opaque,
    user_id: keyword,
    traceparent: keyword,
  },
  [INDEX.actionResults]: {
    action_id: keyword,
    agent_id: keyword,
    "@timestamp": date,
    started_at: date,
    completed_at: date,
    action_input_type: keyword,
    namespaces: keyword,
    error: { type: "text" },
    data: opaque,
    action_data: opaque,
    action_response: opaque,
  },
  [INDEX.policies]: {
    policy_id: keyword,
    revision_idx: long,
    coordinator_idx: long,
    "@timestamp": date,
    namespaces: keyword,
    default_fleet_server: bool,
    unenroll_timeout: long,
    data: opaque,
  },
  [INDEX.enrollmentKeys]: {
    active: bool,
    api_key_id: keyword,
    api_key: { type: "keyword", index: false },
    name: keyword,
    policy_id: keyword,
    namespaces: keyword,
    created_at: date,
    updated_at: date,
    expire_at: date,
  },
  // fleet-server's upload documents, mapped as Elasticsearch's own `.fleet-fileds-fromhost-*`
  // templates map them (plus `src` and `transithash`); see `templatePriority` for who wins.
  [INDEX.uploadMeta]: {
    "@timestamp": date,
    upload_start: date,
    agent_id: keyword,
    action_id: keyword,
    source: keyword,
    src: keyword,
    upload_id: keyword,
    namespaces: keyword,
    file: { properties: { Status: keyword, ChunkSize: { type: "integer" }, Compression: keyword, name: keyword, mime_type: keyword, size: long } },
    transithash: { properties: { sha256: keyword } },
  },
  [INDEX.uploadData]: {
    "@timestamp": date,
    data: { type: "binary" },
    bid: keyword,
    sha2: { type: "keyword", index: false },
    last: { type: "boolean", index: false },
  },
};

/**
 * Elasticsearch (8.8+, with its Fleet plugin) installs its own `.fleet-fileds-*` templates at
 * priority 200 and makes those indices data streams; ours sit below so that, where they exist, the
 * indices are exactly what fleet-server would find. Everything we write there works on both a data
 * stream and a plain index (`create`, and `replace` on the backing index). Elsewhere ours apply.
 */
export function templatePriority(name: TemplateName): number {
  return name.startsWith(".fleet-fileds-") ? 150 : 500;
}
