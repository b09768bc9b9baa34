import { Hono } from "hono";
import type { AppEnv } from "./config";
import { FleetError } from "./errors";
import { handleError } from "./http/error-response";
import { adminAuth } from "./middleware/admin-auth";
import { apiVersion } from "./middleware/api-version";
import { requestId } from "./middleware/request-id";
import { acks } from "./routes/acks";
import { agentActions } from "./routes/admin/agent-actions";
import { adminFiles } from "./routes/admin/files";
import { enrollmentKeys } from "./routes/admin/enrollment-keys";
import { policies } from "./routes/admin/policies";
import { artifacts } from "./routes/artifacts";
import { auditUnenroll } from "./routes/audit-unenroll";
import { checkin } from "./routes/checkin";
import { enroll } from "./routes/enroll";
import { fileDelivery } from "./routes/file-delivery";
import { pgpKey } from "./routes/pgp-key";
import { status } from "./routes/status";
import { uploads } from "./routes/uploads";

/** Paths served to Elastic Agents: fleet-server's wire contract, API-version header included. */
const AGENT_PATHS = ["/api/status", "/api/fleet/agents/enroll", "/api/fleet/agents/:id/checkin", "/api/fleet/agents/:id/acks", "/api/fleet/agents/:id/audit/unenroll"];
AGENT_PATHS.push(
  "/api/fleet/artifacts/:id/:sha2",
  "/api/fleet/uploads",
  "/api/fleet/uploads/:id",
  "/api/fleet/uploads/:id/:chunkNum",
  "/api/fleet/file/:id",
  "/api/agents/upgrades/:version/pgp-public-key",
);

/** Paths for admins with curl, behind the admin token. */
const ADMIN_PATHS = [
  "/api/fleet/agent_policies/*",
  "/api/fleet/enrollment_api_keys",
  "/api/fleet/enrollment_api_keys/*",
  "/api/fleet/agents/:agentId/actions",
  "/api/fleet/agents/:agentId/unenroll",
];
ADMIN_PATHS.push(
  "/api/fleet/artifacts",
  "/api/fleet/artifacts/:id",
  "/api/fleet/files/:fileId",
  "/api/fleet/agents/:agentId/uploads",
  "/api/fleet/agents/files/:fileId/:fileName",
  "/api/fleet/pgp_public_key",
);

export function createApp(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use("*", requestId());
  for (const path of AGENT_PATHS) app.use(path, apiVersion());
  for (const path of ADMIN_PATHS) app.use(path, adminAuth());

  app.route("/", status);
  app.route("/", enroll);
  app.route("/", checkin);
  app.route("/", acks);
  app.route("/", auditUnenroll);
  app.route("/", policies);
  app.route("/", enrollmentKeys);
  app.route("/", agentActions);
  app.route("/", artifacts);
  app.route("/", uploads);
  app.route("/", fileDelivery);
  app.route("/", pgpKey);
  app.route("/", adminFiles);

  app.notFound(() => {
    throw new FleetError("RouteNotFound");
  });
  app.onError(handleError);
  return app;
}
