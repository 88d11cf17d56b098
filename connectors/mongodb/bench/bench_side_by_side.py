#!/usr/bin/env python3
"""Side-by-side benchmark: connectd's MongoDB source vs the official MongoDB
Kafka connector in the Java Connect worker, on the same mongo-sim and broker,
in one run (not a timed test).

For each system under test (SUT), one after the other (never concurrently: the
box has 2 cores):

1. **snapshot**: a fresh worker (distributed mode, fresh internal topics)
   gets a `startup.mode=copy_existing` connector on `bench.docs`, which holds
   N documents of about SIZE bytes (loaded once, before the first SUT).
   JsonConverter with schemas off for keys and values; each connector's
   default JSON output (a JSON string per record). Measured from outside:
   wall time from connector creation until the topic's end offset reaches N,
   worker CPU-seconds (utime+stime from /proc) over the same window, peak RSS
   (VmHWM).
2. **stream**: with the same connector now streaming, a loader writes RATE
   changes/s (80 % inserts, 20 % `$set` updates of earlier stream docs) for
   SECONDS, each write carrying `ts_ns` (client wall clock at write time).
   The data topic is created beforehand with `message.timestamp.type=
   LogAppendTime`, so each record's timestamp is the broker's arrival time;
   latency = arrival − ts_ns (same host, same clock). Reported: p50/p99/p99.9,
   delivered changes/s, worker CPU-seconds per million changes over the
   stream window, peak RSS.
3. The worker is stopped, the stream's documents are deleted (so the next SUT
   copies the same N documents) and the SUT's topics are deleted.

Then a table with both SUTs and the ratios is printed, plus one JSON line.

Usage (see docs/benchmarks.md, "MongoDB source: side by side"):

  eval "$(scripts/dev-env.sh up)"
  CARGO_TARGET_DIR=/work/targets/mongo-rel cargo build --release --bin connectd -p mongo-sim
  python3 connectors/mongodb/bench/bench_side_by_side.py \
      --connectd /work/targets/mongo-rel/release/connectd \
      --sim /work/targets/mongo-rel/release/mongo-sim --docs 1000000 --rate 10000 --stream-seconds 30

Options: --only connectd|official, --docs, --size, --rate, --stream-seconds,
--producer "k=v ..." (added as producer.k=v to BOTH workers; default
linger.ms=5 batch.size=262144), --out DIR (configs, logs, results).
The official connector's jar comes from Maven Central through
scripts/maven/mongo-kafka/pom.xml (see there for the version).
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import pymongo
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
CACHE = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "connectd")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def http(base, method, path, body=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            t = r.read().decode()
            return r.status, (json.loads(t) if t.strip() else None)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, None


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def status_mb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def pct(sorted_vals, p):
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, max(0, int(round(p / 100 * len(sorted_vals))) - 1))
    return sorted_vals[i]


class Kafka:
    def __init__(self, bootstrap):
        self.bootstrap = bootstrap
        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-mongo-unused",
                           "enable.auto.commit": False, "log_level": 3})

    def create_topic(self, topic):
        # LogAppendTime: the record timestamp is when the broker appended it,
        # i.e. the arrival time the latency is measured against.
        fs = self.admin.create_topics([NewTopic(topic, 1, 1, config={"message.timestamp.type": "LogAppendTime"})])
        for f in fs.values():
            f.result()

    def delete_topics(self, prefix):
        md = self.admin.list_topics(timeout=10)
        names = [t for t in md.topics if t.startswith(prefix)]
        if names:
            for f in self.admin.delete_topics(names).values():
                try:
                    f.result()
                except Exception:  # already gone
                    pass

    def end_offset(self, topic):
        try:
            return self.c.get_watermark_offsets(TopicPartition(topic, 0), timeout=5)[1]
        except Exception:
            return 0

    def read(self, topic, start, end):
        """(arrival_ms, value bytes) of offsets [start, end)."""
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"bench-read-{os.getpid()}",
                      "enable.auto.commit": False, "log_level": 3, "fetch.max.bytes": 52428800})
        c.assign([TopicPartition(topic, 0, start)])
        out = []
        idle = time.monotonic()
        while len(out) < end - start and time.monotonic() - idle < 30:
            msgs = c.consume(10000, 1.0)
            for m in msgs:
                if m.error() is None:
                    out.append((m.timestamp()[1], m.value()))
                    idle = time.monotonic()
        c.close()
        return out


def ts_of(value):
    """`ts_ns` of a record value: a JSON string (JsonConverter, schemas off)
    holding the change event; inserts carry it in fullDocument, updates in
    updateDescription.updatedFields (the official connector does not look
    up updates by default, so neither side is configured to)."""
    v = json.loads(value)
    if isinstance(v, str):
        v = json.loads(v)
    for d in (v.get("fullDocument"), (v.get("updateDescription") or {}).get("updatedFields")):
        if isinstance(d, dict) and "ts_ns" in d:
            t = d["ts_ns"]
            return int(t["$numberLong"]) if isinstance(t, dict) else int(t)
    return None


class Loader(threading.Thread):
    """Token-bucket writer: every 10 ms, the writes due so far, as one
    insert_many plus one update_many by `_id` list. `ts_ns` is stamped right
    before each write command is sent."""

    def __init__(self, coll, first_id, rate, seconds, pad):
        super().__init__(name="bench-loader", daemon=True)
        self.coll, self.next_id, self.rate, self.seconds, self.pad = coll, first_id, rate, seconds, pad
        self.first_id = first_id
        self.inserts = self.updates = 0
        self.behind_max = 0

    def run(self):
        t0 = time.monotonic()
        done = 0
        upd_cursor = self.first_id
        while True:
            now = time.monotonic() - t0
            if now >= self.seconds:
                break
            due = int(now * self.rate) - done
            self.behind_max = max(self.behind_max, due)
            if due <= 0:
                time.sleep(0.002)
                continue
            due = min(due, 2000)
            n_upd = due // 5 if self.next_id - upd_cursor > due else 0
            n_ins = due - n_upd
            ts = time.time_ns()
            self.coll.insert_many([{"_id": i, "n": i, "ts_ns": ts, "pad": self.pad}
                                   for i in range(self.next_id, self.next_id + n_ins)], ordered=False)
            self.next_id += n_ins
            if n_upd:
                ts = time.time_ns()
                ids = list(range(upd_cursor, upd_cursor + n_upd))
                upd_cursor += n_upd
                self.coll.update_many({"_id": {"$in": ids}}, {"$set": {"ts_ns": ts, "u": 1}})
            self.inserts += n_ins
            self.updates += n_upd
            done += due
        self.elapsed = time.monotonic() - t0


def worker_props(kafka, g, rest_port, producer):
    p = {"bootstrap.servers": kafka, "group.id": g, "config.storage.topic": g + "-c",
         "offset.storage.topic": g + "-o", "status.storage.topic": g + "-s",
         "config.storage.replication.factor": "1", "offset.storage.replication.factor": "1",
         "status.storage.replication.factor": "1",
         "key.converter": "org.apache.kafka.connect.json.JsonConverter",
         "value.converter": "org.apache.kafka.connect.json.JsonConverter",
         "key.converter.schemas.enable": "false", "value.converter.schemas.enable": "false",
         "listeners": f"http://127.0.0.1:{rest_port}", "rest.advertised.host.name": "127.0.0.1",
         "offset.flush.interval.ms": "1000"}
    for kv in producer.split():
        k, v = kv.split("=", 1)
        p["producer." + k] = v
    return p


def start_sut(sut, a, work, g, rest_port, kafka):
    props = worker_props(kafka, g, rest_port, a.producer)
    if sut == "official":
        props["plugin.path"] = a.official_lib
    path = f"{work}/{sut}.properties"
    with open(path, "w") as f:
        f.write("".join(f"{k}={v}\n" for k, v in props.items()))
    if sut == "connectd":
        p = subprocess.Popen([a.connectd, "distributed", path], stdout=subprocess.DEVNULL,
                             stderr=open(f"{work}/connectd.log", "w"), start_new_session=True)
        return p.pid, p
    env = dict(os.environ)
    env.setdefault("CONNECT_HEAP_OPTS", "-Xms256M -Xmx2G")
    env.setdefault("CONNECT_JVM_OPTS", "-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 "
                   "-XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent "
                   "-XX:MaxInlineLevel=15 -Djava.awt.headless=true")
    env["CONNECT_LOG4J_OPTS"] = (f"-Dlog4j.configuration=file:{REPO}/scripts/bench/connect-log4j-file.properties "
                                 f"-Dbench.log.file={work}/official.log")
    out = subprocess.run([f"{REPO}/scripts/java-connect.sh", "start", path, f"{work}/official.stdout"],
                         env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]), None


def stop_sut(pid, proc):
    if proc is not None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return
    subprocess.run([f"{REPO}/scripts/java-connect.sh", "stop", str(pid), "30"], capture_output=True)


def run_sut(sut, a, k, uri, coll, work):
    g = f"mbench-{sut}-{os.getpid()}-{int(time.time())}"
    topic = f"{g}.bench.docs"
    k.create_topic(topic)
    rest_port = free_port()
    base = f"http://127.0.0.1:{rest_port}"
    res = {"sut": sut, "load_avg_before": loadavg()}
    pid, proc = start_sut(sut, a, work, g, rest_port, k.bootstrap)
    try:
        t = time.monotonic()
        while http(base, "GET", "/connectors")[0] != 200:
            if not os.path.exists(f"/proc/{pid}"):
                sys.exit(f"{sut} worker exited; see {work}")
            if time.monotonic() - t > 180:
                sys.exit(f"{sut} REST API did not come up; see {work}")
            time.sleep(0.3)
        # connectTimeoutMS also bounds the Java driver's server-monitor
        # reads: mongo-sim answers nothing while it runs the official
        # connector's one aggregation over the whole collection (tens of
        # seconds at 1 M documents), and with the default 10 s the monitor
        # gives up, clears the pool and the copy fails. Same URI for both.
        cfg = {"connection.uri": uri + "&connectTimeoutMS=300000", "database": "bench", "collection": "docs",
               "startup.mode": "copy_existing", "topic.prefix": g, "tasks.max": "1"}
        if sut == "connectd":
            cfg.update({"connector.class": "io.connectd.mongodb.MongoSourceConnector",
                        "snapshot.parallelism": a.parallelism, "snapshot.chunk.size.mb": a.chunk_mb})
            # Extra connector settings for experiments, e.g. '{"batch.size": "1000"}'.
            cfg.update(json.loads(os.environ.get("BENCH_CONNECTD_PROPS", "{}")))
        else:
            cfg.update({"connector.class": "com.mongodb.kafka.connect.MongoSourceConnector"})
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        while True:
            # 409 while the worker is still joining its group: retry.
            code, body = http(base, "POST", "/connectors", {"name": "mbench", "config": cfg})
            if code == 201:
                break
            if code != 409 or time.monotonic() - t0 > 120:
                sys.exit(f"{sut}: creating the connector failed: {code} {body}")
            time.sleep(0.2)
        first_t = first_cpu = None
        while True:
            n = k.end_offset(topic)
            if n > 0 and first_t is None:
                first_t, first_cpu = time.monotonic(), cpu_seconds(pid)
            if n >= a.docs:
                break
            if not os.path.exists(f"/proc/{pid}"):
                sys.exit(f"{sut} worker died during the snapshot; see {work}")
            if time.monotonic() - t0 > a.timeout:
                sys.exit(f"{sut}: snapshot did not finish within {a.timeout}s ({n}/{a.docs}); see {work}")
            time.sleep(0.05)
        t1, cpu1 = time.monotonic(), cpu_seconds(pid)
        res["snapshot"] = {
            "docs": a.docs, "seconds": round(t1 - t0, 2), "docs_per_sec": round(a.docs / (t1 - t0)),
            "seconds_first_to_last": round(t1 - first_t, 2),
            "cpu_s": round(cpu1 - cpu0, 2), "cpu_s_per_million": round((cpu1 - cpu0) / a.docs * 1e6, 2),
            "peak_rss_mb": round(status_mb(pid, "VmHWM"), 1)}
        log(sut, "snapshot", json.dumps(res["snapshot"]))
        # Let the connector switch to streaming (both open their change stream
        # from a token taken before the copy; give them time to catch up).
        time.sleep(3)
        # The worker's CPU while idle (streaming, nothing to read): part of
        # every CPU-per-change figure below at a fixed offered rate.
        c_idle0 = cpu_seconds(pid)
        time.sleep(3)
        res["idle_cpu_s_per_s"] = round((cpu_seconds(pid) - c_idle0) / 3, 3)
        base_off = k.end_offset(topic)
        if base_off != a.docs:
            log(sut, f"warning: topic holds {base_off} records after the snapshot, expected {a.docs}")
        res["load_avg_before_stream"] = loadavg()
        loader = Loader(coll, 10_000_000, a.rate, a.stream_seconds, "y" * max(0, a.stream_size - 60))
        rss_max = [0.0]
        stop_sampling = threading.Event()

        def sample():
            while not stop_sampling.wait(0.2):
                try:
                    rss_max[0] = max(rss_max[0], status_mb(pid, "VmRSS"))
                except OSError:
                    return
        sampler = threading.Thread(target=sample, name="bench-rss", daemon=True)
        sampler.start()
        cpu_s0, ts0 = cpu_seconds(pid), time.monotonic()
        loader.start()
        loader.join()
        expected = loader.inserts + loader.updates
        deadline = time.monotonic() + 60
        while k.end_offset(topic) < base_off + expected and time.monotonic() < deadline:
            time.sleep(0.05)
        ts1, cpu_s1 = time.monotonic(), cpu_seconds(pid)
        stop_sampling.set()
        got = k.end_offset(topic) - base_off
        recs = k.read(topic, base_off, base_off + got)
        lat = []
        for arrival_ms, v in recs:
            ts = ts_of(v) if v else None
            if ts is not None:
                lat.append(arrival_ms - ts / 1e6)
        lat.sort()
        res["stream"] = {
            "offered_rate": a.rate, "seconds": a.stream_seconds,
            "written": expected, "inserts": loader.inserts, "updates": loader.updates,
            "achieved_write_rate": round(expected / loader.elapsed),
            "delivered": got, "delivered_per_sec": round(got / (ts1 - ts0)),
            "latency_ms_p50": round(pct(lat, 50), 1) if lat else None,
            "latency_ms_p99": round(pct(lat, 99), 1) if lat else None,
            "latency_ms_p999": round(pct(lat, 99.9), 1) if lat else None,
            "latency_ms_max": round(lat[-1], 1) if lat else None,
            "cpu_s": round(cpu_s1 - cpu_s0, 2),
            "cpu_s_per_million": round((cpu_s1 - cpu_s0) / max(got, 1) * 1e6, 2),
            "peak_rss_mb_stream_window": round(rss_max[0], 1),
            "peak_rss_mb": round(status_mb(pid, "VmHWM"), 1)}
        log(sut, "stream", json.dumps(res["stream"]))
    finally:
        stop_sut(pid, proc)
        coll.delete_many({"_id": {"$gte": 10_000_000}})
        if not os.environ.get("BENCH_KEEP_TOPICS"):
            k.delete_topics(g)
    return res


def main():
    # SIGTERM (e.g. `timeout`) must still stop the worker and the simulator.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--connectd", default="/work/targets/mongo-rel/release/connectd")
    ap.add_argument("--sim", default="/work/targets/mongo-rel/release/mongo-sim")
    ap.add_argument("--official-lib", default=os.path.join(CACHE, "mongo-kafka-2.0.1", "lib"))
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--rate", type=int, default=10_000)
    ap.add_argument("--stream-seconds", type=int, default=30)
    ap.add_argument("--stream-size", type=int, default=1000)
    ap.add_argument("--chunk-mb", default="16")
    ap.add_argument("--parallelism", default="2")
    ap.add_argument("--producer", default="linger.ms=5 batch.size=262144")
    ap.add_argument("--only", choices=["connectd", "official"])
    ap.add_argument("--timeout", type=int, default=1800)
    ap.add_argument("--out")
    a = ap.parse_args()
    kafka = os.environ.get("KAFKA_BOOTSTRAP") or "127.0.0.1:9092"
    if not os.path.exists(os.path.join(a.official_lib, ".complete")) and a.only != "connectd":
        log("fetching the official connector jar (scripts/maven/mongo-kafka/pom.xml)")
        tmp = a.official_lib + f".tmp.{os.getpid()}"
        subprocess.run(["mvn", "-q", "-B", "-f", f"{REPO}/scripts/maven/mongo-kafka/pom.xml",
                        "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies",
                        "-DincludeScope=runtime", f"-DoutputDirectory={tmp}"], check=True)
        open(os.path.join(tmp, ".complete"), "w").close()
        os.makedirs(os.path.dirname(a.official_lib), exist_ok=True)
        os.rename(tmp, a.official_lib)
    work = a.out or tempfile.mkdtemp(prefix="mongo-sbs-")
    os.makedirs(work, exist_ok=True)
    sim_port = free_port()
    sim = subprocess.Popen([a.sim, "--port", str(sim_port), "--repl-set", "rs0"], stdout=subprocess.DEVNULL,
                           stderr=open(f"{work}/sim.log", "w"), start_new_session=True)
    results = []
    try:
        uri = f"mongodb://127.0.0.1:{sim_port}/?replicaSet=rs0"
        for _ in range(100):
            try:
                pymongo.MongoClient(uri, serverSelectionTimeoutMS=200).admin.command("ping")
                break
            except Exception:
                time.sleep(0.1)
        coll = pymongo.MongoClient(uri)["bench"]["docs"]
        pad = "x" * max(0, a.size - 60)
        t = time.time()
        for i in range(0, a.docs, 2000):
            coll.insert_many([{"_id": j, "n": j, "pad": pad} for j in range(i, min(i + 2000, a.docs))], ordered=False)
        log(f"loaded {a.docs} docs of ~{a.size} B in {time.time() - t:.1f}s into mongo-sim :{sim_port}; out={work}")
        k = Kafka(kafka)
        for sut in ["connectd", "official"]:
            if a.only and a.only != sut:
                continue
            log(f"running {sut} (load {loadavg()})")
            results.append(run_sut(sut, a, k, uri, coll, work))
    finally:
        sim.send_signal(signal.SIGTERM)
        try:
            sim.wait(20)
        except subprocess.TimeoutExpired:
            sim.kill()
    by = {r["sut"]: r for r in results}
    rows = [("snapshot docs/s", "snapshot", "docs_per_sec", "hi"),
            ("snapshot seconds (create → last record)", "snapshot", "seconds", "lo"),
            ("snapshot worker CPU-s per 1 M docs", "snapshot", "cpu_s_per_million", "lo"),
            ("snapshot peak RSS MiB", "snapshot", "peak_rss_mb", "lo"),
            ("stream delivered changes/s", "stream", "delivered_per_sec", "hi"),
            ("stream latency p50 ms", "stream", "latency_ms_p50", "lo"),
            ("stream latency p99 ms", "stream", "latency_ms_p99", "lo"),
            ("stream latency p99.9 ms", "stream", "latency_ms_p999", "lo"),
            ("stream worker CPU-s per 1 M changes", "stream", "cpu_s_per_million", "lo"),
            ("stream peak RSS MiB (window)", "stream", "peak_rss_mb_stream_window", "lo"),
            ("idle worker CPU-s per second", None, "idle_cpu_s_per_s", "lo")]
    print(f"\n| metric | connectd | official | connectd advantage |\n|---|---:|---:|---:|")
    for label, phase, key, better in rows:
        pick = lambda r: (r.get(phase, {}) if phase else r).get(key)
        c = pick(by.get("connectd", {}))
        o = pick(by.get("official", {}))
        ratio = ""
        if c and o:
            ratio = f"{(c / o if better == 'hi' else o / c):.2f}×"
        print(f"| {label} | {c} | {o} | {ratio} |")
    for r in results:
        print(f"\nload average before {r['sut']}: snapshot {r['load_avg_before']}, stream {r.get('load_avg_before_stream')}")
    print(json.dumps({"docs": a.docs, "size": a.size, "rate": a.rate, "stream_seconds": a.stream_seconds,
                      "results": results}))
    with open(f"{work}/results.json", "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
