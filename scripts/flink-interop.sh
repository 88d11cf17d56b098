#!/usr/bin/env bash
# scripts/flink-interop.sh: does a real consumer that interprets the Debezium
# envelope read the changelog normalizer's output as the changelog it is?
#
# The consumer is Apache Flink (1.20, from Maven Central, run in-process as a
# local mini-cluster): its SQL Kafka connector with the `debezium-json`
# format, declared as a Flink user would. Steps:
#   1. run scripts/quickstart.sh (MongoDB -> MongoDB source -> Kafka ->
#      normalizer, inserts/updates/replaces/deletes during and after the
#      snapshot) with a second normalizer in the same worker that writes the
#      envelope with JsonConverter schemas (output.json.schemas.enable=true)
#      to <topic>.changelog-schemas; quickstart checks both changelogs
#      against MongoDB itself, then stops the worker;
#   2. compile scripts/flink-interop (Maven) and run ChangelogToTable on each
#      changelog (debezium-json.schema-include false, then true): a bounded
#      read_committed scan, SELECT * folded by primary key, and a GROUP BY
#      status aggregate that Flink maintains through retractions;
#   3. scripts/lib/flink_interop_check.py compares all four with MongoDB.
# Exits non-zero, naming every difference, when Flink's tables are not
# MongoDB's final state or Flink rejects a record.
#
# Usage: scripts/flink-interop.sh
#   CONNECTD_BIN=/path/to/worker   skip the cargo build (as in quickstart.sh)
#   QUICKSTART_NO_DEV_ENV=1        use KAFKA_BOOTSTRAP / MONGODB_URI as given
#                                  instead of running scripts/dev-env.sh up
#   QUICKSTART_REST_PORT=port      the worker's REST port (default 8083)
#   FLINK_INTEROP_MAVEN_ARGS="..." extra Maven arguments (e.g.
#                                  -Dmaven.repo.local=/tmp/m2)
# Needs Maven and a JDK 17 besides what quickstart.sh needs. The first run
# downloads Flink's jars (about 160 MB) into the local Maven repository.
set -euo pipefail

export LOG_TAG=flink-interop
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

need_cmd mvn "install Maven (apt-get install maven)"
need_cmd java "install a JDK 17 (apt-get install openjdk-17-jdk-headless)"
need_cmd python3

STARTED=$SECONDS
# Unique names: other runs (quickstart, tests, other people) may share the
# broker and the replica set, and connector names decide consumer groups and
# transactional ids.
NAME=flink-interop-$(date +%Y%m%d-%H%M%S)-$$
DB=flink_interop_$(date +%H%M%S)_$$
COLL=orders
TOPIC=$NAME.$DB.$COLL
CHANGELOG=$TOPIC.changelog
CHANGELOG_SCHEMAS=$TOPIC.changelog-schemas
PROJECT=$REPO/scripts/flink-interop

if [[ ${QUICKSTART_NO_DEV_ENV:-} != 1 ]]; then
  eval "$("$REPO/scripts/dev-env.sh" up)"
fi
: "${KAFKA_BOOTSTRAP:?set KAFKA_BOOTSTRAP (or let dev-env.sh start the services)}"
: "${MONGODB_URI:?set MONGODB_URI (or let dev-env.sh start the services)}"
export KAFKA_BOOTSTRAP MONGODB_URI

TMP=$(mktemp -d "${TMPDIR:-/tmp}/connectd-flink-interop.XXXXXX")
cleanup() {
  local rc=$?
  if ((rc != 0)); then
    log "FAILED after $((SECONDS - STARTED))s; Flink's output and logs kept in $TMP," \
      "the database $DB kept in MongoDB"
  else
    rm -rf "$TMP"
    # A fresh database per run; the replica set may be shared and long-lived.
    python3 -c 'import sys; from pymongo import MongoClient; MongoClient(sys.argv[1]).drop_database(sys.argv[2])' \
      "$MONGODB_URI" "$DB" || warn "could not drop the database $DB"
  fi
  exit "$rc"
}
trap cleanup EXIT

