import { z } from "zod";
import { SORT_FIELDS } from "../admin/agent-query";
import { ACTION_TYPES } from "./action";

const isoDate = z.iso.datetime({ offset: true, message: "an RFC 3339 timestamp, e.g. 2026-12-01T00:00:00Z" });

/** `POST /api/fleet/enrollment_api_keys` body (Kibana's names). */
export const EnrollmentKeyCreate = z.object({
  policy_id: z.string().min(1),
  name: z.string().min(1).max(256).optional(),
  expiration: isoDate.optional(),
});

/** `POST /api/fleet/agents/{agentId}/actions` body: `{"action":{...}}` as Kibana's agent actions API. */
export const ActionCreate = z.object({
  action: z.object({
    type: z.enum(ACTION_TYPES),
    data: z.json().optional(),
    expiration: isoDate.optional(),
    start_time: isoDate.optional(),
    input_type: z.string().max(256).optional(),
    timeout: z.number().int().positive().max(3600).optional(),
  }),
});
export type ActionCreate = z.infer<typeof ActionCreate>;

// ---- Shared pieces -------------------------------------------------------------------------------

export const Paging = z.object({
  page: z.coerce.number().int().min(1).default(1),
  perPage: z.coerce.number().int().min(1).max(1000).default(20),
});

/** Who a bulk operation targets: explicit agent ids, or every active agent of a policy. */
export const BulkTargets = z
  .object({
    agents: z.array(z.string().min(1)).min(1).max(10_000).optional(),
    policy_id: z.string().min(1).optional(),
  })
  .refine((t) => (t.agents === undefined) !== (t.policy_id === undefined), { message: "give either agents (a list of ids) or policy_id", path: ["agents"] });

export const ErrorBody = z.object({ statusCode: z.number().int(), error: z.string(), message: z.string().optional() });

// ---- Agents ----------------------------------------------------------------------------------------

export const AgentListQuery = Paging.extend({
  sortField: z.enum(SORT_FIELDS).default("enrolled_at"),
  sortOrder: z.enum(["asc", "desc"]).default("desc"),
  policy_id: z.string().optional(),
  status: z.enum(["online", "offline", "degraded", "error", "updating", "enrolling", "unenrolling", "unenrolled"]).optional(),
  tag: z.string().optional(),
  version: z.string().optional(),
  /** A hostname or agent id fragment; `field:value` KQL is reduced to its value. */
  kuery: z.string().max(256).optional(),
  showInactive: z.enum(["true", "false"]).default("false"),
  /** Kibana's cursor (9.1+): the `nextSearchAfter` of the previous page, which this page follows. */
  searchAfter: z
    .string()
    .max(2048)
    .transform((raw, ctx) => {
      const cursor = parseCursor(raw);
      if (!cursor) ctx.addIssue({ code: "custom", message: "must be the nextSearchAfter of the previous page" });
      return cursor ?? z.NEVER;
    })
    .optional(),
});

/** The last row of a page: its sort value (null sorts last) and its id, which breaks ties. */
export interface ListCursor {
  value: string | null;
  agentId: string;
}

function parseCursor(raw: string): ListCursor | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return null;
  }
  if (!Array.isArray(parsed) || parsed.length !== 2) return null;
  const [value, agentId] = parsed as unknown[];
  return (typeof value === "string" || value === null) && typeof agentId === "string" ? { value, agentId } : null;
}

export const encodeCursor = (cursor: ListCursor): string => JSON.stringify([cursor.value, cursor.agentId]);

export const AgentListItem = z.object({
  id: z.string(),
  policy_id: z.string(),
  policy_revision: z.number().int(),
  status: z.string(),
  active: z.boolean(),
  enrolled_at: z.string(),
  last_checkin: z.string().nullable(),
  last_checkin_status: z.string().nullable(),
  last_checkin_message: z.string().nullable(),
  hostname: z.string().nullable(),
  agent: z.object({ id: z.string(), version: z.string().nullable() }),
  tags: z.array(z.string()),
  unhealthy_reason: z.array(z.string()).nullable(),
  /** `PERMANENT` or `TEMPORARY` (Elastic Agents), `OPAMP` (OpenTelemetry collectors, docs/opamp.md). */
  type: z.string(),
});

