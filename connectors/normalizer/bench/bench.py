#!/usr/bin/env python3
"""Benchmark of the changelog normalizer running in a real connectd worker.

Not a timed test: it prints numbers for docs/changelog-normalizer.md.

1. Produces N upserts over K keys of ~1 KB JSON documents to a fresh input
   topic (about 5% tombstones and 5% identical re-writes), before the
   connector starts, so the normalizer works through a backlog.
2. Starts `connectd distributed`, creates a ChangelogNormalizer and measures,
   until the connector's consumer group has committed the whole input:
   records/s, worker CPU-seconds per million records (utime+stime of the
   worker process from connector creation on), peak RSS (VmHWM) and the
   size of the state directory.
3. Recovery: produces R more upserts, kills the worker with -9 once it is
   processing them, restarts it and measures the time from the restart until
   the group's committed offsets move past where they were at the kill.
   With --rebuild, the same again with the state directory deleted before the
   restart (state rebuilt from the compacted state topic).

Usage (broker from scripts/dev-env.sh; a release build of connectd):

    cargo build --release --bin connectd
    python3 connectors/normalizer/bench/bench.py --changes 5000000 --keys 1000000

Input, changelog and state topics of N ~1 KB records take about 4*N KB of
broker disk; the topics are deleted at the end unless --keep.
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat; fields[0] is field 3.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def dir_size_mb(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total / 1e6


def http(base, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_rest(base, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if http(base, "GET", "/")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the worker's REST API at {base} did not come up")


def produce(bootstrap, topic, changes, keys, start_version, doc_bytes, seed):
    """Upserts: key {"_id": k}, value a ~doc_bytes JSON document or null."""
    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 20,
            "batch.size": 1 << 20,
            "compression.type": "lz4",
            "queue.buffering.max.kbytes": 1 << 20,
        }
    )
    rnd = random.Random(seed)
    # Incompressible-ish padding (Kafka's lz4 and the store's compression
    # would shrink a constant one to nothing), from a pool to keep Python fast.
    pad_len = max(0, doc_bytes - 120)
    pads = ["".join(rnd.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=pad_len)) for _ in range(997)]
    last = {}
    for i in range(changes):
        k = rnd.randrange(keys)
        roll = rnd.random()
        key = f'{{"_id": {k}}}'
        if roll < 0.05:
            value = None
        elif roll < 0.10 and k in last:
            value = last[k]
        else:
            value = f'{{"_id": {k}, "version": {start_version + i}, "name": "doc-{k}", "pad": "{pads[i % 997]}"}}'
        if value is None:
            last.pop(k, None)
        else:
            last[k] = value
        while True:
            try:
                p.produce(topic, key=key, value=value)
                break
            except BufferError:
                p.poll(0.05)
        if i % 10000 == 0:
            p.poll(0)
    left = p.flush(120)
    if left:
        raise SystemExit(f"{left} records not delivered to {topic}")


class Group:
    """The connector's consumer group offsets vs the input's end offsets."""

    def __init__(self, bootstrap, group, topic, partitions):
        self.c = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "enable.auto.commit": False,
                # read_committed would make OffsetFetch wait (require_stable)
                # while a killed worker's transaction is still open.
                "isolation.level": "read_uncommitted",
            }
        )
        self.tps = [TopicPartition(topic, p) for p in range(partitions)]

    def committed(self):
        for _ in range(10):
            try:
                got = self.c.committed(self.tps, timeout=10)
                return sum(max(tp.offset, 0) for tp in got)
            except KafkaException as e:
                log(f"fetching committed offsets: {e}")
        raise SystemExit("cannot fetch the group's committed offsets")

    def end(self):
        return sum(self.c.get_watermark_offsets(tp, timeout=10)[1] for tp in self.tps)

    def wait(self, target, timeout, pid=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.committed() >= target:
                return time.time()
            if pid is not None and not os.path.exists(f"/proc/{pid}"):
                raise SystemExit("the worker exited")
            time.sleep(0.25)
        raise SystemExit(f"committed offsets did not reach {target} within {timeout}s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--changes", type=int, default=5_000_000)
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--doc-bytes", type=int, default=1024)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--tasks", type=int, default=1)
    ap.add_argument("--recovery-changes", type=int, default=0,
                    help="upserts produced for the kill -9 phase (default N/20, at least 20000)")
    ap.add_argument("--connector-prop", action="append", default=[], metavar="KEY=VALUE",
                    help="extra connector property, e.g. state.cache.bytes=134217728")
    ap.add_argument("--skip-recovery", action="store_true",
                    help="stop after the backlog (for quick CPU measurements)")
    ap.add_argument("--rebuild", action="store_true",
                    help="also measure recovery with the state directory deleted")
    ap.add_argument("--connectd", default=None, help="path of the connectd binary")
    ap.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    ap.add_argument("--port", type=int, default=18093)
    ap.add_argument("--keep", action="store_true", help="keep topics and the work directory")
    ap.add_argument("--worker-prop", action="append", default=[], metavar="KEY=VALUE",
                    help="extra worker property, e.g. consumer.session.timeout.ms=6000 "
                    "(after kill -9 the dead member holds its partitions until its session times out)")
    args = ap.parse_args()

    binary = args.connectd or os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "target"), "release", "connectd"
    )
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"no connectd binary at {binary}: cargo build --release --bin connectd")

    run = f"nbench-{int(time.time())}"
    work = tempfile.mkdtemp(prefix=f"{run}-")
    state_dir = os.path.join(work, "state")
    input_topic = f"{run}-upserts"
    name = f"{run}-normalizer"
    group_id = f"connect-{name}"
    base = f"http://127.0.0.1:{args.port}"
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    topics = [input_topic, f"{input_topic}.changelog", f"{name}.{input_topic}.state"] + [
        f"{run}-{t}" for t in ("configs", "offsets", "status")
    ]
    worker = None
    try:
        for f in admin.create_topics([NewTopic(input_topic, args.partitions, 1)]).values():
            f.result()
        log(f"producing {args.changes} upserts over {args.keys} keys to {input_topic}")
        t = time.time()
        produce(args.bootstrap, input_topic, args.changes, args.keys, 0, args.doc_bytes, 1)
        log(f"produced in {time.time() - t:.1f}s")

        props = {
            "bootstrap.servers": args.bootstrap,
            "group.id": f"{run}-workers",
            "config.storage.topic": f"{run}-configs",
            "offset.storage.topic": f"{run}-offsets",
            "status.storage.topic": f"{run}-status",
            "config.storage.replication.factor": "1",
            "offset.storage.replication.factor": "1",
            "status.storage.replication.factor": "1",
            "offset.storage.partitions": "1",
            "status.storage.partitions": "1",
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "org.apache.kafka.connect.storage.StringConverter",
            "listeners": base,
            "offset.flush.interval.ms": "1000",
            "scheduled.rebalance.max.delay.ms": "0",
        }
        for kv in args.worker_prop:
            k, _, v = kv.partition("=")
            props[k] = v
        props_path = os.path.join(work, "worker.properties")
        with open(props_path, "w") as f:
            f.writelines(f"{k}={v}\n" for k, v in props.items())

        def start(tag):
            logf = open(os.path.join(work, f"worker-{tag}.log"), "w")
            p = subprocess.Popen([binary, "distributed", props_path], stdout=subprocess.DEVNULL, stderr=logf)
            wait_rest(base)
            return p

        worker = start("main")
        group = Group(args.bootstrap, group_id, input_topic, args.partitions)
        total = group.end()
        config = {
            "connector.class": "ChangelogNormalizer",
            "tasks.max": str(args.tasks),
            "topics": input_topic,
            "state.dir": state_dir,
        }
        for kv in args.connector_prop:
            k, _, v = kv.partition("=")
            config[k] = v
        cpu0 = cpu_seconds(worker.pid)
        t0 = time.time()
        # 409 while the worker is still joining its group.
        deadline = time.time() + 120
        while True:
            status, body = http(base, "POST", "/connectors", {"name": name, "config": config})
            if status != 409 or time.time() > deadline:
                break
            time.sleep(0.2)
        if status != 201:
            raise SystemExit(f"creating the connector: {status} {body!r}")
        t1 = group.wait(total, timeout=max(600, args.changes / 500), pid=worker.pid)
        cpu = cpu_seconds(worker.pid) - cpu0
        elapsed = t1 - t0
        results = {
            "changes": args.changes,
            "keys": args.keys,
            "doc_bytes": args.doc_bytes,
            "partitions": args.partitions,
            "seconds": round(elapsed, 1),
            "records_per_s": round(args.changes / elapsed),
            "cpu_s_per_million": round(cpu / args.changes * 1e6, 1),
            "peak_rss_mb": round(peak_rss_mb(worker.pid)),
            "state_mb": round(dir_size_mb(state_dir)),
        }
        log(f"normalized: {results}")

        def recovery(tag, delete_state, seed):
            nonlocal worker
            n = args.recovery_changes or max(20_000, args.changes // 20)
            before = group.committed()
            produce(args.bootstrap, input_topic, n // 2, args.keys, 10**9 * seed, args.doc_bytes, seed)
            # Kill once the worker is into the new records (mid-stream); the
            # other half arrives while it is down, so there is always work
            # left after the restart.
            group.wait(before + n // 8, timeout=600, pid=worker.pid)
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            produce(args.bootstrap, input_topic, n - n // 2, args.keys, 10**9 * seed + n, args.doc_bytes, seed + 1)
            at_kill = group.committed()
            if delete_state:
                shutil.rmtree(state_dir)
            t = time.time()
            worker = start(tag)
            group.wait(at_kill + 1, timeout=600, pid=worker.pid)
            resumed = time.time() - t
            group.wait(group.end(), timeout=600, pid=worker.pid)
            log(f"{tag}: committed past the kill position {resumed:.1f}s after the restart")
            return round(resumed, 1)

        if args.skip_recovery:
            print(json.dumps(results, indent=2))
            return
        results["recovery_s_after_kill_9"] = recovery("kill9", False, 2)
        if args.rebuild:
            results["recovery_s_after_kill_9_state_deleted"] = recovery("kill9-rebuild", True, 4)
        print(json.dumps(results, indent=2))
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
        if not args.keep:
            for f in admin.delete_topics(topics).values():
                try:
                    f.result()
                except Exception:  # noqa: BLE001 - a topic that was never created
                    pass
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work} and topics {topics}")


if __name__ == "__main__":
    main()
