#!/usr/bin/env bash
# Starts/stops a real single-node Elasticsearch (security on, HTTP without TLS) for integration tests.
#
#   eval "$(bash scripts/test-search-server.sh start)"   # prints ES_URL, ES_USERNAME, ES_PASSWORD
#   bash scripts/test-search-server.sh stop
#   bash scripts/test-search-server.sh status            # exit 0 if running and healthy
#
# The server is Elastic's integration-test distribution, published on Maven Central (the only
# place this machine can download from). It holds the core server plus x-pack-core/security, so
# API keys and _authenticate are genuine, but it has no reindex (_update_by_query), painless,
# data streams, ILM or fleet (_fleet/global_checkpoints). A small plugin built below adds the few
# analysis components the security index needs, and `GET /`.
#
# Runs as root too: the server then runs as the system user `esrunner` (created if absent).
# Each start begins with an empty data folder unless SEARCH_KEEP_DATA=1.
#
# stdout carries only `NAME=value` lines for `eval`; everything else goes to stderr.
#
# Environment (all optional):
#   SEARCH_PORT          HTTP port (default 9200); transport uses SEARCH_PORT+100
#   SEARCH_PASSWORD      password for the `elastic` superuser (default: fleet-test-password)
#   SEARCH_HEAP          JVM heap, e.g. 512m (default 512m)
#   SEARCH_ES_VERSION    distribution version (default 8.19.21; 9.x needs Java 21+)
#   SEARCH_CACHE_DIR     download/install cache (default <repo>/.cache/search-server)
#   SEARCH_KEEP_DATA=1   keep the previous data directory instead of starting empty
#   SEARCH_START_TIMEOUT seconds to wait for health (default 180)
set -euo pipefail

# Keep the real stdout for the eval-able lines only; route everything else to stderr.
exec 3>&1 1>&2

log() { printf '[search-server] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ES_VERSION="${SEARCH_ES_VERSION:-8.19.21}"
PORT="${SEARCH_PORT:-9200}"
TRANSPORT_PORT="$((PORT + 100))"
HEAP="${SEARCH_HEAP:-512m}"
START_TIMEOUT="${SEARCH_START_TIMEOUT:-180}"
CACHE_DIR="${SEARCH_CACHE_DIR:-$REPO_ROOT/.cache/search-server}"
RUN_USER="esrunner"
MAVEN_PATH="org/elasticsearch/distribution/integ-test-zip/elasticsearch/$ES_VERSION/elasticsearch-$ES_VERSION.zip"
CENTRAL="https://repo1.maven.org/maven2"

ZIP="$CACHE_DIR/dist/elasticsearch-$ES_VERSION.zip"
# SERVER_DIR holds the unpacked server and the per-port run folders; see resolve_dirs.
SERVER_DIR="" RUN_DIR="" PID_FILE="" CRED_FILE=""

[[ "$PORT" =~ ^[0-9]+$ ]] || die "SEARCH_PORT must be a number, got '$PORT'"

is_root() { [[ "$(id -u)" == 0 ]]; }

# Runs a command as the unprivileged user when we are root (ES refuses to run as root).
as_runner() {
  if is_root; then
    runuser -u "$RUN_USER" -- env HOME="$RUN_DIR" "$@"
  else
    env HOME="$RUN_DIR" "$@"
  fi
}

pick_java_home() {
  if [[ -n "${ES_JAVA_HOME:-}" ]]; then echo "$ES_JAVA_HOME"; return; fi
  local major="${ES_VERSION%%.*}"
  # ES 9 needs Java 21+; the only such JDK here is Temurin 25. ES 8.19 is fine on the default 17.
  if (( major >= 9 )); then
    local j
    for j in /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/temurin-2[1-9]-jdk-amd64; do
      [[ -x "$j/bin/java" ]] && { echo "$j"; return; }
    done
    die "Elasticsearch $ES_VERSION needs Java 21+; set ES_JAVA_HOME"
  fi
  local java_bin
  java_bin="$(command -v java)" || die "java not found; set ES_JAVA_HOME"
  dirname "$(dirname "$(readlink -f "$java_bin")")"
}

# The unprivileged user must reach the server files through every parent folder. A clone under
# /root (mode 700) does not allow that, so the server then lives in /var/tmp instead; the
# download stays in CACHE_DIR either way.
resolve_dirs() {
  SERVER_DIR="$CACHE_DIR"
  if is_root && id -u "$RUN_USER" >/dev/null 2>&1 && [[ -d "$CACHE_DIR" ]] &&
     ! runuser -u "$RUN_USER" -- test -x "$CACHE_DIR"; then
    SERVER_DIR="/var/tmp/search-server-$(printf '%s' "$CACHE_DIR" | sha1sum | cut -c1-8)"
  fi
  # Everything the server writes lives in one per-port folder so several ports can coexist.
  RUN_DIR="$SERVER_DIR/run-$PORT"
  PID_FILE="$RUN_DIR/es.pid"
  CRED_FILE="$RUN_DIR/credentials"
}

# Prints the pid only if it is alive and really is an Elasticsearch JVM (pids get reused).
running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(tr -dc '0-9' <"$PID_FILE")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'org.elasticsearch' || return 1
  echo "$pid"
}

