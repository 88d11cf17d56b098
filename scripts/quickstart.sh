#!/usr/bin/env bash
# scripts/quickstart.sh: the README's first command. A real pipeline, end to end:
#
#   real Kafka broker (scripts/dev-env.sh up)
#     -> connectd standalone, running VerifiableSourceConnector (100 rec/s)
#     -> topic `quickstart`, read back with a real Kafka consumer.
#
# Steps: start the dev environment; cargo build --release --bin connectd; write
# a temporary standalone worker.properties (JsonConverter, schemas off, file
# offsets in a temp dir, REST on http://127.0.0.1:8083) and connector
# properties; run the worker for ~10 s (QUICKSTART_SECONDS); print
# GET /connectors/quickstart-verifiable/status and the first records of topic
# `quickstart`; stop the worker with SIGTERM. Fails loudly (with the worker's
# log) if the worker exits early or nothing reaches the topic.
#
# Usage: scripts/quickstart.sh
#   CONNECTD_BIN=/path/to/worker   skip the cargo build and run that executable
#                                  instead (same CLI: `<bin> standalone w.props c.props`)
#   QUICKSTART_SECONDS=10          how long the pipeline runs
# Afterwards the broker keeps running; stop it with scripts/dev-env.sh down.
set -euo pipefail

export LOG_TAG=quickstart
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

CONNECTOR=quickstart-verifiable
TOPIC=quickstart
REST=http://127.0.0.1:8083
RUN_SECONDS="${QUICKSTART_SECONDS:-10}"

need_cmd curl

# 1. Broker (and whatever else dev-env provides).
exports=$(CONNECTD_SKIP_MONGO=1 "$REPO/scripts/dev-env.sh" up)
eval "$exports"
: "${KAFKA_BOOTSTRAP:?dev-env.sh did not export KAFKA_BOOTSTRAP}"

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
cat >"$TMP/connector.properties" <<EOF
name=$CONNECTOR
connector.class=org.apache.kafka.connect.tools.VerifiableSourceConnector
tasks.max=1
topic=$TOPIC
throughput=100
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

# 4. Run the worker.
log "starting: $BIN standalone $TMP/worker.properties $TMP/connector.properties"
"$BIN" standalone "$TMP/worker.properties" "$TMP/connector.properties" \
  </dev/null >"$TMP/connectd.log" 2>&1 &
WORKER_PID=$!

rc=0
wait_http "$REST/" 30 "$WORKER_PID" || rc=$?
case $rc in
0) ;;
2) worker_died "before its REST API answered on $REST" ;;
*) die "connectd REST API did not answer on $REST within 30s" ;;
esac
log "REST API up; letting the pipeline run for ${RUN_SECONDS}s"
for ((i = 0; i < RUN_SECONDS * 2; i++)); do
  kill -0 "$WORKER_PID" 2>/dev/null || worker_died "while the pipeline was running"
  sleep 0.5
done

# 5. Show what happened.
echo "== GET $REST/connectors/$CONNECTOR/status"
status_code=$(curl -s -o "$TMP/status.json" -w '%{http_code}' "$REST/connectors/$CONNECTOR/status") || true
cat "$TMP/status.json" 2>/dev/null || true
echo
[[ $status_code = 200 ]] || die "status endpoint answered HTTP $status_code"

echo "== first records of topic '$TOPIC' (key  value)"
records="$TMP/records.txt"
if python3 -c 'import confluent_kafka' 2>/dev/null; then
  python3 - "$KAFKA_BOOTSTRAP" "$TOPIC" 5 >"$records" <<'EOF'
import sys, time
from confluent_kafka import Consumer, TopicPartition
bootstrap, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = Consumer({"bootstrap.servers": bootstrap, "group.id": "connectd-quickstart-reader",
              "enable.auto.commit": False})
c.assign([TopicPartition(topic, 0, 0)])
got, deadline = 0, time.time() + 20
while got < n and time.time() < deadline:
    m = c.poll(1.0)
    if m is None or m.error():
        continue
    k, v = m.key(), m.value()
    print("partition=%d offset=%d  %s  %s" % (m.partition(), m.offset(),
          None if k is None else k.decode("utf-8", "replace"),
          None if v is None else v.decode("utf-8", "replace")))
    got += 1
c.close()
EOF
else
  # Fallback: Kafka's own console consumer from the cached broker jars.
  ensure_kafka_lib
  timeout 60 java -Dlog4j.configuration="file:$REPO/scripts/config/connect-log4j.properties" \
    -cp "$KAFKA_LIB/*" org.apache.kafka.tools.consumer.ConsoleConsumer \
    --bootstrap-server "$KAFKA_BOOTSTRAP" --topic "$TOPIC" --from-beginning \
    --max-messages 5 --timeout-ms 20000 \
    --property print.key=true --property print.partition=true --property print.offset=true \
    >"$records" 2>/dev/null || true
fi
cat "$records"
[[ -s $records ]] || die "no records could be read from topic '$TOPIC'"

# 6. Stop the worker with SIGTERM and report how it went.
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
log "done: connectd stopped cleanly. Kafka keeps running; stop it with scripts/dev-env.sh down"
