# shellcheck shell=bash
# scripts/lib/common.sh: helpers shared by the dev/test scripts. Sourced, never run.
#
# Conventions:
#   * progress and errors go to stderr (stdout is reserved for machine-readable
#     output such as `export NAME=value` lines or a PID);
#   * every background process is started by PID, recorded in a PID file and
#     stopped by that PID only (never by name).

# Single place to change the pinned Kafka version. Must match <kafka.version>
# in scripts/maven/kafka/pom.xml and scripts/maven/connect/pom.xml.
KAFKA_VERSION="${KAFKA_VERSION:-3.9.2}"
# Pinned maven-dependency-plugin (resolved from Maven Central on first use).
MVN_DEP_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

REPO="${REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
CONNECTD_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/connectd"

log() { printf '[%s] %s\n' "${LOG_TAG:-connectd}" "$*" >&2; }
warn() { printf '[%s] WARNING: %s\n' "${LOG_TAG:-connectd}" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "${LOG_TAG:-connectd}" "$*" >&2; exit 1; }

need_cmd() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' not found on PATH${2:+ ($2)}"
}

# pid_alive PIDFILE PATTERN: true when PIDFILE names a live process whose
# command line contains PATTERN (guards against PID reuse after a reboot).
pid_alive() {
  local pidfile=$1 pattern=$2 pid
  [[ -s $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern"
}

# port_open HOST PORT: a TCP connect succeeds.
port_open() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# stop_pid PIDFILE PATTERN NAME [TIMEOUT_S]: SIGTERM the recorded PID, wait for
# it to exit, SIGKILL after TIMEOUT_S (default 30), remove the PID file.
stop_pid() {
  local pidfile=$1 pattern=$2 name=$3 timeout=${4:-30} pid i
  if ! pid_alive "$pidfile" "$pattern"; then
    [[ -e $pidfile ]] && log "$name: not running (removing stale $pidfile)"
    rm -f "$pidfile"
    return 0
  fi
  pid=$(<"$pidfile")
  log "$name: stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    warn "$name: pid $pid still alive after ${timeout}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  rm -f "$pidfile"
  log "$name: stopped"
}

# maven_fetch_lib POM DEST: copy the runtime dependency closure of POM into
# DEST (a lib/ directory), once. A `.complete` marker makes re-runs no-ops;
# a half-finished download is never mistaken for a complete one.
maven_fetch_lib() {
  local pom=$1 dest=$2 tmp
  if [[ -f $dest/.complete ]]; then
    return 0
  fi
  need_cmd mvn "install Maven (apt-get install maven)"
  need_cmd java "install a JDK 17 (apt-get install openjdk-17-jdk-headless)"
  mkdir -p "$(dirname "$dest")"
  tmp="$dest.tmp.$$"
  rm -rf "$tmp"
  log "fetching $(basename "$(dirname "$pom")") jars with Maven into $dest (first run only)"
  local mvnlog="$dest.mvn.log"
  if ! mvn -q -B -Dstyle.color=never -f "$pom" "$MVN_DEP_PLUGIN:copy-dependencies" \
    -Dkafka.version="$KAFKA_VERSION" \
    -DincludeScope=runtime -DoutputDirectory="$tmp" >"$mvnlog" 2>&1; then
    sed 's/\x1b\[[0-9;]*m//g' "$mvnlog" | tail -n 30 >&2
    rm -rf "$tmp"
    die "Maven could not fetch the dependencies of $pom (full log: $mvnlog)"
  fi
  ls "$tmp"/*.jar >/dev/null 2>&1 || die "Maven produced no jars in $tmp"
  touch "$tmp/.complete"
  rm -rf "$dest"
  mv "$tmp" "$dest"
}

# Ensure the Kafka broker jars are cached; prints nothing. Sets KAFKA_LIB.
ensure_kafka_lib() {
  KAFKA_LIB="$CONNECTD_CACHE/kafka-$KAFKA_VERSION/lib"
  maven_fetch_lib "$REPO/scripts/maven/kafka/pom.xml" "$KAFKA_LIB"
}

# Ensure the Java Kafka Connect worker jars are cached. Sets CONNECT_LIB.
ensure_connect_lib() {
  CONNECT_LIB="$CONNECTD_CACHE/connect-$KAFKA_VERSION/lib"
  maven_fetch_lib "$REPO/scripts/maven/connect/pom.xml" "$CONNECT_LIB"
}

# wait_http URL TIMEOUT_S [PID]: poll URL until it answers 2xx; fail early if
# PID (when given) exits.
wait_http() {
  local url=$1 timeout=$2 pid=${3:-} started=$SECONDS
  until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      return 2
    fi
    if ((SECONDS - started >= timeout)); then
      return 1
    fi
    sleep 0.5
  done
}