password() {
  if [[ -f "$CRED_FILE" ]]; then cat "$CRED_FILE"; else echo "${SEARCH_PASSWORD:-fleet-test-password}"; fi
}

healthy() {
  curl -sf --max-time 5 -u "elastic:$(password)" \
    "http://127.0.0.1:$PORT/_cluster/health?wait_for_status=yellow&timeout=1s" >/dev/null 2>&1
}

print_env() {
  printf 'ES_URL=%q\nES_USERNAME=%q\nES_PASSWORD=%q\n' \
    "http://127.0.0.1:$PORT" elastic "$(password)" >&3
}

download() {
  [[ -s "$ZIP" ]] && return 0
  mkdir -p "$(dirname "$ZIP")"
  local t0=$SECONDS tmp="$ZIP.part"
  log "downloading Elasticsearch $ES_VERSION integ-test zip from Maven Central"
  if curl -fsSL --retry 3 --max-time 600 -o "$tmp" "$CENTRAL/$MAVEN_PATH"; then
    # Central publishes a .sha1 beside every artifact; refuse a truncated or altered file.
    local want got
    want="$(curl -fsSL --retry 3 "$CENTRAL/$MAVEN_PATH.sha1" | cut -c1-40)"
    got="$(sha1sum "$tmp" | cut -c1-40)"
    [[ -n "$want" && "$want" == "$got" ]] || { rm -f "$tmp"; die "checksum mismatch for $MAVEN_PATH"; }
    mv "$tmp" "$ZIP"
  else
    # Plain HTTP failed (proxy/mirror setups): let Maven resolve it with its own settings.
    rm -f "$tmp"
    log "curl failed; trying mvn dependency:copy"
    mvn -B -q dependency:copy \
      "-Dartifact=org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip" \
      "-DoutputDirectory=$(dirname "$ZIP")" >&2 || die "could not download Elasticsearch $ES_VERSION"
  fi
  log "downloaded in $((SECONDS - t0))s"
}

ensure_user() {
  is_root || return 0
  id -u "$RUN_USER" >/dev/null 2>&1 && return 0
  log "creating system user $RUN_USER"
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$RUN_USER"
}

# The integ-test zip lacks the analysis-common and rest-root modules. Security cannot create its
# .security index without a few analysis components (its mapping defines an `email` analyzer), so
# API keys would fail, and `GET /` answers 405. This small plugin, compiled here against the zip's
# own jars, registers just those pieces on top of Lucene's implementations and serves `GET /`.
# It goes in plugins/, not modules/: release builds refuse unknown modules.
SHIM_JAVA='package fleettest;

import java.io.IOException;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import java.util.function.Supplier;
import java.util.regex.Pattern;
import org.apache.lucene.analysis.CharArraySet;
import org.apache.lucene.analysis.TokenFilter;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.email.UAX29URLEmailTokenizer;
import org.apache.lucene.analysis.miscellaneous.RemoveDuplicatesTokenFilter;
import org.apache.lucene.analysis.pattern.PatternCaptureGroupTokenFilter;
import org.apache.lucene.analysis.tokenattributes.CharTermAttribute;
import org.apache.lucene.util.SetOnce;
import org.elasticsearch.Build;
import org.elasticsearch.client.internal.node.NodeClient;
import org.elasticsearch.cluster.metadata.IndexNameExpressionResolver;
import org.elasticsearch.cluster.node.DiscoveryNodes;
import org.elasticsearch.cluster.service.ClusterService;
import org.elasticsearch.common.bytes.BytesArray;
import org.elasticsearch.common.io.stream.NamedWriteableRegistry;
import org.elasticsearch.common.settings.ClusterSettings;
import org.elasticsearch.common.settings.IndexScopedSettings;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.common.settings.SettingsFilter;
import org.elasticsearch.features.NodeFeature;
import org.elasticsearch.index.IndexVersion;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.index.analysis.TokenizerFactory;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.elasticsearch.plugins.ActionPlugin;
import org.elasticsearch.plugins.AnalysisPlugin;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.rest.BaseRestHandler;
import org.elasticsearch.rest.RestController;
import org.elasticsearch.rest.RestHandler;
import org.elasticsearch.rest.RestRequest;
import org.elasticsearch.rest.RestResponse;
import org.elasticsearch.rest.RestStatus;
import org.elasticsearch.xcontent.XContentBuilder;

