import { createApp } from "./app";
import type { Env } from "./config";
import { ingestWatcher } from "./durable-stubs";

export { AgentStore } from "../durable/agent-store";
export { BulkJob } from "../durable/bulk-job";
export { ConsoleFeed } from "../durable/console-feed";
export { Directory } from "../durable/directory";
export { HubShard } from "../durable/hub-shard";
export { IngestWatcher } from "../durable/ingest-watcher";
export { MirrorMonitor } from "../durable/mirror-monitor";
export { PolicyHub } from "../durable/policy-hub";
export { RosterShard } from "../durable/roster-shard";
export { Uploads } from "../durable/uploads";

const app = createApp();
let ingestStarted = false;

export default {
  fetch(request, env, ctx) {
    // The first request an isolate serves makes sure the Kibana ingest loop runs (a no-op standalone).
    if (!ingestStarted && env.ES_URL) {
      ingestStarted = true;
      ctx.waitUntil(ingestWatcher(env).ensureRunning().catch(() => (ingestStarted = false)));
    }
    return app.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Env>;