export const AgentList = z.object({
  items: z.array(AgentListItem),
  total: z.number().int(),
  page: z.number().int(),
  perPage: z.number().int(),
  /** On a full page: pass it as `searchAfter` for the next one (no depth limit, unlike `page`). */
  nextSearchAfter: z.string().optional(),
});

export const AgentDetail = z.object({
  item: AgentListItem.extend({
    latest_policy_revision: z.number().int(),
    local_metadata: z.record(z.string(), z.json()).nullable(),
    components: z.array(z.record(z.string(), z.json())).nullable(),
    upgrade_details: z.record(z.string(), z.json()).nullable(),
    upgrade_started_at: z.string().nullable(),
    upgraded_at: z.string().nullable(),
    unenrolled_at: z.string().nullable(),
    audit_unenrolled_reason: z.string().nullable(),
    outputs: z.record(z.string(), z.object({ api_key_id: z.string(), permissions_hash: z.string(), type: z.string() })),
    pending_actions: z.array(
      z.object({ id: z.string(), type: z.string(), created_at: z.string(), expiration: z.string(), start_time: z.string().optional() }),
    ),
    action_results: z.number().int(),
    /** The latest 10 results, newest first; `error` null for a success. */
    latest_action_results: z.array(z.object({ action_id: z.string(), type: z.string(), created_at: z.string(), error: z.string().nullable() })),
    /** Changes of the status the agent reports (and of its enrollment), newest first, the latest 20. */
    status_history: z.array(z.object({ at: z.string(), status: z.string(), message: z.string().nullable() })),
    /** A collector's OpAMP state; null for Elastic Agents. */
    opamp: z
      .object({
        capabilities: z.number().int(),
        credential_used: z.boolean(),
        health: z.object({ healthy: z.boolean(), status: z.string(), last_error: z.string() }).optional(),
        remote_config_status: z
          .object({ hash: z.string(), status: z.enum(["UNSET", "APPLIED", "APPLYING", "FAILED"]), error_message: z.string().optional() })
          .optional(),
        effective_config: z.record(z.string(), z.object({ content_type: z.string(), body: z.string() })).optional(),
        restart_requested_at: z.string().optional(),
      })
      .nullable(),
  }),
});

/** `POST /api/fleet/agents/{agentId}/restart` answer (OpenTelemetry collectors, docs/opamp.md). */
export const RestartRequested = z.object({ item: z.object({ id: z.string(), type: z.literal("RESTART"), requested_at: z.string() }) });
export type RestartRequested = z.infer<typeof RestartRequested>;

export const StatusCounts = z.object({
  online: z.number().int(),
  offline: z.number().int(),
  degraded: z.number().int(),
  error: z.number().int(),
  updating: z.number().int(),
  enrolling: z.number().int(),
  unenrolling: z.number().int(),
  unenrolled: z.number().int(),
  total: z.number().int(),
  active: z.number().int(),
});

export const FleetOverview = z.object({
  results: StatusCounts,
  by_policy: z.array(StatusCounts.extend({ policy_id: z.string(), name: z.string(), revision: z.number().int() })),
});

/** The console's overview (GET /api/fleet/console/overview, and each push of its live channel). */
export const ConsoleOverview = z.object({
  server: z.object({ version: z.string(), build_hash: z.string(), build_time: z.string() }),
  results: StatusCounts,
  by_policy: z.array(
    StatusCounts.extend({
      policy_id: z.string(),
      name: z.string(),
      revision: z.number().int(),
      checkins_last_minute: z.number().int(),
      checkins_this_minute: z.number().int(),
      rollout: z.object({ status: z.string(), stage: z.number().int(), target: z.number().int() }).nullable(),
    }),
  ),
  by_version: z.array(z.object({ version: z.string(), agents: z.number().int() })),
  checkins_last_minute: z.number().int().describe("check-ins (HTTP polls, socket check-ins, OpAMP messages) in the last whole UTC minute"),
  checkins_this_minute: z.number().int().describe("check-ins so far in the current minute"),
  checkins_per_minute: z.array(z.object({ minute: z.string(), count: z.number().int() })).describe("the last 30 minutes, oldest first, the current one last"),
  mirror: z.object({
    mode: z.enum(["standalone", "elasticsearch"]),
    failing_objects: z.number().int(),
    pending: z.number().int(),
    oldest_pending_at: z.string().nullable(),
    lag_seconds: z.number().int(),
    last_error: z.string().nullable(),
  }),
  policies_omitted: z.number().int(),
});