public class TestSupportPlugin extends Plugin implements AnalysisPlugin, ActionPlugin {
    private final SetOnce<ClusterService> clusterService = new SetOnce<>();

    @Override
    public Collection<?> createComponents(PluginServices services) {
        clusterService.set(services.clusterService());
        return List.of();
    }

    private static TokenFilterFactory filter(String name, java.util.function.Function<TokenStream, TokenStream> f) {
        return new TokenFilterFactory() {
            public String name() { return name; }
            public TokenStream create(TokenStream in) { return f.apply(in); }
        };
    }

    @Override
    public Map<String, AnalysisProvider<TokenizerFactory>> getTokenizers() {
        return Map.of("uax_url_email", (indexSettings, env, name, settings) -> {
            int max = settings.getAsInt("max_token_length", 255);
            return TokenizerFactory.newFactory(name, () -> {
                UAX29URLEmailTokenizer t = new UAX29URLEmailTokenizer();
                t.setMaxTokenLength(max);
                return t;
            });
        });
    }

    @Override
    public Map<String, AnalysisProvider<TokenFilterFactory>> getTokenFilters() {
        return Map.of(
            "pattern_capture", AnalysisPlugin.requiresAnalysisSettings((indexSettings, env, name, settings) -> {
                List<String> regexes = settings.getAsList("patterns");
                if (regexes.isEmpty()) {
                    throw new IllegalArgumentException("required setting [patterns] is missing for token filter [" + name + "]");
                }
                Pattern[] patterns = regexes.stream().map(Pattern::compile).toArray(Pattern[]::new);
                boolean preserve = settings.getAsBoolean("preserve_original", true);
                return filter(name, in -> new PatternCaptureGroupTokenFilter(in, preserve, patterns));
            }),
            "unique", (indexSettings, env, name, settings) -> {
                boolean samePosition = settings.getAsBoolean("only_on_same_position", false);
                return filter(name, in -> samePosition ? new RemoveDuplicatesTokenFilter(in) : new FirstOccurrenceFilter(in));
            }
        );
    }

    /** Drops every token whose term was already seen in this stream. */
    static final class FirstOccurrenceFilter extends TokenFilter {
        private final CharTermAttribute term = addAttribute(CharTermAttribute.class);
        private final CharArraySet seen = new CharArraySet(16, false);

        FirstOccurrenceFilter(TokenStream in) { super(in); }

        @Override
        public boolean incrementToken() throws IOException {
            while (input.incrementToken()) {
                if (seen.contains(term.buffer(), 0, term.length()) == false) {
                    seen.add(Arrays.copyOf(term.buffer(), term.length()));
                    return true;
                }
            }
            return false;
        }

        @Override
        public void reset() throws IOException {
            super.reset();
            seen.clear();
        }
    }

    @Override
    public Collection<RestHandler> getRestHandlers(Settings settings, NamedWriteableRegistry registry, RestController controller,
            ClusterSettings clusterSettings, IndexScopedSettings indexScopedSettings, SettingsFilter settingsFilter,
            IndexNameExpressionResolver resolver, Supplier<DiscoveryNodes> nodes, Predicate<NodeFeature> features) {
        return List.of(new RootInfoHandler());
    }

    /** The usual `GET /` body: node, cluster and build identity. */
    final class RootInfoHandler extends BaseRestHandler {
        public String getName() { return "test_support_root_info"; }

        public List<Route> routes() {
            return List.of(new Route(RestRequest.Method.GET, "/"), new Route(RestRequest.Method.HEAD, "/"));
        }

