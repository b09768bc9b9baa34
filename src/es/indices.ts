/** The fleet indices, named as fleet-server and Kibana name them. */
export const INDEX = {
  agents: ".fleet-agents",
  actions: ".fleet-actions",
  actionResults: ".fleet-actions-results",
  policies: ".fleet-policies",
  enrollmentKeys: ".fleet-enrollment-api-keys",
} as const;
export type IndexName = (typeof INDEX)[keyof typeof INDEX];

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
export const TEMPLATES: Record<IndexName, Record<string, unknown>> = {
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
};
