import { createApp } from "./app";
import type { Env } from "./config";

export { Agent } from "../durable/agent";
export { Directory } from "../durable/directory";
export { PolicyHub } from "../durable/policy-hub";

const app = createApp();

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;
