import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

const WORKER_BINDINGS = {
  FLEET_ADMIN_TOKEN: "test-admin-token",
  CHECKIN_LONG_POLL: "1500ms",
  CHECKIN_JITTER: "0s",
  CHECKIN_MIN_POLL: "1s",
  // As a deployment sets it; policies that name their own `fleet.hosts` keep them.
  FLEET_SERVER_HOSTS: "https://fleet.example.internal:8220,https://fleet-backup.example.internal:8220",
  // The PGP route's configured key; never fetch Elastic's key from a test.
  PGP_PUBLIC_KEY: "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nconfigured-test-key\n-----END PGP PUBLIC KEY BLOCK-----\n",
  PGP_UPSTREAM_URL: "",
  // Views learn heartbeats at each flush, as tests read them; the one-minute hold has its own test.
  CHECKIN_VIEW_LAG: "0s",
};

/** Fan-out at a scale a few agents show: per-policy shard counts of 8 agents a shard (at most 4), 12 agents/s. */
const FANOUT_BINDINGS = { ...WORKER_BINDINGS, POLICY_HUB_SHARDS: "auto", POLICY_HUB_SHARD_AGENTS: "8", POLICY_HUB_SHARDS_MAX: "4", ROLLOUT_RATE: "12" };

/** Tests that need a policy of several roster shards: only in the sharded-roster project. */
const ROSTER_SHARDED_ONLY = ["test/roster-shards.test.ts"];

export default defineConfig({
  test: {
    // Structured logs of passing tests are noise; a failing test still shows its output.
    silent: "passed-only",
    // Why anything skips is printed once, outside any test (the logs above are swallowed).
    globalSetup: ["./test/support/announce-skips.ts"],
    projects: [
      {
        // The real Worker and Durable Objects from wrangler.toml, inside workerd. Long-poll
        // durations are shortened so parked check-ins resolve within a test's lifetime.
        // Four fan-out shards for every policy (a fixed POLICY_HUB_SHARDS), as most tests assume.
        plugins: [cloudflareTest({ wrangler: { configPath: "./wrangler.toml" }, miniflare: { bindings: { ...WORKER_BINDINGS, POLICY_HUB_SHARDS: "4" } } })],
        test: {
          name: "workers",
          include: ["test/**/*.test.ts"],
          exclude: ["test/e2e/**", "test/elasticsearch/**", "test/fanout/**", "test/fanout-burst/**", ...ROSTER_SHARDED_ONLY],
          testTimeout: 20_000,
        },
      },
      {
        // The same Worker with every new policy's roster in 4 roster shards (10,000 declared agents,
        // 2,500 per shard): the roster's own tests, and the tests that check listings, counts and
        // rollouts against a model, run on a sharded roster (docs/scale.md §2).
        plugins: [
          cloudflareTest({ wrangler: { configPath: "./wrangler.toml" }, miniflare: { bindings: { ...WORKER_BINDINGS, POLICY_HUB_SHARDS: "4", FLEET_MAX_AGENTS: "10000", AGENTS_PER_ROSTER_SHARD: "2500" } } }),
        ],
        test: {
          name: "workers-sharded-roster",
          include: [...ROSTER_SHARDED_ONLY, "test/model.test.ts", "test/rollout.test.ts", "test/roster-versions.test.ts"],
          testTimeout: 20_000,
        },
      },
      {
        // The same Worker at the fan-out scale, so pacing and shard changes show with a few agents, and
        // with no burst, so a delivery's first batch is one of the rate's too.
        plugins: [cloudflareTest({ wrangler: { configPath: "./wrangler.toml" }, miniflare: { bindings: { ...FANOUT_BINDINGS, ROLLOUT_BURST: "0" } } })],
        test: { name: "fanout", include: ["test/fanout/**/*.test.ts"], testTimeout: 30_000 },
      },
      {
        // The `fanout` scale with a burst of 5 agents (3 a batch otherwise): a delivery to a quiet shard starts with it.
        plugins: [cloudflareTest({ wrangler: { configPath: "./wrangler.toml" }, miniflare: { bindings: { ...FANOUT_BINDINGS, ROLLOUT_BURST: "5" } } })],
        test: { name: "fanout-burst", include: ["test/fanout-burst/**/*.test.ts"], testTimeout: 30_000 },
      },
      {
        // `npm start` as an operator runs it, spoken to over real sockets from Node.
        test: { name: "e2e", include: ["test/e2e/**/*.test.ts"], environment: "node", testTimeout: 60_000, hookTimeout: 90_000 },
      },
      {
        // `npm start` wired to the real test search server (scripts/test-search-server.sh, started by .ci/run).
        test: {
          name: "elasticsearch",
          include: ["test/elasticsearch/**/*.test.ts"],
          environment: "node",
          testTimeout: 240_000,
          hookTimeout: 120_000,
          // The outage test stops the shared search server: no other file may run meanwhile.
          fileParallelism: false,
        },
      },
    ],
  },
});
