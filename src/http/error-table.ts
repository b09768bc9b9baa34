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
 * `internal/pkg/api/error.go` names and messages (see fleet-protocol.md §1.3). Admin rows use the
 * same vocabulary (`BadRequest`, `NotFound`, `Conflict`, `Unauthorized`): a client matches one set of
 * names whichever route it called.
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
  // Admission control: fleet-server's limiter names and messages (limit/error.go), plus Retry-After.
  RateLimit: { status: 429, name: "RateLimit", message: "exceeded the rate limit", log: "info" },
  MaxLimit: { status: 429, name: "MaxLimit", message: "exceeded the max limit", log: "info" },
  UpgradeRequired: { status: 426, name: "UpgradeRequired", message: "this route speaks WebSocket: send Upgrade: websocket", log: "debug" },
  SocketSuperseded: {
    status: 409,
    name: "Conflict",
    message: "this socket no longer speaks for the agent: a newer socket or an HTTP check-in replaced it",
    log: "info",
  },
  // Artifacts, uploads, file delivery, PGP key: fleet-server's error.go rows (fleet-protocol.md §1.3, §2.6–2.9).
  AgentNotFound: { status: 404, name: "AgentNotFound", message: "agent could not be found", log: "warn" },
  UnauthorizedArtifact: { status: 403, name: "Forbidden", message: "agent not authorized for artifact", log: "warn" },
  AgentPolicyIDMissing: { status: 403, name: "Forbidden", message: "agent has no policy ID", log: "warn" },
  ArtifactNotFound: { status: 404, name: "NotFound", message: "not found", log: "warn" },
  TransitHashRequired: { status: 400, name: "TransitHashRequired", message: "Transit hash required", log: "info" },
  FileInfoBodyRequired: { status: 400, name: "ErrFileInfoBodyRequired", message: "file info body is required", log: "info" },
  AgentIDMissing: { status: 400, name: "ErrAgentIDMissing", message: "required field agent_id is missing", log: "info" },
  TLSRequired: { status: 501, name: "ErrTLSRequired", message: "server must run with tls to use this endpoint", log: "info" },
  // Upstream's copy-paste name, kept; fleet-server defines the row but never returns the error
  // (an unknown upload id is ErrInvalidFileID), and neither do we.
  InvalidUploadID: { status: 400, name: "ErrAPIKeyNotFound", message: "active upload not found with this ID, it may be expired", log: "info" },
  FileSizeTooLarge: { status: 400, name: "ErrFileSizeTooLarge", message: "this file exceeds the maximum allowed file size", log: "info" },
  FileFeatureDisabled: { status: 403, name: "ErrFileFeatureDisable", message: "File Transfer is disabled in Fleet Server configuration", log: "warn" },
  MissingChunks: { status: 400, name: "ErrMissingChunks", message: "file data incomplete, not all chunks were uploaded", log: "info" },
  HashMismatch: { status: 400, name: "ErrHashMismatch", message: "hash does not match", log: "info" },
  UploadExpired: { status: 400, name: "ErrUploadExpired", message: "upload has expired", log: "info" },
  UploadStopped: { status: 400, name: "ErrUploadStopped", message: "upload has stopped", log: "info" },
  InvalidChunkNum: { status: 400, name: "ErrInvalidChunkNum", message: "invalid chunk number", log: "info" },
  FailValidation: { status: 400, name: "ErrFailValidation", message: "file contents failed validation", log: "info" },
  StatusNoUploads: { status: 400, name: "ErrStatusNoUploads", message: "file closed, not accepting uploads", log: "info" },
  // Defined upstream for a `null` begin payload, which in practice fails earlier as ErrAgentIDMissing.
  PayloadRequired: { status: 400, name: "ErrPayloadRequired", message: "upload start payload required", log: "info" },
  FileSizeRequired: { status: 400, name: "ErrFileSizeRequired", message: "file.size is required", log: "info" },
  InvalidFileSize: { status: 400, name: "ErrInvalidFileSize", message: "", log: "info" },
  FieldRequired: { status: 400, name: "ErrFieldRequired", message: "", log: "info" },
  NoFile: { status: 404, name: "ErrNoFile", message: "file not found", log: "info" },
  RangeNotSatisfiable: { status: 416, name: "ErrRangeNotSatisfiable", message: "range not satisfiable", log: "info" },
  MultiRangeNotSupported: { status: 416, name: "ErrRangeNotSatisfiable", message: "Multipart ranges not satisfiable", log: "info" },
  InvalidFileID: { status: 400, name: "ErrInvalidFileID", message: "ErrInvalidID", log: "info" },
  ClientFileForbidden: { status: 403, name: "ErrClientFileForbidden", message: "client forbidden", log: "info" },
  PayloadSizeTooLarge: {
    status: 413,
    name: "ErrPayloadSizeTooLarge",
    message: "the request body exceeds the maximum allowed size",
    log: "info",
  },
  PGPKeyUnavailable: { status: 503, name: "ServiceUnavailable", message: "", log: "error" },
  /** A socket upgrade met a policy whose fan-out shard count is changing (docs/scale.md §4): reconnect. */
  ShardsChanging: { status: 503, name: "ServiceUnavailable", message: "the policy's fan-out shards are changing; reconnect", log: "info" },
  AdminUnauthorized: { status: 401, name: "Unauthorized", message: "missing or invalid admin credentials", log: "info" },
  AdminDisabled: {
    status: 401,
    name: "Unauthorized",
    message: "the admin API is disabled: set the FLEET_ADMIN_TOKEN secret",
    log: "warn",
  },
  AdminBadRequest: { status: 400, name: "BadRequest", message: "", log: "debug" },
  NotFound: { status: 404, name: "NotFound", message: "", log: "debug" },
  Conflict: { status: 409, name: "Conflict", message: "", log: "info" },
  Internal: { status: 500, name: "InternalServerError", message: "internal error", log: "error" },
};
