#!/usr/bin/env bash
# scripts/capture-java-golden.sh: regenerate tests/golden/java-3.9/, the
# reference bytes and REST answers of the real Java Kafka Connect worker that
# the Rust worker is compared with.
#
# What it does:
#   1. scripts/dev-env.sh up (Kafka only), deletes this script's own topics
#      (golden-*) so every capture starts from empty internal topics;
#   2. starts the Java distributed worker (scripts/java-connect.sh) with
#      tests/golden/java-3.9/worker.properties on http://127.0.0.1:18083;
#   3. runs scripts/lib/capture_java_golden.py: create -> pause -> resume ->
#      stop -> offsets alter/reset -> resume -> restart?includeTasks -> delete
#      of a VerifiableSourceConnector, dumping the config/offsets/status topics
#      after each step (topics.jsonl) and recording REST exchanges (rest.jsonl);
#   4. stops the worker (by PID). The broker is left as it was found.
#
# Usage: scripts/capture-java-golden.sh [out_dir]   (default tests/golden/java-3.9)
# Needs: java, mvn, python3 with confluent-kafka (scripts/requirements-test.txt).
# Inherent non-determinism in the output: timestamps, session key material,
# seqno values, cluster ids, generation numbers.
set -euo pipefail

export LOG_TAG=capture-golden
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

OUT=$(realpath -m "${1:-$REPO/tests/golden/java-3.9}")
REST_URL=http://127.0.0.1:18083
GROUP=golden-connect
CONFIG_TOPIC=golden-connect-configs
OFFSETS_TOPIC=golden-connect-offsets
STATUS_TOPIC=golden-connect-status
DATA_TOPIC=golden-verifiable

need_cmd python3
python3 -c 'import confluent_kafka' 2>/dev/null ||
  die "python3 module confluent_kafka missing: pip install -r scripts/requirements-test.txt"
need_cmd curl

eval "$(CONNECTD_SKIP_MONGO=1 "$REPO/scripts/dev-env.sh" up)"
: "${KAFKA_BOOTSTRAP:?dev-env.sh did not export KAFKA_BOOTSTRAP}"
"$REPO/scripts/java-connect.sh" fetch >/dev/null

if curl -fsS -o /dev/null --max-time 2 "$REST_URL/" 2>/dev/null; then
  die "something already listens on $REST_URL; stop it first"
fi

log "deleting previous capture topics (if any)"
python3 - "$KAFKA_BOOTSTRAP" "$CONFIG_TOPIC" "$OFFSETS_TOPIC" "$STATUS_TOPIC" "$DATA_TOPIC" <<'EOF'
import sys, time
from confluent_kafka.admin import AdminClient
a = AdminClient({"bootstrap.servers": sys.argv[1]})
want = set(sys.argv[2:])
existing = want & set(a.list_topics(timeout=30).topics)
if existing:
    for t, f in a.delete_topics(sorted(existing), operation_timeout=30).items():
        f.result()
    deadline = time.time() + 60
    while want & set(a.list_topics(timeout=30).topics):
        if time.time() > deadline:
            sys.exit("topics still present after delete: %s" % (want & set(a.list_topics().topics)))
        time.sleep(0.5)
EOF
# The consumer group of the worker would otherwise remember old generations.
sleep 1

mkdir -p "$OUT"
WORK=$(mktemp -d)
cat >"$OUT/worker.properties" <<EOF
# Worker config used by scripts/capture-java-golden.sh for these golden files
# (Apache Kafka Connect $KAFKA_VERSION, distributed mode, one worker).
bootstrap.servers=127.0.0.1:9092
group.id=$GROUP
listeners=$REST_URL
config.storage.topic=$CONFIG_TOPIC
offset.storage.topic=$OFFSETS_TOPIC
status.storage.topic=$STATUS_TOPIC
config.storage.replication.factor=1
offset.storage.replication.factor=1
status.storage.replication.factor=1
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
offset.flush.interval.ms=1000
plugin.discovery=hybrid_warn
EOF

WORKER_PID=""
cleanup() {
  local rc=$?
  if [[ -n $WORKER_PID ]]; then
    "$REPO/scripts/java-connect.sh" stop "$WORKER_PID" 60 || true
  fi
  if ((rc != 0)) && [[ -f $WORK/worker.log ]]; then
    log "worker log tail:"
    tail -n 40 "$WORK/worker.log" >&2 || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT

WORKER_PID=$("$REPO/scripts/java-connect.sh" start "$OUT/worker.properties" "$WORK/worker.log")
"$REPO/scripts/java-connect.sh" wait "$REST_URL" 120 "$WORKER_PID"

python3 "$REPO/scripts/lib/capture_java_golden.py" \
  --rest "$REST_URL" --bootstrap "$KAFKA_BOOTSTRAP" \
  --config-topic "$CONFIG_TOPIC" --offsets-topic "$OFFSETS_TOPIC" --status-topic "$STATUS_TOPIC" \
  --data-topic "$DATA_TOPIC" --out "$OUT"

grep -E ' (ERROR|WARN) ' "$WORK/worker.log" | sed 's/^/  worker: /' | head -n 20 >&2 || true
log "wrote $(wc -l <"$OUT/topics.jsonl") topic records and $(wc -l <"$OUT/rest.jsonl") REST exchanges to $OUT"
