#!/usr/bin/env python3
"""Snapshot benchmark of the MongoDB source connector (not a timed test).

Loads N documents of about SIZE bytes into a private mongo-sim, starts a
release `connectd` worker process against the real broker (KAFKA_BOOTSTRAP),
creates a copy_existing connector (JsonConverter, schemas off) and measures,
until every chunk offset is committed: docs/s, worker CPU-seconds per million
documents and peak RSS. Usage:

  eval "$(scripts/dev-env.sh up)"
  CARGO_TARGET_DIR=/work/targets/mongo-rel cargo build --release --bin connectd
  python3 connectors/mongodb/bench/bench_snapshot.py --connectd /work/targets/mongo-rel/release/connectd \
      --sim /work/targets/env/release/mongo-sim --docs 200000 --size 1000
"""
import argparse, json, os, signal, socket, subprocess, sys, tempfile, time, urllib.request

import pymongo


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def http(base, method, path, body=None):
    req = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            t = r.read().decode(); return r.status, (json.loads(t) if t.strip() else None)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, None


def cpu_seconds(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connectd", required=True); ap.add_argument("--sim", required=True)
    ap.add_argument("--docs", type=int, default=200000); ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--chunk-mb", default="16"); ap.add_argument("--parallelism", default="2")
    ap.add_argument("--tasks", default="1")
    ap.add_argument("--avro-registry", default="", help="schema registry URL: AvroConverter keys and values with "
                    "output.format.*=schema and inference (docs/avro.md) instead of JsonConverter")
    a = ap.parse_args()
    kafka = os.environ.get("KAFKA_BOOTSTRAP") or sys.exit("KAFKA_BOOTSTRAP is not set")
    work = tempfile.mkdtemp(prefix="mongo-bench-")
    sim_port, rest_port = free_port(), free_port()
    sim = subprocess.Popen([a.sim, "--port", str(sim_port), "--repl-set", "rs0"], stdout=subprocess.DEVNULL,
                           stderr=open(f"{work}/sim.log", "w"))
    worker = None
    g = None
    try:
        uri = f"mongodb://127.0.0.1:{sim_port}/?replicaSet=rs0"
        for _ in range(100):
            try:
                pymongo.MongoClient(uri, serverSelectionTimeoutMS=200).admin.command("ping"); break
            except Exception:
                time.sleep(0.1)
        coll = pymongo.MongoClient(uri)["bench"]["docs"]
        pad = "x" * max(0, a.size - 60)
        t = time.time()
        for i in range(0, a.docs, 2000):
            coll.insert_many([{"_id": j, "n": j, "pad": pad} for j in range(i, min(i + 2000, a.docs))], ordered=False)
        print(f"loaded {a.docs} docs in {time.time() - t:.1f}s", file=sys.stderr)
        g = f"bench-{os.getpid()}-{int(time.time())}"
        props = {"bootstrap.servers": kafka, "group.id": g, "config.storage.topic": g + "-c", "offset.storage.topic": g + "-o",
                 "status.storage.topic": g + "-s", "config.storage.replication.factor": "1",
                 "offset.storage.replication.factor": "1", "status.storage.replication.factor": "1",
                 "key.converter": "org.apache.kafka.connect.json.JsonConverter",
                 "value.converter": "org.apache.kafka.connect.json.JsonConverter",
                 "key.converter.schemas.enable": "false", "value.converter.schemas.enable": "false",
                 "listeners": f"http://127.0.0.1:{rest_port}", "offset.flush.interval.ms": "1000"}
        if a.avro_registry:
            for side in ("key", "value"):
                props[f"{side}.converter"] = "io.confluent.connect.avro.AvroConverter"
                props[f"{side}.converter.schema.registry.url"] = a.avro_registry
                props.pop(f"{side}.converter.schemas.enable")
        open(f"{work}/w.properties", "w").write("".join(f"{k}={v}\n" for k, v in props.items()))
        worker = subprocess.Popen([a.connectd, "distributed", f"{work}/w.properties"], stdout=subprocess.DEVNULL,
                                  stderr=open(f"{work}/worker.log", "w"))
        base = f"http://127.0.0.1:{rest_port}"
        while http(base, "GET", "/health")[0] != 200:
            time.sleep(0.2)
        name = "bench"
        cfg = {"connector.class": "io.connectd.mongodb.MongoSourceConnector", "connection.uri": uri, "database": "bench",
               "collection": "docs", "startup.mode": "copy_existing", "topic.prefix": g, "tasks.max": a.tasks,
               "snapshot.parallelism": a.parallelism, "snapshot.chunk.size.mb": a.chunk_mb}
        if a.avro_registry:
            cfg.update({"output.format.key": "schema", "output.format.value": "schema",
                        "output.schema.infer.value": "true", "output.schema.registry.url": a.avro_registry})
        cpu0 = cpu_seconds(worker.pid)
        t0 = time.time()
        while http(base, "POST", "/connectors", {"name": name, "config": cfg})[0] != 201:
            time.sleep(0.2)
        total = None
        while True:
            code, prog = http(base, "GET", f"/connectors/{name}/progress")
            prog = prog if isinstance(prog, dict) else {}
            p = prog.get("progress") or {}
            total = p.get("chunks_total") or total
            code, offs = http(base, "GET", f"/connectors/{name}/offsets")
            offs = offs if isinstance(offs, dict) else {}
            done = sum(1 for o in (offs or {}).get("offsets", []) if "chunk" in o["partition"] and o["offset"].get("done") == "true")
            if total and done >= total:
                break
            if time.time() - t0 > 1800:
                sys.exit(f"timed out; progress {prog}")
            time.sleep(0.2)
        secs = time.time() - t0
        cpu = cpu_seconds(worker.pid) - cpu0
        res = {"docs": a.docs, "doc_bytes": a.size, "chunks": total, "seconds": round(secs, 2),
               "docs_per_sec": round(a.docs / secs), "worker_cpu_s_per_million": round(cpu / a.docs * 1e6, 1),
               "peak_rss_mb": round(peak_rss_mb(worker.pid), 1), "parallelism": a.parallelism, "tasks": a.tasks,
               "converter": "avro" if a.avro_registry else "json"}
        print(json.dumps(res))
    finally:
        for p in (worker, sim):
            if p:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
        if g:
            delete_topics(kafka, g)


def delete_topics(kafka, prefix):
    """Each run writes ~1 GB per million documents; without this, repeated
    runs filled the broker's disk."""
    try:
        from confluent_kafka.admin import AdminClient
    except ImportError:
        print(f"confluent-kafka is not installed: delete the topics starting with {prefix} yourself", file=sys.stderr)
        return
    admin = AdminClient({"bootstrap.servers": kafka})
    topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    for t, f in admin.delete_topics(topics, operation_timeout=30).items() if topics else []:
        try:
            f.result()
        except Exception as e:  # keep going: the result line is already printed
            print(f"could not delete topic {t}: {e}", file=sys.stderr)


if __name__ == "__main__":
    main()
