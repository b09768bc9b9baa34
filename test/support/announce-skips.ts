import { existsSync } from "node:fs";
import { chromiumMissing } from "./chromium";
import { FLEET_SCHEMA_PATH } from "./fleet-schema";
import { goUnavailable } from "./opamp-go";

/**
 * Vitest global setup: says, once and on the run's own output, which tests will skip and why.
 * Reporters show a skipped test's name at most; the reason is printed here, where no `silent` option
 * swallows it. Under CI the same conditions fail the run instead (see searchServer, fleetSchemaCheck, test/e2e/console.test.ts).
 */
export default function announceSkips(): void {
  if (!process.env.ES_URL) {
    console.log('SKIPPED: the Elasticsearch tests (test/elasticsearch/): ES_URL is not set. Start the test search server first: set -a; eval "$(bash scripts/test-search-server.sh start)"; set +a');
  }
  const noGo = goUnavailable();
  if (noGo && process.env.CI !== "true") console.log(`SKIPPED: the opamp-go tests (test/e2e/opamp.test.ts): ${noGo}`);
  if (!existsSync(FLEET_SCHEMA_PATH)) {
    console.log(`SKIPPED: the schema.json checks of mirrored documents: ${FLEET_SCHEMA_PATH} is absent (CI has ../shared beside the project)`);
  }
  const noBrowser = chromiumMissing();
  if (noBrowser && !process.env.CI) console.log(`SKIPPED: the console's browser test (test/e2e/console.test.ts): ${noBrowser}`);
}
