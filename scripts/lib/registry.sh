# shellcheck shell=bash
# scripts/lib/registry.sh: a Confluent-compatible schema registry for tests.
# Sourced by scripts/dev-env.sh (after lib/common.sh), never run.
#
# Why Apicurio: Confluent's registry is not on Maven Central and Karapace is
# not on PyPI, but Apicurio Registry 3.x publishes a runnable Quarkus
# distribution on Maven Central (io.apicurio:apicurio-registry-app:<ver>:
# tar.gz:all) whose /apis/ccompat/v7 API speaks the Confluent REST protocol.
# Storage is in memory (its default): every `up` starts with an empty
# registry, which is what tests want.
#
# Provides registry_up / registry_down / registry_env / registry_status.
# Needs from the caller: STATE_DIR, CONNECTD_CACHE, MVN_DEP_PLUGIN, log/warn/die,
# pid_alive, port_open, stop_pid, wait_http (lib/common.sh).
#
# Environment:
#   APICURIO_VERSION          default 3.3.3 (keep in sync with the pom)
#   SCHEMA_REGISTRY_PORT      default 8081
#   REGISTRY_START_TIMEOUT    seconds to wait for readiness (default 120)
#   REGISTRY_HEAP_OPTS        default "-Xms128m -Xmx512m"
#   REGISTRY_JAVA             a java >= 21 (default: found in JAVA_HOME, PATH, /usr/lib/jvm)
#   CONNECTD_SKIP_REGISTRY=1  do not start it

APICURIO_VERSION="${APICURIO_VERSION:-3.3.3}"
REGISTRY_HOST=127.0.0.1
REGISTRY_PORT="${SCHEMA_REGISTRY_PORT:-8081}"
REGISTRY_DIR="$STATE_DIR/schema-registry"
REGISTRY_PIDFILE="$REGISTRY_DIR/registry.pid"
REGISTRY_LOG="$REGISTRY_DIR/registry.log"
REGISTRY_HOME="$CONNECTD_CACHE/apicurio-$APICURIO_VERSION"
# The command line of the JVM contains this; pid_alive checks it against PID reuse.
REGISTRY_PID_PATTERN="-Dconnectd.registry=$REGISTRY_DIR"
REGISTRY_START_TIMEOUT="${REGISTRY_START_TIMEOUT:-120}"
SCHEMA_REGISTRY_URL="http://$REGISTRY_HOST:$REGISTRY_PORT/apis/ccompat/v7"

# Fetch and unpack the distribution once; a `.complete` marker guards against
# a half-finished download being mistaken for a usable one.
registry_fetch() {
  [[ -f $REGISTRY_HOME/.complete ]] && return 0
  need_cmd mvn "install Maven (apt-get install maven)"
  need_cmd java "install a JDK 17 (apt-get install openjdk-17-jdk-headless)"
  local tmp="$REGISTRY_HOME.tmp.$$" mvnlog="$REGISTRY_HOME.mvn.log" archive archives
  rm -rf "$tmp"
  mkdir -p "$tmp/dl"
  log "registry: fetching Apicurio Registry $APICURIO_VERSION with Maven into $REGISTRY_HOME (first run only, ~160 MB)"
  if ! mvn -q -B -Dstyle.color=never -f "$REPO/scripts/maven/registry/pom.xml" \
    "$MVN_DEP_PLUGIN:copy-dependencies" -Dapicurio.version="$APICURIO_VERSION" \
    -DoutputDirectory="$tmp/dl" >"$mvnlog" 2>&1; then
    sed 's/\x1b\[[0-9;]*m//g' "$mvnlog" | tail -n 30 >&2
    rm -rf "$tmp"
    die "registry: Maven could not fetch io.apicurio:apicurio-registry-app:$APICURIO_VERSION (log: $mvnlog)"
  fi
  archives=("$tmp"/dl/apicurio-registry-app-*.tar.gz)
  archive=${archives[0]}
  [[ -f $archive ]] || die "registry: Maven produced no apicurio-registry-app archive in $tmp/dl"
  tar xzf "$archive" -C "$tmp" || die "registry: could not unpack $archive"
  rm -rf "$tmp/dl"
  [[ -f $tmp/quarkus-run.jar ]] || die "registry: $archive has no quarkus-run.jar"
  touch "$tmp/.complete"
  rm -rf "$REGISTRY_HOME"
  mv "$tmp" "$REGISTRY_HOME"
}

# java_major BIN: the feature release of a java binary (17, 21, 25, ...).
java_major() {
  "$1" -XshowSettings:properties -version 2>&1 |
    sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p' | head -n1
}

