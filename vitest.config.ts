import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

// Every test runs inside workerd with the real Worker and Durable Objects from wrangler.toml.
// Long-poll durations are shortened so parked check-ins resolve within a test's lifetime.
export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: {
          FLEET_ADMIN_TOKEN: "test-admin-token",
          CHECKIN_LONG_POLL: "1500ms",
          CHECKIN_JITTER: "0s",
          CHECKIN_MIN_POLL: "1s",
        },
      },
    }),
  ],
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 20_000,
    // Structured logs of passing tests are noise; a failing test still shows its output.
    silent: "passed-only",
  },
});