        protected RestChannelConsumer prepareRequest(RestRequest request, NodeClient client) {
            return channel -> {
                if (request.method() == RestRequest.Method.HEAD) {
                    channel.sendResponse(new RestResponse(RestStatus.OK, RestResponse.TEXT_CONTENT_TYPE, BytesArray.EMPTY));
                    return;
                }
                ClusterService cs = clusterService.get();
                Build build = Build.current();
                XContentBuilder x = channel.newBuilder();
                x.startObject();
                x.field("name", cs.getNodeName());
                x.field("cluster_name", cs.getClusterName().value());
                x.field("cluster_uuid", cs.state().metadata().clusterUUID());
                x.startObject("version");
                x.field("number", build.qualifiedVersion());
                x.field("build_flavor", build.flavor());
                x.field("build_type", build.type().displayName());
                x.field("build_hash", build.hash());
                x.field("build_date", build.date());
                x.field("build_snapshot", build.isSnapshot());
                x.field("lucene_version", IndexVersion.current().luceneVersion().toString());
                x.field("minimum_wire_compatibility_version", build.minWireCompatVersion());
                x.field("minimum_index_compatibility_version", build.minIndexCompatVersion());
                x.endObject();
                x.field("tagline", "You Know, for Search");
                x.endObject();
                channel.sendResponse(new RestResponse(RestStatus.OK, x));
            };
        }
    }
}
'

install_shim() {
  local home="$1" java_home="$2" dir="$1/plugins/test-support"
  local want; want="$(printf '%s' "$SHIM_JAVA" | sha1sum | cut -c1-40)"
  [[ -f "$dir/.source-sha1" && "$(cat "$dir/.source-sha1")" == "$want" ]] && return 0
  log "building the test-support plugin"
  local javac="$java_home/bin/javac" jar="$java_home/bin/jar"
  [[ -x "$javac" ]] || javac="$(command -v javac)" || die "javac not found (a JDK is required)"
  [[ -x "$jar" ]] || jar="$(command -v jar)" || die "jar not found (a JDK is required)"
  local build; build="$(mktemp -d)"
  mkdir -p "$build/src/fleettest" "$build/classes"
  printf '%s' "$SHIM_JAVA" >"$build/src/fleettest/TestSupportPlugin.java"
  "$javac" -nowarn -proc:none --release 17 -cp "$home/lib/*" -d "$build/classes" \
    "$build/src/fleettest/TestSupportPlugin.java" >&2 || die "could not compile the test-support plugin"
  rm -rf "$dir" && mkdir -p "$dir"
  "$jar" cf "$dir/test-support.jar" -C "$build/classes" .
  cat >"$dir/plugin-descriptor.properties" <<EOF
description=Test-only analysis components and GET / for the integ-test distribution
version=$ES_VERSION
name=test-support
classname=fleettest.TestSupportPlugin
java.version=17
elasticsearch.version=$ES_VERSION
EOF
  echo "$want" >"$dir/.source-sha1"
  rm -rf "$build"
}

write_config() {
  local home="$1"
  cat >"$home/config/elasticsearch.yml" <<EOF
# Written by scripts/test-search-server.sh on each start.
cluster.name: fleet-test
node.name: node-1
path.data: $RUN_DIR/data
path.logs: $RUN_DIR/logs
network.host: 127.0.0.1
http.port: $PORT
transport.port: $TRANSPORT_PORT
discovery.type: single-node
# Security on so API keys and _authenticate behave as in production; TLS off keeps tests simple.
xpack.security.enabled: true
xpack.security.http.ssl.enabled: false
xpack.security.transport.ssl.enabled: false
xpack.security.authc.api_key.enabled: true
xpack.ml.enabled: false
# Test disks may be nearly full; never block writes on watermarks.
cluster.routing.allocation.disk.threshold_enabled: false
# Lets tests clean up with wildcard deletes.
action.destructive_requires_name: false
EOF
}

start() {
  mkdir -p "$CACHE_DIR"
  ensure_user
  resolve_dirs
  mkdir -p "$RUN_DIR"
  # Serialize concurrent starts/stops (e.g. parallel test workers) on the same cache.
  exec 9>"$CACHE_DIR/.lock-$PORT"
  flock -w 600 9 || die "timed out waiting for the start lock"

  if pid="$(running_pid)"; then
    if healthy; then
      log "already running (pid $pid) on port $PORT"
      print_env
      return 0
    fi
    log "pid $pid is alive but not healthy yet; waiting"
  else
    if curl -s --max-time 2 -o /dev/null "http://127.0.0.1:$PORT/"; then
      die "port $PORT is already used by another process; set SEARCH_PORT"
    fi
    launch
  fi
  wait_healthy
  print_env
}

