#!/usr/bin/env bash
# scripts/bench-worker.sh: side-by-side framework benchmark, connectd vs the
# Java Kafka Connect worker (Apache Kafka 3.9.2), on the same real broker, one
# after the other (never concurrently):
#
#   VerifiableSourceConnector (throughput=-1, unthrottled)
#     -> JsonConverter (key+value, schemas.enable=true, as the Java quickstart)
#     -> Kafka (fresh topic, 1 partition, RF 1)
#
# For each worker: start it in distributed mode (fresh group.id and internal
# topics, REST on a free port, offset.flush.interval.ms=10000), create the
# connector, and measure from outside the process until the topic holds N
# records (scripts/bench/watch_topic.py):
#   * wall time from the first record in the topic to N (broker end offsets);
#   * CPU-seconds (utime+stime of the worker PID, all threads, /proc/PID/stat)
#     over that same production phase, plus the startup CPU (process start
#     until the first record is in the topic) reported separately;
#   * peak RSS (VmHWM, /proc/PID/status) at the end.
# Then it stops the worker and prints a table with the ratios.
#
# Worker stdout goes to /dev/null for BOTH workers: VerifiableSourceTask prints
# one JSON line per record (Java's also one per acked record). Logs go to
# <out>/<worker>.log.
#
# Usage:
#   scripts/bench-worker.sh [--records N] [--tasks T] [--only connectd|java]
#                           [--cpu C] [--timeout S] [--out DIR]
#     --records N   records to wait for in the topic (default 1000000)
#     --tasks T     tasks.max of the connector (default 1); the topic has 1
#                   partition either way
#     --only W      run only one worker (default: connectd, then java)
#     --cpu C       pin the worker under test to CPU C (taskset) and give the JVM
#                   -XX:ActiveProcessorCount=1 (default: no pinning)
#     --timeout S   per-worker limit for reaching N records (default 900)
#     --out DIR     where configs, logs and results go (default: a new temp dir)
#
# Environment:
#   CONNECTD_BIN        use this connectd executable instead of building one
#                       (default: cargo build --release --bin connectd, honouring
#                       CARGO_TARGET_DIR)
#   BENCH_HEAP_OPTS     Java heap flags (default "-Xms256M -Xmx2G", what
#                       bin/connect-distributed.sh sets)
#   BENCH_JVM_OPTS      other JVM flags (default: kafka-run-class.sh's
#                       KAFKA_JVM_PERFORMANCE_OPTS, G1 etc., see below)
#   BENCH_PRODUCER_PROPS  space-separated k=v added as producer.k=v to BOTH
#                       worker configs, e.g. "linger.ms=5 batch.size=262144"
#                       (default: none, each worker's own producer defaults)
#   BENCH_POLL_MS       end-offset polling interval (default 20)
#   BENCH_KEEP_TOPICS=1 keep the run's data and internal topics (default: they
#                       are deleted after each worker's run)
#
# Output: progress on stderr; the results table (also <out>/results.md) and a
# JSON line per worker (<out>/<worker>.json) on stdout.
set -euo pipefail

export LOG_TAG=bench-worker
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

RECORDS=1000000
TASKS=1
ONLY=""
PIN_CPU=""
TIMEOUT=900
OUT=""
while [[ $# -gt 0 ]]; do
  case $1 in
  --records) RECORDS=$2; shift 2 ;;
  --tasks) TASKS=$2; shift 2 ;;
  --only) ONLY=$2; shift 2 ;;
  --cpu) PIN_CPU=$2; shift 2 ;;
  --timeout) TIMEOUT=$2; shift 2 ;;
  --out) OUT=$2; shift 2 ;;
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 0
    ;;
  *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ $RECORDS =~ ^[0-9]+$ && $RECORDS -gt 0 ]] || die "--records must be a positive integer"
[[ $TASKS =~ ^[0-9]+$ && $TASKS -gt 0 ]] || die "--tasks must be a positive integer"
case $ONLY in "" | connectd | java) ;; *) die "--only must be connectd or java" ;; esac
[[ -z $PIN_CPU || $PIN_CPU =~ ^[0-9]+$ ]] || die "--cpu must be a CPU number"

HEAP_OPTS="${BENCH_HEAP_OPTS:--Xms256M -Xmx2G}"
JVM_OPTS="${BENCH_JVM_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true}"
[[ -n $PIN_CPU ]] && JVM_OPTS="$JVM_OPTS -XX:ActiveProcessorCount=1"
POLL_MS="${BENCH_POLL_MS:-20}"

need_cmd curl
need_cmd python3
need_cmd java
python3 -c 'import confluent_kafka' 2>/dev/null ||
  die "python3 confluent-kafka is needed (pip install -r scripts/requirements-test.txt)"