export const AgentUpdate = z.object({ tags: z.array(z.string().max(1024)).max(100) });
export const Reassign = z.object({ policy_id: z.string().min(1) });
export const Unenroll = z.object({ revoke: z.boolean().default(false) });
export const UpgradeRequest = z.object({
  version: z.string().regex(/^\d+\.\d+\.\d+(-SNAPSHOT)?$/, { message: "a version like 9.6.1" }),
  source_uri: z.string().url().optional(),
  start_time: isoDate.optional(),
  expiration: isoDate.optional(),
});
export const DiagnosticsRequest = z.object({ additional_metrics: z.array(z.enum(["CPU", "CONN"])).optional() });

export const BulkUnenroll = z.intersection(BulkTargets, Unenroll);
export const BulkReassign = z.object({ agents: z.array(z.string().min(1)).min(1).max(10_000), policy_id: z.string().min(1) });
export const BulkTags = z.intersection(
  BulkTargets,
  z.object({ tagsToAdd: z.array(z.string().max(1024)).max(100).default([]), tagsToRemove: z.array(z.string().max(1024)).max(100).default([]) }),
);
export const BulkUpgrade = z.intersection(BulkTargets, UpgradeRequest.extend({ rollout_duration_seconds: z.number().int().min(0).max(30 * 86_400).optional() }));
export const BulkDiagnostics = z.intersection(BulkTargets, DiagnosticsRequest);
export const BulkAction = z.intersection(BulkTargets, ActionCreate);

export const BulkAccepted = z.object({ actionId: z.string() });

// ---- Actions ---------------------------------------------------------------------------------------

export const ActionItem = z.object({
  item: z.object({
    id: z.string(),
    type: z.string(),
    data: z.json(),
    agents: z.array(z.string()),
    created_at: z.string(),
    expiration: z.string(),
    start_time: z.string().optional(),
  }),
});

export const ActionStatus = z.object({
  actionId: z.string(),
  type: z.string(),
  status: z.enum(["IN_PROGRESS", "COMPLETE", "EXPIRED", "CANCELLED", "FAILED"]),
  nbAgentsActioned: z.number().int(),
  nbAgentsActionCreated: z.number().int(),
  nbAgentsAck: z.number().int(),
  nbAgentsFailed: z.number().int(),
  creationTime: z.string(),
  expiration: z.string().optional(),
  completionTime: z.string().optional(),
  cancellationTime: z.string().optional(),
  createdBy: z.string(),
  latestErrors: z.array(z.object({ agentId: z.string(), error: z.string(), timestamp: z.string() })),
});
export const ActionStatusList = z.object({ items: z.array(ActionStatus), total: z.number().int(), page: z.number().int(), perPage: z.number().int() });

// ---- Policies ---------------------------------------------------------------------------------------

