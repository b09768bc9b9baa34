#!/usr/bin/env bash
# The fuzzer of docs/hardening.md: starts `npm start` on a free port with throwaway state, checks
# the served OpenAPI document with a standard validator (openapi-spec-validator, zero errors), then
# runs schemathesis against it with a fixed seed and a bounded number of examples per operation:
# the agent routes with a real agent's access key (enrolled first), then the admin routes with the
# admin token. Fails on any 5xx, any answer that does not match the document, and any request
# slower than the documented bound. Tools go into a local virtual environment (.cache/venv).
#   FUZZ_EXAMPLES  examples per operation (default 30)   FUZZ_SEED  Hypothesis seed (default 16)
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=3.39.16
VALIDATOR_VERSION=0.9.0
# schemathesis 3.39 breaks on newer Hypothesis ("'many' object has no attribute 'more'").
HYPOTHESIS_VERSION=6.131.0
EXAMPLES="${FUZZ_EXAMPLES:-30}"
SEED="${FUZZ_SEED:-16}"
# Every route answers within this bound (docs/hardening.md), the long-poll check-in included: the
# fuzzed server holds a poll for at most CHECKIN_LONG_POLL.
MAX_RESPONSE_MS=5000
ADMIN_TOKEN=fuzz-admin-token
USER_AGENT="Elastic Agent v9.6.0"
OUT=test-output/fuzz
VENV=.cache/venv

# The installed version is read into a variable: `pip show | grep -q` under pipefail fails when grep
# stops reading early, which rebuilt the venv on every run.
installed="$("$VENV/bin/pip" show schemathesis 2>/dev/null | sed -n 's/^Version: //p' || true)"
if [ ! -x "$VENV/bin/st" ] || [ "$installed" != "$SCHEMATHESIS_VERSION" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" "openapi-spec-validator==$VALIDATOR_VERSION" "hypothesis==$HYPOTHESIS_VERSION"
fi

mkdir -p "$OUT"
state="$(mktemp -d)"
port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
base="http://127.0.0.1:$port"
setsid node scripts/dev.mjs --port "$port" --ip 127.0.0.1 --persist-to "$state" \
  --var "FLEET_ADMIN_TOKEN:$ADMIN_TOKEN" --var CHECKIN_LONG_POLL:2s --var CHECKIN_JITTER:0s --var CHECKIN_MIN_POLL:1s \
  >"$OUT/server.log" 2>&1 &
server=$!
# wrangler runs workerd as a child: the whole process group ends with the script.
trap 'kill -- -"$server" 2>/dev/null || true; rm -rf "$state"' EXIT
for _ in $(seq 1 240); do
  curl -fsS "$base/api/status" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$OUT/server.log"; echo "fuzz: the server did not start"; exit 1; }
  sleep 0.5
done
curl -fsS "$base/api/status" >/dev/null

curl -fsS "$base/api/openapi.json" -o "$OUT/openapi.json"
echo "fuzz: validating the served OpenAPI document"
"$VENV/bin/openapi-spec-validator" "$OUT/openapi.json"

# Real agents: a policy, an enrollment key, enrollments. Each agent allows itself 30 requests per
# 10 s (docs/hardening.md), so the agent routes are spread over several, or most would meet 429.
agents="$(ADMIN_TOKEN="$ADMIN_TOKEN" BASE="$base" USER_AGENT="$USER_AGENT" node --input-type=module -e '
const { BASE, ADMIN_TOKEN, USER_AGENT } = process.env;
const call = async (method, path, body, auth = `Bearer ${ADMIN_TOKEN}`) => {
  const res = await fetch(BASE + path, { method, headers: { Authorization: auth, "Content-Type": "application/json", "User-Agent": USER_AGENT }, body: JSON.stringify(body) });
  if (res.status !== 200) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
};
await call("PUT", "/api/fleet/agent_policies/fuzz-policy", { name: "fuzz", namespace: "default", policy: { outputs: { default: { type: "logstash", hosts: ["ls:5044"] } }, inputs: [] } });
const key = (await call("POST", "/api/fleet/enrollment_api_keys", { policy_id: "fuzz-policy", name: "fuzz" })).item.api_key;
const agents = [];
for (let i = 0; i < 24; i++) {
  const enrolled = (await call("POST", "/api/fleet/agents/enroll", { type: "PERMANENT", metadata: { local: {}, user_provided: {}, tags: [] } }, `ApiKey ${key}`)).item;
  agents.push(`${enrolled.id}:${enrolled.access_api_key}`);
}
console.log(agents.join(","));
')"
first="${agents%%,*}"
agent_id="${first%%:*}"

run() {
  # schemathesis reads SCHEMATHESIS_HOOKS and FUZZ_AGENTS from the environment (scripts/fuzz_hooks.py).
  local name="$1"
  shift
  echo "fuzz: $name routes ($EXAMPLES examples per operation, seed $SEED)"
  "$VENV/bin/st" run "$OUT/openapi.json" --base-url "$base" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    --max-response-time "$MAX_RESPONSE_MS" --request-timeout 30000 \
    --data-generation-method all --hypothesis-seed "$SEED" --hypothesis-max-examples "$EXAMPLES" \
    --hypothesis-database none --hypothesis-phases explicit,generate --hypothesis-suppress-health-check all \
    --experimental=openapi-3.1 --workers 1 --no-color --validate-schema true --junit-xml "$OUT/$name.xml" "$@" | tee "$OUT/$name.txt"
}

status=0
# Agent routes first: the admin run may unenroll or revoke the agent.
SCHEMATHESIS_HOOKS=fuzz_hooks PYTHONPATH=scripts FUZZ_AGENTS="$agents" \
  run agents --include-tag agents || status=1
# schemathesis 3.39 fails inside its own generator ("Runtime Error: 'minimum'") when it makes invalid
# bodies for these operations' schemas (rollout starts; action creation, seen once in CI at seed 16):
# they get valid ones only, in a pass of their own.
VALID_ONLY='/rollouts$|^/api/fleet/actions$'
run admin --include-tag admin -H "Authorization: Bearer $ADMIN_TOKEN" --set-path "agentId=$agent_id" --exclude-path-regex "$VALID_ONLY" || status=1
run valid-only --include-tag admin -H "Authorization: Bearer $ADMIN_TOKEN" --set-path "agentId=$agent_id" --include-path-regex "$VALID_ONLY" --data-generation-method positive || status=1
if grep -q '"level":"error"\|failed:' "$OUT/server.log"; then
  echo "fuzz: the server logged errors (see $OUT/server.log)"
  grep -m 20 '"level":"error"\|failed:' "$OUT/server.log" || true
fi
exit "$status"