[[ -n $PIN_CPU ]] && need_cmd taskset

if [[ -z $OUT ]]; then
  OUT=$(mktemp -d "${TMPDIR:-/tmp}/bench-worker.XXXXXX")
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
log "output directory: $OUT"

# ---------------------------------------------------------------------------
# Cleanup: every worker this script starts is recorded here and stopped (by
# PID) on any exit.
# ---------------------------------------------------------------------------
WORKER_PID=""
WORKER_NAME=""
WATCH_PID=""
RUN_TOPICS=""
stop_worker() {
  local pid=$WORKER_PID i
  [[ -n $pid ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    log "$WORKER_NAME: stopping pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      warn "$WORKER_NAME: pid $pid still alive after 30s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
  WORKER_PID=""
}
cleanup() {
  local rc=$?
  if [[ -n $WATCH_PID ]] && kill -0 "$WATCH_PID" 2>/dev/null; then
    kill -TERM "$WATCH_PID" 2>/dev/null || true
  fi
  stop_worker
  if [[ -n $RUN_TOPICS && -z ${BENCH_KEEP_TOPICS:-} ]]; then
    # shellcheck disable=SC2086  # a list of plain topic names
    delete_topics $RUN_TOPICS
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# Broker, binaries.
# ---------------------------------------------------------------------------
exports=$(CONNECTD_SKIP_MONGO=1 "$REPO/scripts/dev-env.sh" up)
eval "$exports"
: "${KAFKA_BOOTSTRAP:?dev-env.sh did not export KAFKA_BOOTSTRAP}"

if [[ $ONLY != java ]]; then
  if [[ -n ${CONNECTD_BIN:-} ]]; then
    BIN=$CONNECTD_BIN
    log "using CONNECTD_BIN=$BIN (no cargo build)"
  else
    need_cmd cargo
    log "cargo build --release --bin connectd (CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-<repo>/target})"
    (cd "$REPO" && cargo build --release --bin connectd) >&2
    TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
    [[ $TARGET = /* ]] || TARGET="$REPO/$TARGET"
    BIN="$TARGET/release/connectd"
  fi
  [[ -x $BIN ]] || die "worker executable $BIN is missing"
fi
if [[ $ONLY != connectd ]]; then
  CONNECT_LIB=$("$REPO/scripts/java-connect.sh" fetch)
fi

# worker_alive: the worker process exists and is not a zombie (a dead child
# of this shell stays a zombie until waited for, and kill -0 succeeds on it).
worker_alive() {
  [[ -n $WORKER_PID && -r /proc/$WORKER_PID/stat ]] || return 1
  local st
  st=$(<"/proc/$WORKER_PID/stat") || return 1
  st=${st##*) }
  [[ ${st:0:1} != Z ]]
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# create_topic NAME: 1 partition, RF 1, so both workers write the same layout.
create_topic() {
  python3 - "$KAFKA_BOOTSTRAP" "$1" <<'EOF'
import sys
from confluent_kafka.admin import AdminClient, NewTopic
a = AdminClient({"bootstrap.servers": sys.argv[1]})
f = a.create_topics([NewTopic(sys.argv[2], num_partitions=1, replication_factor=1)])
for t, fut in f.items():
    fut.result(30)
EOF
}

# delete_topics NAME...: drop this run's topics again (the broker is shared).
delete_topics() {
  python3 - "$KAFKA_BOOTSTRAP" "$@" <<'EOF' || warn "could not delete topics $*"
import sys
from confluent_kafka.admin import AdminClient
a = AdminClient({"bootstrap.servers": sys.argv[1]})
for t, fut in a.delete_topics(sys.argv[2:], operation_timeout=30).items():
    try:
        fut.result(60)
    except Exception as e:  # a topic that was never created is fine
        print(f"delete {t}: {e}", file=sys.stderr)
EOF
}

# write_worker_config FILE RUN_ID PORT
write_worker_config() {
  local file=$1 id=$2 port=$3 kv
  cat >"$file" <<EOF
# Written by scripts/bench-worker.sh. As config/connect-distributed.properties
# of the Kafka 3.9 quickstart, with fresh group/topic names per run.
bootstrap.servers=$KAFKA_BOOTSTRAP
group.id=$id
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=true
value.converter.schemas.enable=true
offset.storage.topic=$id-offsets
offset.storage.replication.factor=1
config.storage.topic=$id-configs
config.storage.replication.factor=1
status.storage.topic=$id-status
status.storage.replication.factor=1
offset.flush.interval.ms=10000
listeners=http://127.0.0.1:$port
EOF
  for kv in ${BENCH_PRODUCER_PROPS:-}; do
    echo "producer.$kv" >>"$file"
  done
}

# load_avg: the 1/5/15-minute load averages.
load_avg() { cut -d' ' -f1-3 /proc/loadavg; }

# run_worker NAME: one full measurement; writes $OUT/NAME.json.
run_worker() {
  local name=$1 id port rest topic cfg logf i code
  id="bench-$name-$(date +%s)-$RANDOM"
  topic="$id-data"
  port=$(free_port)
  rest="http://127.0.0.1:$port"
  cfg="$OUT/$name-worker.properties"
  logf="$OUT/$name.log"
  : >"$logf"
  write_worker_config "$cfg" "$id" "$port"
  RUN_TOPICS="$topic $id-offsets $id-configs $id-status"
  create_topic "$topic"
  local load_before
  load_before=$(load_avg)
  log "$name: load average before: $load_before; topic $topic; REST $rest"

  local -a pin=()
  [[ -n $PIN_CPU ]] && pin=(taskset -c "$PIN_CPU")
  WORKER_NAME=$name
  local cmdline
  if [[ $name == connectd ]]; then
    cmdline="${pin[*]} $BIN distributed $cfg >/dev/null 2>>$logf"
    CONNECTD_LOG=${CONNECTD_LOG:-info} "${pin[@]}" "$BIN" distributed "$cfg" </dev/null >/dev/null 2>>"$logf" &
    WORKER_PID=$!
  else
    # scripts/java-connect.sh start sends the JVM's stdout+stderr to the log
    # file it is given: give it /dev/null and let log4j write the real log to
    # $logf through scripts/bench/connect-log4j-file.properties.
    export CONNECT_HEAP_OPTS="$HEAP_OPTS"
    export CONNECT_JVM_OPTS="$JVM_OPTS"
    export CONNECT_LOG4J_OPTS="-Dlog4j.configuration=file:$REPO/scripts/bench/connect-log4j-file.properties -Dbench.log.file=$logf"
    WORKER_PID=$("${pin[@]}" "$REPO/scripts/java-connect.sh" start "$cfg" /dev/null)
    cmdline="${pin[*]} java $CONNECT_HEAP_OPTS $CONNECT_JVM_OPTS $CONNECT_LOG4J_OPTS -cp $CONNECT_LIB/* org.apache.kafka.connect.cli.ConnectDistributed $cfg >/dev/null 2>&1"
  fi
  log "$name: pid $WORKER_PID: $cmdline"
  local t_start=$SECONDS

  local rc=0
  until curl -fsS -o /dev/null --max-time 2 "$rest/" 2>/dev/null; do
    worker_alive || { tail -n 40 "$logf" >&2; die "$name: worker exited before its REST API answered (log: $logf)"; }
    ((SECONDS - t_start < 180)) || { tail -n 40 "$logf" >&2; die "$name: REST API $rest did not answer within 180s (log: $logf)"; }
    sleep 0.2
  done
  log "$name: REST up after $((SECONDS - t_start))s"

  # Watch the topic (and the worker's /proc) from now on.
  python3 "$REPO/scripts/bench/watch_topic.py" "$KAFKA_BOOTSTRAP" "$topic" "$RECORDS" \
    "$WORKER_PID" "$TIMEOUT" "$POLL_MS" >"$OUT/$name.watch.json" &
  WATCH_PID=$!

  # Create the connector; a distributed worker answers 409 until it has
  # joined the group and read the config topic, so retry.
  local connector
  connector=$(printf '{"name":"bench-verifiable","config":{"connector.class":"org.apache.kafka.connect.tools.VerifiableSourceConnector","tasks.max":"%s","topic":"%s","throughput":"-1"}}' "$TASKS" "$topic")
  for ((i = 0; ; i++)); do
    worker_alive || { tail -n 40 "$logf" >&2; die "$name: worker died before the connector was created (log: $logf)"; }
    code=$(curl -sS -o "$OUT/$name.create.json" -w '%{http_code}' --max-time 30 \
      -H 'Content-Type: application/json' -X POST --data "$connector" "$rest/connectors" 2>/dev/null || echo 000)
    [[ $code == 201 ]] && break
    ((i < 240)) || { cat "$OUT/$name.create.json" >&2 || true; die "$name: POST /connectors kept failing (last HTTP $code)"; }
    sleep 0.5
  done
  log "$name: connector created ($((SECONDS - t_start))s after start); waiting for $RECORDS records"

  rc=0
  wait "$WATCH_PID" || rc=$?
  WATCH_PID=""
  if [[ $rc -ne 0 ]]; then
    cat "$OUT/$name.watch.json" >&2 || true
    curl -sS --max-time 5 "$rest/connectors/bench-verifiable/status" >&2 2>/dev/null || true
    tail -n 40 "$logf" >&2
    die "$name: did not reach $RECORDS records (log: $logf)"
  fi
  curl -sS --max-time 10 "$rest/connectors/bench-verifiable/status" >"$OUT/$name.status.json" 2>/dev/null || true
  local load_after
  load_after=$(load_avg)
  stop_worker
  if [[ -z ${BENCH_KEEP_TOPICS:-} ]]; then
    # shellcheck disable=SC2086  # a list of plain topic names
    delete_topics $RUN_TOPICS
  fi
  RUN_TOPICS=""

  python3 - "$OUT/$name.watch.json" "$name" "$load_before" "$load_after" "$cmdline" \
    "$TASKS" "$RECORDS" >"$OUT/$name.json" <<'EOF'
import json, sys
w = json.load(open(sys.argv[1]))
w.update(worker=sys.argv[2], load_before=sys.argv[3], load_after=sys.argv[4],
         command=sys.argv[5], tasks=int(sys.argv[6]), records=int(sys.argv[7]))
w["records_per_s"] = w["prod_records"] / w["wall_s"]
w["cpu_s_per_million"] = w["prod_cpu_s"] / w["prod_records"] * 1e6
w["records_per_cpu_s"] = w["prod_records"] / w["prod_cpu_s"] if w["prod_cpu_s"] > 0 else float("inf")
w["startup_cpu_s"] = w["cpu_at_first"]
w["boot_cpu_s"] = w["cpu_at_watch_start"]
w["peak_rss_mib"] = (w["vm_hwm_kb"] or w["max_sampled_rss_kb"]) / 1024
print(json.dumps(w))
EOF
  log "$name: done: $(python3 -c 'import json,sys; w=json.load(open(sys.argv[1])); print("%.0f rec/s, %.2f CPU-s/M, %.1f MiB peak RSS" % (w["records_per_s"], w["cpu_s_per_million"], w["peak_rss_mib"]))' "$OUT/$name.json")"
}

log "machine: $(nproc) CPUs, $(free -m | awk '/^Mem:/{print $2}') MiB RAM; Kafka $KAFKA_VERSION at $KAFKA_BOOTSTRAP"
log "records=$RECORDS tasks=$TASKS pin=${PIN_CPU:-none} producer props='${BENCH_PRODUCER_PROPS:-}'"
[[ $ONLY != java ]] && run_worker connectd
[[ $ONLY != connectd ]] && run_worker java

# ---------------------------------------------------------------------------
# Table.
# ---------------------------------------------------------------------------
python3 - "$OUT" "$RECORDS" "$TASKS" "$(nproc)" "$KAFKA_VERSION" <<'EOF' | tee "$OUT/results.md"
import json, os, sys
out, records, tasks, ncpu, kver = sys.argv[1:6]
rows = {}
for n in ("connectd", "java"):
    p = os.path.join(out, n + ".json")
    if os.path.exists(p):
        rows[n] = json.load(open(p))
print(f"records={records} tasks.max={tasks} nproc={ncpu} Kafka {kver}, VerifiableSource -> JsonConverter(schemas.enable=true) -> 1-partition topic")
print()
print("| worker | load avg before (1/5/15m) | records/s | wall s | production CPU-s | CPU-s per 1M records | records per CPU-s | startup CPU-s (to 1st record) | peak RSS MiB (VmHWM) | threads at end |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for n, w in rows.items():
    print(f"| {n} | {w['load_before']} | {w['records_per_s']:,.0f} | {w['wall_s']:.2f} | {w['prod_cpu_s']:.2f} | {w['cpu_s_per_million']:.2f} | {w['records_per_cpu_s']:,.0f} | {w['startup_cpu_s']:.2f} | {w['peak_rss_mib']:.1f} | {w['threads']} |")
if len(rows) == 2:
    c, j = rows["connectd"], rows["java"]
    eff = c["records_per_cpu_s"] / j["records_per_cpu_s"]
    rss = j["peak_rss_mib"] / c["peak_rss_mib"]
    thr = c["records_per_s"] / j["records_per_s"]
    print()
    print(f"- records per CPU-second, connectd/java: **{eff:.2f}x** (target >= 3x: {'met' if eff >= 3 else 'NOT met'})")
    print(f"- peak RSS, java/connectd: **{rss:.1f}x** (target >= 10x, i.e. connectd <= 1/10: {'met' if rss >= 10 else 'NOT met'})")
    print(f"- records/s, connectd/java: {thr:.2f}x")
EOF
for n in connectd java; do
  [[ -f $OUT/$n.json ]] && cat "$OUT/$n.json"
done
log "results in $OUT"
