#!/usr/bin/env bash
# scripts/quickstart.sh: the README's first command. The flagship pipeline,
# end to end, on real parts:
#
#   MongoDB replica set (mongo-sim from scripts/dev-env.sh; or MONGODB_URI)
#     -> connectd standalone: MongoDB source (copy_existing: chunked snapshot,
#        then the change stream) -> topic quickstart-<time>.shop.orders (upserts)
#     -> connectd: changelog normalizer (sink) -> <that topic>.changelog
#        (Debezium envelope with before/after, exactly once)
#   read back with a real Kafka consumer (confluent-kafka).
#
# Steps: start the dev environment; make sure pymongo and confluent-kafka are
# importable (pip-installs them if not); cargo build --release --bin connectd;
# seed 1,000 orders; run the worker with both connectors; while it runs,
# update, replace and delete some orders; check that the upsert topic folds to
# MongoDB's final state and that the changelog carries the before-images;
# print the connector status, snapshot progress and sample records; stop the
# worker with SIGTERM. Fails loudly (with the worker's log) otherwise.
#
# Usage: scripts/quickstart.sh
#   CONNECTD_BIN=/path/to/worker   skip the cargo build and run that executable
#   MONGODB_URI=mongodb://...      use that replica set instead of mongo-sim
# For scripts that build on this pipeline (scripts/flink-interop.sh), and so
# that several runs can share one broker and replica set at the same time:
#   QUICKSTART_NO_DEV_ENV=1        do not run dev-env.sh; use KAFKA_BOOTSTRAP
#                                  and MONGODB_URI as given
#   QUICKSTART_NAME=name           connector names <name>-mongodb and
#                                  <name>-changelog, topic prefix <name>-<time>
#                                  (default quickstart)
#   QUICKSTART_PREFIX=prefix       topic prefix (the upsert topic is
#                                  <prefix>.<db>.orders)
#   QUICKSTART_DB=db               MongoDB database (default shop)
#   QUICKSTART_REST_PORT=port      the worker's REST port (default 8083)
#   QUICKSTART_EXTRA_CONNECTOR=f   one more connector's properties file for
#                                  the worker (e.g. a second normalizer)
#   QUICKSTART_EXTRA_CHANGELOGS="t ..."  more changelog topics that must
#                                  rebuild MongoDB's state before the worker
#                                  stops (those of the extra connector)
# Afterwards the services keep running; stop them with scripts/dev-env.sh down.
set -euo pipefail

export LOG_TAG=quickstart
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

NAME=${QUICKSTART_NAME:-quickstart}
SOURCE=$NAME-mongodb
SINK=$NAME-changelog
DB=${QUICKSTART_DB:-shop}
COLL=orders
# A fresh topic per run: the broker keeps earlier runs' topics.
PREFIX=${QUICKSTART_PREFIX:-$NAME-$(date +%Y%m%d-%H%M%S)}
TOPIC=$PREFIX.$DB.$COLL
CHANGELOG=$TOPIC.changelog
REST=http://127.0.0.1:${QUICKSTART_REST_PORT:-8083}
EXTRA_CONNECTOR=${QUICKSTART_EXTRA_CONNECTOR:-}
read -r -a EXTRA_CHANGELOGS <<<"${QUICKSTART_EXTRA_CHANGELOGS:-}"

need_cmd curl
need_cmd python3

# 1. Kafka, mongo-sim and the registry. A MONGODB_URI given by the caller wins.
GIVEN_MONGODB_URI="${MONGODB_URI:-}"
if [[ ${QUICKSTART_NO_DEV_ENV:-} != 1 ]]; then
  exports=$("$REPO/scripts/dev-env.sh" up)
  eval "$exports"
fi
: "${KAFKA_BOOTSTRAP:?dev-env.sh did not export KAFKA_BOOTSTRAP}"
if [[ -n $GIVEN_MONGODB_URI ]]; then MONGODB_URI=$GIVEN_MONGODB_URI; fi
: "${MONGODB_URI:?dev-env.sh did not export MONGODB_URI}"

# Python clients for seeding MongoDB and reading Kafka.
if ! python3 -c 'import pymongo, confluent_kafka' 2>/dev/null; then
  log "pip install pymongo confluent-kafka (versions from scripts/requirements-test.txt)"
  PIP=(python3 -m pip install -q --disable-pip-version-check --user)
  if python3 -c 'import sys, sysconfig, os; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else 1)' 2>/dev/null; then
    PIP+=(--break-system-packages)
  fi
  "${PIP[@]}" $(grep -E '^(pymongo|confluent-kafka)' "$REPO/scripts/requirements-test.txt") ||
    die "could not pip-install pymongo and confluent-kafka; install them and retry"
fi

# 2. The worker binary.
if [[ -n ${CONNECTD_BIN:-} ]]; then
  BIN=$CONNECTD_BIN
  log "using CONNECTD_BIN=$BIN (no cargo build)"