# Apicurio 3.x is compiled for Java 21 while the machine's default JDK may be
# 17; pick the first Java >= 21 from $REGISTRY_JAVA, $JAVA_HOME, `java` on
# PATH and /usr/lib/jvm/* (where the second, Temurin, JDK lives).
registry_java() {
  local candidate major
  for candidate in "${REGISTRY_JAVA:-}" "${JAVA_HOME:+$JAVA_HOME/bin/java}" \
    "$(command -v java 2>/dev/null || true)" /usr/lib/jvm/*/bin/java; do
    [[ -n $candidate && -x $candidate ]] || continue
    major=$(java_major "$candidate")
    if [[ $major =~ ^[0-9]+$ ]] && ((major >= 21)); then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

registry_up() {
  if [[ ${CONNECTD_SKIP_REGISTRY:-0} = 1 ]]; then
    log "registry: skipped (CONNECTD_SKIP_REGISTRY=1)"
    return 0
  fi
  if pid_alive "$REGISTRY_PIDFILE" "$REGISTRY_PID_PATTERN"; then
    log "registry: already running (pid $(<"$REGISTRY_PIDFILE")) at $SCHEMA_REGISTRY_URL"
    return 0
  fi
  rm -f "$REGISTRY_PIDFILE"
  if port_open "$REGISTRY_HOST" "$REGISTRY_PORT"; then
    die "registry: port $REGISTRY_PORT is already in use by a process this script did not start; stop it or set SCHEMA_REGISTRY_PORT"
  fi
  local java_bin
  java_bin=$(registry_java) ||
    die "registry: Apicurio Registry $APICURIO_VERSION needs Java 21 or newer; none found (set REGISTRY_JAVA=/path/to/java)"
  registry_fetch
  mkdir -p "$REGISTRY_DIR"
  log "registry: starting Apicurio Registry $APICURIO_VERSION on $REGISTRY_HOST:$REGISTRY_PORT (log: $REGISTRY_LOG)"
  local heap pid started=$SECONDS rc=0
  read -r -a heap <<<"${REGISTRY_HEAP_OPTS:--Xms128m -Xmx512m}"
  # Quarkus reads its settings from system properties. In-memory storage is
  # the default; the management port is moved off 9000 so it cannot clash,
  # and the ccompat API must accept Confluent clients' defaults (no auth).
  setsid bash -c 'exec "$@"' schema-registry \
    "$java_bin" "${heap[@]}" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    "$REGISTRY_PID_PATTERN" \
    -Dquarkus.http.host="$REGISTRY_HOST" \
    -Dquarkus.http.port="$REGISTRY_PORT" \
    -Dquarkus.management.enabled=false \
    -jar "$REGISTRY_HOME/quarkus-run.jar" \
    </dev/null >"$REGISTRY_LOG" 2>&1 &
  pid=$!
  echo "$pid" >"$REGISTRY_PIDFILE"
  wait_http "$SCHEMA_REGISTRY_URL/subjects" "$REGISTRY_START_TIMEOUT" "$pid" || rc=$?
  if ((rc != 0)); then
    log "registry: last lines of $REGISTRY_LOG:"
    tail -n 40 "$REGISTRY_LOG" >&2 || true
    if ((rc == 2)); then
      rm -f "$REGISTRY_PIDFILE"
      die "registry: process exited during start-up"
    fi
    stop_pid "$REGISTRY_PIDFILE" "$REGISTRY_PID_PATTERN" registry 20
    die "registry: $SCHEMA_REGISTRY_URL/subjects did not answer within ${REGISTRY_START_TIMEOUT}s"
  fi
  log "registry: ready at $SCHEMA_REGISTRY_URL (pid $pid, $((SECONDS - started))s)"
}

registry_down() {
  stop_pid "$REGISTRY_PIDFILE" "$REGISTRY_PID_PATTERN" registry 30
}

registry_env() {
  if pid_alive "$REGISTRY_PIDFILE" "$REGISTRY_PID_PATTERN"; then
    echo "export SCHEMA_REGISTRY_URL=$SCHEMA_REGISTRY_URL"
  fi
}

registry_status() {
  if pid_alive "$REGISTRY_PIDFILE" "$REGISTRY_PID_PATTERN"; then
    log "registry: running, pid $(<"$REGISTRY_PIDFILE"), $SCHEMA_REGISTRY_URL, log $REGISTRY_LOG"
  else
    log "registry: stopped"
  fi
}
