import type { ErrorCode } from "../errors";

export interface ErrorRow {
  status: number;
  /** The stable `error` name clients match on. */
  name: string;
  /** Fixed message; a FleetError's detail replaces it where the row leaves it empty. */
  message: string;
  log: "debug" | "info" | "warn" | "error";
}

/**
 * The one mapping from domain error to HTTP answer. Agent-facing rows copy fleet-server's
 * `internal/pkg/api/error.go` names and messages (see fleet-protocol.md §1.3); admin rows follow
 * Kibana's Fleet API (`"error":"Not Found"` etc.).
 */
export const ERROR_TABLE: Record<ErrorCode, ErrorRow> = {
  NoAuthHeader: { status: 401, name: "ErrNoAuthHeader", message: "no authorization header", log: "debug" },
  MalformedHeader: { status: 400, name: "ErrMalformedHeader", message: "malformed authorization header", log: "debug" },
  MalformedToken: { status: 400, name: "ErrMalformedToken", message: "malformed token", log: "debug" },
  InvalidToken: { status: 401, name: "ErrInvalidToken", message: "token not valid utf8", log: "debug" },
  Unauthorized: { status: 401, name: "ErrUnauthorized", message: "unauthorized", log: "info" },
  AgentIdentity: { status: 403, name: "ErrAgentIdentity", message: "Agent header contains wrong identifier", log: "info" },
  AgentInactive: { status: 401, name: "ErrAgentInactive", message: "Agent inactive", log: "info" },
  AgentNotReplaceable: { status: 403, name: "AgentNotReplaceable", message: "existing agent cannot be replaced", log: "info" },
  InvalidUserAgent: { status: 400, name: "InvalidUserAgent", message: "user-agent is invalid", log: "debug" },
  UnsupportedVersion: { status: 400, name: "UnsupportedVersion", message: "version is not supported", log: "debug" },
  InvalidAPIVersionFormat: { status: 400, name: "ErrInvalidAPIVersionFormat", message: "", log: "debug" },
  UnsupportedAPIVersion: { status: 400, name: "ErrUnsupportedAPIVersion", message: "", log: "debug" },
  AuditReasonConflict: {
    status: 409,
    name: "ErrAuditReasonConflict",
    message: "agent document contains audit_unenroll_reason",
    log: "info",
  },
  BadRequest: { status: 400, name: "BadRequest", message: "Bad request", log: "debug" },
  RouteNotFound: { status: 404, name: "NotFound", message: "not found", log: "debug" },
  MethodNotAllowed: { status: 405, name: "MethodNotAllowed", message: "method not allowed", log: "debug" },
  AdminUnauthorized: { status: 401, name: "Unauthorized", message: "missing or invalid admin credentials", log: "info" },
  AdminDisabled: {
    status: 401,
    name: "Unauthorized",
    message: "the admin API is disabled: set the FLEET_ADMIN_TOKEN secret",
    log: "warn",
  },
  AdminBadRequest: { status: 400, name: "Bad Request", message: "", log: "debug" },
  NotFound: { status: 404, name: "Not Found", message: "", log: "debug" },
  Conflict: { status: 409, name: "Conflict", message: "", log: "info" },
  Internal: { status: 500, name: "Internal Server Error", message: "internal error", log: "error" },
};
