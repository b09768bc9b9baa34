/**
 * Domain errors. Code below the routes (auth, Durable Objects, protocol parsing) signals failure with a
 * stable `ErrorCode`; only `http/error-table.ts` knows which HTTP status and body each code becomes.
 * Durable Objects return `{ error: code }` instead of throwing, because RPC does not carry error classes.
 */
export type ErrorCode =
  // Agent-facing, names and messages as fleet-server sends them.
  | "NoAuthHeader"
  | "MalformedHeader"
  | "MalformedToken"
  | "InvalidToken"
  | "Unauthorized"
  | "AgentIdentity"
  | "AgentInactive"
  | "AgentNotReplaceable"
  | "InvalidUserAgent"
  | "UnsupportedVersion"
  | "InvalidAPIVersionFormat"
  | "UnsupportedAPIVersion"
  | "AuditReasonConflict"
  | "BadRequest"
  | "RouteNotFound"
  | "MethodNotAllowed"
  | "UpgradeRequired"
  | "SocketSuperseded"
  | "RateLimit"
  | "MaxLimit"
  // Artifacts, uploads, file delivery and the PGP key (fleet-protocol.md §2.6–2.9).
  | "AgentNotFound"
  | "UnauthorizedArtifact"
  | "AgentPolicyIDMissing"
  | "ArtifactNotFound"
  | "TransitHashRequired"
  | "FileInfoBodyRequired"
  | "AgentIDMissing"
  | "TLSRequired"
  | "InvalidUploadID"
  | "FileSizeTooLarge"
  | "FileFeatureDisabled"
  | "MissingChunks"
  | "HashMismatch"
  | "UploadExpired"
  | "UploadStopped"
  | "InvalidChunkNum"
  | "FailValidation"
  | "StatusNoUploads"
  | "PayloadRequired"
  | "FileSizeRequired"
  | "InvalidFileSize"
  | "FieldRequired"
  | "NoFile"
  | "RangeNotSatisfiable"
  | "MultiRangeNotSupported"
  | "InvalidFileID"
  | "ClientFileForbidden"
  | "PayloadSizeTooLarge"
  | "PGPKeyUnavailable"
  | "ShardsChanging"
  // Admin-facing; their names are the agent routes' vocabulary (BadRequest, NotFound, ...).
  | "AdminUnauthorized"
  | "AdminDisabled"
  | "AdminBadRequest"
  | "NotFound"
  | "Conflict"
  | "Internal";

/** A failure the HTTP layer turns into `{"statusCode","error","message"}`. */
export class FleetError extends Error {
  constructor(
    readonly code: ErrorCode,
    /** Overrides the table's fixed message (used where upstream puts the cause into the message). */
    readonly detail?: string,
    /** For 429s: when capacity returns (becomes a jittered `Retry-After`). */
    readonly retryAfterMs?: number,
  ) {
    super(detail ?? code);
    this.name = "FleetError";
  }
}

/** What a Durable Object RPC method returns instead of throwing an expected failure. */
export interface Failure {
  error: ErrorCode;
  detail?: string;
  retryAfterMs?: number;
}

export function isFailure(value: unknown): value is Failure {
  return typeof value === "object" && value !== null && "error" in value && typeof (value as Failure).error === "string";
}

/** Throws the failure as a FleetError, or returns the success value narrowed. */
export function orThrow<T>(result: T): Exclude<T, Failure> {
  if (isFailure(result)) throw new FleetError(result.error, result.detail, result.retryAfterMs);
  return result as Exclude<T, Failure>;
}

export const badRequest = (message: string): FleetError => new FleetError("BadRequest", `Bad request: ${message}`);
