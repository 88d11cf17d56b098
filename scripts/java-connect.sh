#!/usr/bin/env bash
# scripts/java-connect.sh: the reference Apache Kafka Connect worker (Java),
# fetched from Maven Central, for interop tests, golden captures
# (scripts/capture-java-golden.sh) and side-by-side benchmarks.
#
# The jars (connect-runtime/json/file/transforms/test-plugins + slf4j-reload4j,
# same Kafka version as scripts/dev-env.sh) are cached in
# ${XDG_CACHE_HOME:-~/.cache}/connectd/connect-<ver>/lib; see
# scripts/maven/connect/pom.xml.
#
# Usage:
#   scripts/java-connect.sh fetch                  # download once; prints lib dir
#   scripts/java-connect.sh classpath              # prints '<lib>/*'
#   scripts/java-connect.sh start <worker.properties> <logfile>
#       ConnectDistributed in the background; prints its PID on stdout.
#   scripts/java-connect.sh start-standalone <worker.properties> <logfile> <connector.properties>...
#       ConnectStandalone in the background; prints its PID on stdout.
#   scripts/java-connect.sh wait <rest-url> [timeout_s=120] [pid]
#       wait until GET <rest-url>/ answers (fails early if pid exits).
#   scripts/java-connect.sh stop <pid> [timeout_s=30]
#       SIGTERM a worker started by this script (checked by command line), wait.
#
# Environment:
#   CONNECT_HEAP_OPTS   JVM heap flags (default: none, i.e. JVM default -Xmx)
#   CONNECT_JVM_OPTS    extra JVM flags
#   CONNECT_LOG4J_OPTS  default -Dlog4j.configuration=file:<repo>/scripts/config/connect-log4j.properties (WARN)
set -euo pipefail

export LOG_TAG=java-connect
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

# launch MAINCLASS LOGFILE ARGS...: background JVM in its own session; PID on stdout.
launch() {
  local main=$1 logfile=$2
  shift 2
  ensure_connect_lib
  local -a heap=() jvm=() log4j=()
  read -r -a heap <<<"${CONNECT_HEAP_OPTS:-}"
  read -r -a jvm <<<"${CONNECT_JVM_OPTS:-}"
  read -r -a log4j <<<"${CONNECT_LOG4J_OPTS:--Dlog4j.configuration=file:$REPO/scripts/config/connect-log4j.properties}"
  mkdir -p "$(dirname "$logfile")"
  setsid bash -c 'exec "$@"' java-connect \
    java "${heap[@]}" "${jvm[@]}" "${log4j[@]}" \
    -cp "$CONNECT_LIB/*" "$main" "$@" \
    </dev/null >>"$logfile" 2>&1 &
  local pid=$!
  sleep 0.5
  if ! kill -0 "$pid" 2>/dev/null; then
    tail -n 30 "$logfile" >&2 || true
    die "$main exited immediately (see $logfile)"
  fi
  log "started $main pid $pid (log: $logfile)"
  echo "$pid"
}

cmd=${1:-}
case $cmd in
fetch)
  ensure_connect_lib
  echo "$CONNECT_LIB"
  ;;
classpath)
  ensure_connect_lib
  echo "$CONNECT_LIB/*"
  ;;
start)
  [[ $# -eq 3 ]] || die "usage: $0 start <worker.properties> <logfile>"
  [[ -f $2 ]] || die "no such worker config: $2"
  launch org.apache.kafka.connect.cli.ConnectDistributed "$3" "$(realpath "$2")"
  ;;
start-standalone)
  [[ $# -ge 4 ]] || die "usage: $0 start-standalone <worker.properties> <logfile> <connector.properties>..."
  worker=$2 logfile=$3
  shift 3
  args=("$(realpath "$worker")")
  for c in "$@"; do args+=("$(realpath "$c")"); done
  launch org.apache.kafka.connect.cli.ConnectStandalone "$logfile" "${args[@]}"
  ;;
wait)
  [[ $# -ge 2 ]] || die "usage: $0 wait <rest-url> [timeout_s] [pid]"
  url=${2%/}/ timeout=${3:-120} pid=${4:-}
  rc=0
  wait_http "$url" "$timeout" "$pid" || rc=$?
  case $rc in
  0) log "REST API up at $url" ;;
  2) die "worker pid $pid exited before $url answered" ;;
  *) die "$url did not answer within ${timeout}s" ;;
  esac
  ;;
stop)
  [[ $# -ge 2 ]] || die "usage: $0 stop <pid> [timeout_s]"
  pidfile=$(mktemp)
  echo "$2" >"$pidfile"
  stop_pid "$pidfile" "org.apache.kafka.connect.cli.Connect" "java connect worker" "${3:-30}"
  rm -f "$pidfile"
  ;;
*)
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
  ;;
esac
