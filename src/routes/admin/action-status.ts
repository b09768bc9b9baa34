import { Hono } from "hono";
import { newAction, startJob } from "../../admin/jobs";
import type { AppEnv } from "../../config";
import { bulkJob, directory } from "../../durable-stubs";
import { FleetError } from "../../errors";
import { Paging } from "../../protocol/admin";
import { parseBody } from "../../protocol/parse";

/** Progress of actions and bulk operations (Kibana's action status), and cancelling them. */
export const actionStatus = new Hono<AppEnv>()
  .get("/api/fleet/agents/action_status", async (c) => {
    const { page, perPage } = parseBody(Paging, c.req.query(), "admin");
    const jobs = await directory(c.env).listJobs(perPage, (page - 1) * perPage);
    const items = await Promise.all(
      jobs.items.map(async (job) => {
        const status = await bulkJob(c.env, job.id).status();
        return status ? { ...status, createdBy: job.created_by } : null;
      }),
    );
    return c.json({ items: items.filter((item) => item !== null), total: jobs.total, page, perPage });
  })
  .post("/api/fleet/agents/actions/:actionId/cancel", async (c) => {
    const actionId = c.req.param("actionId");
    const job = bulkJob(c.env, actionId);
    const status = await job.status();
    if (!status) throw new FleetError("NotFound", `action ${actionId} not found`);
    if (status.status === "CANCELLED") throw new FleetError("Conflict", `action ${actionId} is already cancelled`);
    const agents = await job.unanswered();
    const cancelId = crypto.randomUUID();
    const cancel = newAction(c, { type: "CANCEL", data: { target_id: actionId } }, cancelId);
    // Agents that already answered need no CANCEL; with none left the cancellation is only recorded.
    if (agents.length > 0) await startJob(c, { kind: "action", action: cancel }, { agents }, cancelId);
    await job.markCancelled(cancelId);
    return c.json({ item: { id: cancelId, type: "CANCEL", data: { target_id: actionId }, agents, created_at: cancel.created_at, expiration: cancel.expiration } });
  });