else
  need_cmd cargo
  log "cargo build --release --bin connectd"
  (cd "$REPO" && cargo build --release --bin connectd) ||
    die "cargo build --release --bin connectd failed (see the compiler output above)"
  TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
  [[ $TARGET = /* ]] || TARGET="$REPO/$TARGET"
  BIN="$TARGET/release/connectd"
fi
[[ -x $BIN ]] || die "worker executable $BIN is missing"

if curl -s -o /dev/null --max-time 2 "$REST/" 2>/dev/null; then
  die "something already listens on $REST; stop it first"
fi

# 3. Configs.
TMP=$(mktemp -d "${TMPDIR:-/tmp}/connectd-quickstart.XXXXXX")
cat >"$TMP/worker.properties" <<EOF
bootstrap.servers=$KAFKA_BOOTSTRAP
key.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=false
value.converter=org.apache.kafka.connect.json.JsonConverter
value.converter.schemas.enable=false
offset.storage.file.filename=$TMP/connect.offsets
offset.flush.interval.ms=5000
listeners=$REST
EOF
cat >"$TMP/source.properties" <<EOF
name=$SOURCE
connector.class=com.mongodb.kafka.connect.MongoSourceConnector
connection.uri=$MONGODB_URI
database=$DB
collection=$COLL
startup.mode=copy_existing
snapshot.parallelism=2
topic.prefix=$PREFIX
publish.full.document.only=true
publish.full.document.only.tombstone.on.delete=true
change.stream.full.document=updateLookup
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.storage.StringConverter
EOF
cat >"$TMP/sink.properties" <<EOF
name=$SINK
connector.class=io.connectd.normalizer.ChangelogNormalizerConnector
topics=$TOPIC
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.storage.StringConverter
state.dir=$TMP/normalizer-state
EOF

WORKER_PID=""
cleanup() {
  local rc=$?
  if [[ -n $WORKER_PID ]] && kill -0 "$WORKER_PID" 2>/dev/null; then
    kill -TERM "$WORKER_PID" 2>/dev/null || true
    wait "$WORKER_PID" 2>/dev/null || true
  fi
  if ((rc != 0)); then
    if [[ -s $TMP/connectd.log ]]; then
      log "last lines of the worker log ($TMP/connectd.log):"
      tail -n 40 "$TMP/connectd.log" >&2 || true
    fi
    log "FAILED; configs and log kept in $TMP"
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT

worker_died() {
  local rc=0
  wait "$WORKER_PID" || rc=$?
  WORKER_PID=""
  die "connectd exited early (exit status $rc) $1"
}

# 4. Seed MongoDB (a fresh collection each run).
python3 "$REPO/scripts/lib/quickstart_mongo.py" seed "$MONGODB_URI" "$DB" "$COLL" 1000 ||
  die "could not seed $DB.$COLL at $MONGODB_URI"

# 5. Run the worker with both connectors.
CONNECTORS=("$TMP/source.properties" "$TMP/sink.properties")
if [[ -n $EXTRA_CONNECTOR ]]; then CONNECTORS+=("$EXTRA_CONNECTOR"); fi
log "starting: $BIN standalone $TMP/worker.properties ${CONNECTORS[*]}"
"$BIN" standalone "$TMP/worker.properties" "${CONNECTORS[@]}" \
  </dev/null >"$TMP/connectd.log" 2>&1 &
WORKER_PID=$!

rc=0
wait_http "$REST/" 30 "$WORKER_PID" || rc=$?
case $rc in
0) ;;
2) worker_died "before its REST API answered on $REST" ;;
*) die "connectd REST API did not answer on $REST within 30s" ;;
esac
log "REST API up; changing orders while the snapshot and stream run"
python3 "$REPO/scripts/lib/quickstart_mongo.py" change "$MONGODB_URI" "$DB" "$COLL" 1 ||
  die "could not change $DB.$COLL"
# Then change again once the snapshot is done, so the stream (and the
# changelog's updates and deletes with before-images) has work too.
for ((i = 0; i < 120; i++)); do
  kill -0 "$WORKER_PID" 2>/dev/null || worker_died "while the snapshot was running"
  curl -s "$REST/connectors/$SOURCE/progress" | grep -q '"phase":"stream"' && break
  sleep 0.5
done
log "snapshot done; changing orders again (stream phase)"
python3 "$REPO/scripts/lib/quickstart_mongo.py" change "$MONGODB_URI" "$DB" "$COLL" 2 ||
  die "could not change $DB.$COLL"

# 6. Check and show what happened.
python3 "$REPO/scripts/lib/quickstart_mongo.py" check "$MONGODB_URI" "$DB" "$COLL" \
  "$KAFKA_BOOTSTRAP" "$TOPIC" "$CHANGELOG" "${EXTRA_CHANGELOGS[@]}" ||
  die "the topics do not match MongoDB (see above)"
for c in "$SOURCE" "$SINK"; do
  echo "== GET $REST/connectors/$c/status"
  code=$(curl -s -o "$TMP/status.json" -w '%{http_code}' "$REST/connectors/$c/status") || true
  cat "$TMP/status.json" 2>/dev/null || true
  echo
  [[ $code = 200 ]] || die "status endpoint of $c answered HTTP $code"
  grep -q '"FAILED"' "$TMP/status.json" && die "$c has a FAILED connector or task"
done
echo "== GET $REST/connectors/$SOURCE/progress"
curl -s "$REST/connectors/$SOURCE/progress" || true
echo

# 7. Stop the worker with SIGTERM and report how it went.
log "stopping connectd (SIGTERM to pid $WORKER_PID)"
kill -TERM "$WORKER_PID"
stop_rc=0
for ((i = 0; i < 300; i++)); do
  kill -0 "$WORKER_PID" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$WORKER_PID" 2>/dev/null; then
  kill -KILL "$WORKER_PID" 2>/dev/null || true
  WORKER_PID=""
  die "connectd did not exit within 30s of SIGTERM"
fi
wait "$WORKER_PID" || stop_rc=$?
WORKER_PID=""
# 143 = 128+SIGTERM, what a JVM reports after running its shutdown hooks.
((stop_rc == 0 || stop_rc == 143)) || die "connectd exited with status $stop_rc after SIGTERM"
log "done: connectd stopped cleanly. The services keep running; stop them with scripts/dev-env.sh down"