export const PolicyItem = z.object({
  id: z.string(),
  name: z.string(),
  namespace: z.string(),
  description: z.string().optional(),
  revision: z.number().int(),
  updated_at: z.string(),
  agents: z.number().int().optional(),
});
export const PolicyPutResponse = z.object({ item: PolicyItem, changed: z.boolean() });
export const PolicyList = z.object({ items: z.array(PolicyItem), total: z.number().int(), page: z.number().int(), perPage: z.number().int() });
export const PolicyRevisions = z.object({
  items: z.array(z.object({ revision: z.number().int(), created_at: z.string(), created_by: z.string(), size_bytes: z.number().int(), changed_paths: z.number().int() })),
});
/** What one revision changed against the one before it (revision 1: against an empty policy). */
export const RevisionDiff = z.object({
  item: z.object({
    revision: z.number().int(),
    previous: z.number().int().nullable(),
    created_at: z.string(),
    created_by: z.string(),
    changes: z.array(z.object({ path: z.string(), before: z.json().optional(), after: z.json().optional() })),
    omitted: z.number().int(),
  }),
});
export const PolicyRollout = z.object({
  item: z.object({
    policy_id: z.string(),
    latest_revision: z.number().int(),
    agents_total: z.number().int(),
    agents_on_latest: z.number().int(),
    revisions: z.array(z.object({ revision: z.number().int(), agents: z.number().int() })),
    failing: z.array(z.object({ id: z.string(), revision: z.number().int(), status: z.string().nullable(), message: z.string().nullable(), unhealthy_reason: z.array(z.string()).nullable() })),
  }),
});
export const FullPolicy = z.object({ item: z.record(z.string(), z.json()) });

// ---- Keys --------------------------------------------------------------------------------------------

export const EnrollmentKeyItem = z.object({
  id: z.string(),
  api_key_id: z.string(),
  api_key: z.string().optional(),
  name: z.string(),
  policy_id: z.string(),
  active: z.boolean(),
  created_at: z.string(),
  expire_at: z.string().optional(),
});
export const EnrollmentKeyResponse = z.object({ item: EnrollmentKeyItem, action: z.enum(["created", "deleted"]).optional() });
export const EnrollmentKeyList = z.object({ items: z.array(EnrollmentKeyItem), total: z.number().int(), page: z.number().int(), perPage: z.number().int() });

export const AdminKeyCreate = z.object({ name: z.string().min(1).max(256) });
export const AdminKeyItem = z.object({ id: z.string(), name: z.string(), created_at: z.string(), revoked_at: z.string().optional(), api_key: z.string().optional() });
export const AdminKeyResponse = z.object({ item: AdminKeyItem });
export const AdminKeyList = z.object({ items: z.array(AdminKeyItem) });

// ---- Staged rollouts ---------------------------------------------------------------------------------

export const RolloutStart = z.object({
  name: z.string().min(1).max(256).optional(),
  namespace: z.string().optional(),
  description: z.string().max(4096).optional(),
  policy: z.record(z.string(), z.json()),
  /** Cumulative percentages, ascending, ending at 100: e.g. [1, 10, 100]. */
  stages: z
    .array(z.number().gt(0).max(100))
    .min(1)
    .max(10)
    .refine((stages) => stages.every((p, i) => i === 0 || p > stages[i - 1]!), { message: "must be ascending" })
    .refine((stages) => stages[stages.length - 1] === 100, { message: "the last stage must be 100" }),
  min_acked_percent: z.number().min(0).max(100).default(90),
  max_failed_percent: z.number().min(0).max(100).default(5),
  window_seconds: z.number().int().min(10).max(7 * 86_400).default(3600),
});

export const RolloutView = z.object({
  item: z.object({
    target: z.number().int(),
    previous: z.number().int(),
    stages: z.array(z.number()),
    stage: z.number().int(),
    status: z.enum(["running", "paused", "held", "completed", "aborted", "superseded"]),
    criteria: z.object({ min_acked_percent: z.number(), max_failed_percent: z.number(), window_seconds: z.number() }),
    created_at: z.string(),
    created_by: z.string(),
    stage_started_at: z.string(),
    reason: z.string().optional(),
    current: z.object({ percent: z.number(), members: z.number().int(), acked: z.number().int(), failed: z.number().int() }).optional(),
    history: z.array(
      z.object({
        stage: z.number().int(),
        percent: z.number(),
        started_at: z.string(),
        ended_at: z.string(),
        members: z.number().int(),
        acked: z.number().int(),
        failed: z.number().int(),
        outcome: z.string(),
      }),
    ),
    samples: z
      .array(z.object({ stage: z.number().int(), at: z.string(), members: z.number().int(), acked: z.number().int(), failed: z.number().int() }))
      .describe("progress over time, oldest first: the current stage's counts at the start, at each evaluation that saw them change, at pause, resume and abort, and as each stage opens (at most 500)"),
  }),
});