launch() {
  command -v curl >/dev/null || die "curl is required"
  command -v unzip >/dev/null || die "unzip is required"
  local t0=$SECONDS java_home home="$SERVER_DIR/elasticsearch-$ES_VERSION"
  java_home="$(pick_java_home)"
  download

  if [[ ! -x "$home/bin/elasticsearch" ]]; then
    log "unpacking into $home"
    rm -rf "$home.tmp" && mkdir -p "$home.tmp"
    unzip -q "$ZIP" -d "$home.tmp"
    mv "$home.tmp/elasticsearch-$ES_VERSION" "$home" && rm -rf "$home.tmp"
  fi
  install_shim "$home" "$java_home"

  local pw="${SEARCH_PASSWORD:-fleet-test-password}"
  (( ${#pw} >= 6 )) || die "SEARCH_PASSWORD must be at least 6 characters"

  if [[ "${SEARCH_KEEP_DATA:-0}" != 1 ]]; then rm -rf "$RUN_DIR/data"; fi
  rm -rf "$RUN_DIR/logs" "$RUN_DIR/tmp"
  mkdir -p "$RUN_DIR/data" "$RUN_DIR/logs" "$RUN_DIR/tmp"
  printf '%s' "$pw" >"$CRED_FILE" && chmod 600 "$CRED_FILE"
  rm -f "$PID_FILE"
  write_config "$home"

  if is_root; then
    chown -R "$RUN_USER:" "$home" "$RUN_DIR"
    chown root: "$CRED_FILE"
    runuser -u "$RUN_USER" -- test -x "$home/bin/elasticsearch" -a -w "$RUN_DIR" ||
      die "user $RUN_USER cannot reach $SERVER_DIR; set SEARCH_CACHE_DIR to a world-traversable folder"
  fi

  local -a esenv=(ES_JAVA_HOME="$java_home" ES_TMPDIR="$RUN_DIR/tmp"
                  ES_JAVA_OPTS="-Xms$HEAP -Xmx$HEAP ${SEARCH_JAVA_OPTS:-}"
                  ES_PATH_CONF="$home/config")

  # bootstrap.password is what the reserved `elastic` user accepts until its password is changed;
  # with a fresh data folder every start that is always this value.
  rm -f "$home/config/elasticsearch.keystore"
  as_runner "${esenv[@]}" "$home/bin/elasticsearch-keystore" create >/dev/null
  printf '%s' "$pw" | as_runner "${esenv[@]}" "$home/bin/elasticsearch-keystore" add -x -f bootstrap.password >/dev/null

  log "starting Elasticsearch $ES_VERSION on 127.0.0.1:$PORT (java: $java_home, heap $HEAP)"
  # -d daemonizes once the node has started (or failed); the gc log is relative to the cwd.
  # fds 3 (our stdout, maybe a $(...) pipe) and 9 (the lock) must not leak into the daemon.
  (cd "$RUN_DIR/logs" && as_runner "${esenv[@]}" "$home/bin/elasticsearch" -d -p "$PID_FILE" \
     </dev/null >"$RUN_DIR/startup.log" 2>&1 3>&- 9>&-) || {
    tail -n 60 "$RUN_DIR/startup.log" "$RUN_DIR/logs/fleet-test.log" || true
    die "Elasticsearch failed to start (see $RUN_DIR/startup.log and $RUN_DIR/logs)"
  }
  log "process up after $((SECONDS - t0))s"
}

wait_healthy() {
  local t0=$SECONDS
  until healthy; do
    if ! running_pid >/dev/null; then
      tail -n 60 "$RUN_DIR/logs/fleet-test.log" || true
      die "Elasticsearch exited during startup (see $RUN_DIR/logs)"
    fi
    (( SECONDS - t0 < START_TIMEOUT )) || die "not healthy after ${START_TIMEOUT}s (see $RUN_DIR/logs)"
    sleep 1
  done
  log "healthy on http://127.0.0.1:$PORT"
}

stop() {
  [[ -d "$CACHE_DIR" ]] || { log "not running"; return 0; }
  resolve_dirs
  exec 9>"$CACHE_DIR/.lock-$PORT"
  flock -w 120 9 || die "timed out waiting for the lock"
  local pid
  if ! pid="$(running_pid)"; then
    log "not running on port $PORT"
    rm -f "$PID_FILE"
    return 0
  fi
  log "stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for ((i = 0; i < 60; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "still alive after 60s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE"
  log "stopped"
}

status() {
  local pid
  resolve_dirs
  if pid="$(running_pid)" && healthy; then
    log "running (pid $pid) on http://127.0.0.1:$PORT"
    print_env
  else
    log "not running on port $PORT"
    return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) die "usage: $0 start|stop|status" ;;
esac