# 1. The pipeline (quickstart prints its own progress on stderr), with the
# schema-wrapped normalizer next to quickstart's own.
cat >"$TMP/sink-schemas.properties" <<EOF
name=$NAME-changelog-schemas
connector.class=io.connectd.normalizer.ChangelogNormalizerConnector
topics=$TOPIC
output.topic=\${topic}.changelog-schemas
output.json.schemas.enable=true
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.storage.StringConverter
state.dir=$TMP/normalizer-schemas-state
EOF
log "running the pipeline (scripts/quickstart.sh) into $CHANGELOG and $CHANGELOG_SCHEMAS"
QUICKSTART_NO_DEV_ENV=1 QUICKSTART_NAME=$NAME QUICKSTART_PREFIX=$NAME QUICKSTART_DB=$DB \
  QUICKSTART_EXTRA_CONNECTOR=$TMP/sink-schemas.properties \
  QUICKSTART_EXTRA_CHANGELOGS=$CHANGELOG_SCHEMAS \
  "$REPO/scripts/quickstart.sh" >"$TMP/quickstart.out" ||
  { cat "$TMP/quickstart.out" >&2; die "the pipeline (scripts/quickstart.sh) failed"; }
grep -E '^(MongoDB|OK|flink-interop)' "$TMP/quickstart.out" || true
PIPELINE_DONE=$SECONDS

# 2. Flink. `mvn -q` compiles the one class and writes the runtime classpath;
# the job then runs in a plain JVM (not inside Maven's), because Flink's
# planner loader wants to own its class loading.
read -r -a MAVEN_ARGS <<<"${FLINK_INTEROP_MAVEN_ARGS:-}"
log "mvn compile (scripts/flink-interop; the first run downloads Flink)"
mvn -q -B -Dstyle.color=never "${MAVEN_ARGS[@]}" -f "$PROJECT/pom.xml" \
  compile dependency:build-classpath -Dmdep.outputFile="$TMP/classpath.txt" \
  >"$TMP/mvn.log" 2>&1 || { tail -n 40 "$TMP/mvn.log" >&2; die "Maven failed (log: $TMP/mvn.log)"; }
CP="$PROJECT/target/classes:$(<"$TMP/classpath.txt")"
MAVEN_DONE=$SECONDS

# What Flink's own launch scripts open up on JDK 17 (Kryo and the planner use
# reflection on JDK classes).
JAVA_OPTS=(-Xmx768m -XX:+IgnoreUnrecognizedVMOptions
  --add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED
  --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens=java.base/java.net=ALL-UNNAMED --add-opens=java.base/java.text=ALL-UNNAMED
  --add-opens=java.base/java.time=ALL-UNNAMED
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn)
# Flink's stderr goes to a file: at the end of each bounded collect job the
# mini-cluster logs "Failed to get job status ... Some data might be lost"
# (it is shut down before the result fetcher's last status poll). Whether
# anything was lost is what the comparison below decides.
run_flink() { # TOPIC SCHEMA_INCLUDE OUT_DIR
  log "Flink: SQL Kafka connector, format debezium-json (schema-include=$2), over $1"
  java "${JAVA_OPTS[@]}" -cp "$CP" dev.connectd.flinkinterop.ChangelogToTable \
    "$KAFKA_BOOTSTRAP" "$1" "$2" "$NAME-flink-$2" "$3" 2>"$3.log" ||
    {
      grep -E '^(Caused by|Exception)' "$3.log" | cut -c1-400 | tail -n 8 >&2
      die "the Flink job over $1 failed (log: $3.log)"
    }
  grep '^flink:' "$3.log" || true
}
run_flink "$CHANGELOG" false "$TMP/flink-plain"
run_flink "$CHANGELOG_SCHEMAS" true "$TMP/flink-schemas"
FLINK_DONE=$SECONDS

# 3. Compare with MongoDB.
python3 "$REPO/scripts/lib/flink_interop_check.py" "$MONGODB_URI" "$DB" "$COLL" \
  "$TMP/flink-plain" "$TMP/flink-schemas" ||
  die "Flink's reading of the changelog differs from MongoDB (see DIFFERENCE lines above)"
log "done in $((SECONDS - STARTED))s (pipeline $((PIPELINE_DONE - STARTED))s," \
  "maven $((MAVEN_DONE - PIPELINE_DONE))s, flink $((FLINK_DONE - MAVEN_DONE))s," \
  "check $((SECONDS - FLINK_DONE))s)"
