#!/usr/bin/env python3
"""capture_java_golden.py: drive a running reference Java Connect worker
(distributed mode) through a fixed scenario and record what it did.

Run by scripts/capture-java-golden.sh, which starts the broker and the worker
and passes the settings below as arguments. Writes into OUT_DIR:

  topics.jsonl  every record the worker wrote to its config, offsets and status
                topics, in order, tagged with the scenario step after which it
                was first seen. Fields: step, topic, partition, offset, key,
                value (key/value: exact UTF-8 text of the record bytes, null
                for a null key / tombstone), headers.
  rest.jsonl    one REST exchange per line: step, method, path, request (JSON
                body sent, or raw text for the malformed-JSON case), status,
                content_type, location, body (parsed JSON, raw text if not
                JSON, null if empty).
  topics-meta.json  partitions and non-default configs of the internal topics.
  data.jsonl    the first records the VerifiableSourceConnector task produced
                (same fields as topics.jsonl, without step), i.e. what
                JsonConverter with schemas.enable=true writes.

Scenario steps: start, plugins, validate, errors, create, running, pause,
resume, stop, offsets-stopped, resume-after-stop, restart, delete.
"""
import argparse
import json
import sys
import time
import urllib.error
import urllib.request

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType


def log(msg):
    print("[capture-golden] %s" % msg, file=sys.stderr, flush=True)


class Rest:
    def __init__(self, base, out):
        self.base = base.rstrip("/")
        self.out = out
        self.step = "start"

    def call(self, method, path, body=None, raw=None, record=True, content_type="application/json"):
        data = None
        headers = {"Accept": "application/json"}
        if raw is not None:
            data = raw.encode()
        elif body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                status, text, hdrs = r.status, r.read().decode(), r.headers
        except urllib.error.HTTPError as e:
            status, text, hdrs = e.code, e.read().decode(), e.headers
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text
        if record:
            self.out.write(json.dumps({
                "step": self.step,
                "method": method,
                "path": path,
                "request": raw if raw is not None else body,
                "status": status,
                "content_type": hdrs.get("Content-Type"),
                "location": hdrs.get("Location"),
                "body": parsed,
            }) + "\n")
            self.out.flush()
        return status, parsed

    def until(self, method, path, pred, timeout=90, what=""):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = self.call(method, path, record=False)
            if pred(*last):
                return last
            time.sleep(0.5)
        raise SystemExit("timed out waiting for %s on %s %s; last answer: %r" % (what, method, path, last))


class Dumper:
    """Reads the internal topics incrementally; each dump() emits only records
    not seen by a previous dump()."""

    def __init__(self, bootstrap, topics, out):
        self.topics = topics
        self.out = out
        self.c = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": "capture-golden-unused",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        })
        self.parts = []
        md = self.c.list_topics(timeout=30)
        for t in topics:
            tm = md.topics.get(t)
            if tm is None or tm.error is not None:
                raise SystemExit("topic %s missing" % t)
            for p in sorted(tm.partitions):
                self.parts.append(TopicPartition(t, p, 0))
        self.c.assign(self.parts)
        self.pos = {(tp.topic, tp.partition): 0 for tp in self.parts}

    def dump(self, step):
        ends = {}
        for tp in self.parts:
            _lo, hi = self.c.get_watermark_offsets(tp, timeout=30)
            ends[(tp.topic, tp.partition)] = hi
        recs = []
        deadline = time.time() + 60
        while any(self.pos[k] < ends[k] for k in ends):
            if time.time() > deadline:
                raise SystemExit("timed out reading internal topics")
            m = self.c.poll(1.0)
            if m is None or m.error():
                continue
            k = (m.topic(), m.partition())
            if m.offset() < self.pos[k]:
                continue
            self.pos[k] = m.offset() + 1
            if m.offset() >= ends[k]:
                # Written after the watermark snapshot; belongs to the next step.
                self.pos[k] = m.offset()
                self.c.seek(TopicPartition(k[0], k[1], m.offset()))
                continue
            recs.append(m)
        recs.sort(key=lambda m: (self.topics.index(m.topic()), m.partition(), m.offset()))
        for m in recs:
            key, val = m.key(), m.value()
            self.out.write(json.dumps({
                "step": step,
                "topic": m.topic(),
                "partition": m.partition(),
                "offset": m.offset(),
                "key": None if key is None else key.decode("utf-8"),
                "value": None if val is None else val.decode("utf-8"),
                "headers": [[h, None if v is None else v.decode("utf-8", "replace")]
                            for h, v in (m.headers() or [])],
            }) + "\n")
        self.out.flush()
        log("step %-18s %d new internal-topic records" % (step, len(recs)))


def sample_data(bootstrap, topic, n, path):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "capture-golden-data",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.time() + 30
    while len(got) < n and time.time() < deadline:
        m = c.poll(1.0)
        if m is not None and not m.error():
            got.append(m)
    c.close()
    with open(path, "w") as f:
        for m in got:
            key, val = m.key(), m.value()
            f.write(json.dumps({
                "topic": m.topic(), "partition": m.partition(), "offset": m.offset(),
                "key": None if key is None else key.decode("utf-8"),
                "value": None if val is None else val.decode("utf-8"),
                "headers": [[h, None if v is None else v.decode("utf-8", "replace")]
                            for h, v in (m.headers() or [])],
            }) + "\n")


def topics_meta(bootstrap, topics):
    a = AdminClient({"bootstrap.servers": bootstrap})
    md = a.list_topics(timeout=30)
    res = [ConfigResource(ResourceType.TOPIC, t) for t in topics]
    meta = {}
    for r, f in a.describe_configs(res).items():
        cfg = f.result()
        meta[r.name] = {
            "partitions": len(md.topics[r.name].partitions),
            "replication_factor": len(md.topics[r.name].partitions[0].replicas),
            "configs": {k: v.value for k, v in sorted(cfg.items())
                        if not v.is_default and v.source == 1},  # DYNAMIC_TOPIC_CONFIG
        }
    return meta


def state_is(conn_state, task_state=None, ntasks=None):
    def pred(status, body):
        if status != 200 or not isinstance(body, dict):
            return False
        if body.get("connector", {}).get("state") != conn_state:
            return False
        tasks = body.get("tasks", [])
        if ntasks is not None and len(tasks) != ntasks:
            return False
        if task_state is not None and (not tasks or any(t.get("state") != task_state for t in tasks)):
            return False
        return True
    return pred


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rest", required=True)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--config-topic", required=True)
    ap.add_argument("--offsets-topic", required=True)
    ap.add_argument("--status-topic", required=True)
    ap.add_argument("--data-topic", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    topics = [a.config_topic, a.offsets_topic, a.status_topic]
    rest_f = open(a.out + "/rest.jsonl", "w")
    topics_f = open(a.out + "/topics.jsonl", "w")
    rest = Rest(a.rest, rest_f)
    name = "v"
    cfg = {
        "connector.class": "org.apache.kafka.connect.tools.VerifiableSourceConnector",
        "tasks.max": "1",
        "topic": a.data_topic,
        "throughput": "10",
    }

    # The REST server answers before the worker has joined the group; wait
    # until a leader-bound request can succeed (GET of an unknown connector
    # gives 404 only once the herder is ready, 409/500 before).
    rest.until("GET", "/connectors/__probe__", lambda s, b: s == 404, what="herder ready")

    dumper = Dumper(a.bootstrap, topics, topics_f)
    dumper.dump("start")

    rest.step = "start"
    rest.call("GET", "/")
    rest.call("GET", "/health")
    rest.call("GET", "/connectors")
    rest.call("GET", "/admin/loggers")

    rest.step = "plugins"
    rest.call("GET", "/connector-plugins")
    rest.call("GET", "/connector-plugins?connectorsOnly=false")
    rest.call("GET", "/connector-plugins/VerifiableSourceConnector/config")

    rest.step = "validate"
    rest.call("PUT", "/connector-plugins/VerifiableSourceConnector/config/validate",
              {"connector.class": "org.apache.kafka.connect.tools.VerifiableSourceConnector",
               "name": "bad", "tasks.max": "0", "throughput": "not-a-number"})
    rest.call("PUT", "/connector-plugins/org.apache.kafka.connect.tools.VerifiableSourceConnector/config/validate",
              dict(cfg, name="good"))
    rest.call("PUT", "/connector-plugins/NoSuchConnector/config/validate",
              {"connector.class": "NoSuchConnector", "name": "x"})

    rest.step = "errors"
    rest.call("GET", "/connectors/nope")
    rest.call("GET", "/connectors/nope/status")
    rest.call("GET", "/connectors/nope/config")
    rest.call("DELETE", "/connectors/nope")
    rest.call("PUT", "/connectors/nope/pause")
    rest.call("GET", "/no/such/path")
    rest.call("POST", "/connectors", raw='{"name": "broken", "config": {')
    rest.call("POST", "/connectors", {"name": "noclass", "config": {"tasks.max": "1"}})
    rest.call("POST", "/connectors", {"name": "unknownclass", "config": {"connector.class": "com.example.Nope"}})
    rest.call("POST", "/connectors", raw='{"name":"x","config":{}}', content_type="text/plain")
    dumper.dump("errors")

    rest.step = "create"
    rest.call("POST", "/connectors", {"name": name, "config": cfg})
    rest.call("POST", "/connectors", {"name": name, "config": cfg})  # 409 duplicate
    rest.until("GET", "/connectors/%s/status" % name, state_is("RUNNING", "RUNNING", 1), what="RUNNING")
    dumper.dump("create")

    rest.step = "running"
    time.sleep(3)  # let at least one offset flush happen (offset.flush.interval.ms=1000)
    for p in ["/connectors", "/connectors?expand=status", "/connectors?expand=info",
              "/connectors?expand=status&expand=info",
              "/connectors/%s" % name, "/connectors/%s/config" % name, "/connectors/%s/status" % name,
              "/connectors/%s/tasks" % name, "/connectors/%s/tasks-config" % name,
              "/connectors/%s/tasks/0/status" % name, "/connectors/%s/tasks/7/status" % name,
              "/connectors/%s/topics" % name, "/connectors/%s/offsets" % name]:
        rest.call("GET", p)
    rest.call("PATCH", "/connectors/%s/offsets" % name,
              {"offsets": [{"partition": {"id": 0}, "offset": {"seqno": 0}}]})  # 400: not stopped
    dumper.dump("running")

    rest.step = "pause"
    rest.call("PUT", "/connectors/%s/pause" % name)
    rest.until("GET", "/connectors/%s/status" % name, state_is("PAUSED", "PAUSED"), what="PAUSED")
    time.sleep(2)
    rest.call("GET", "/connectors/%s/status" % name)
    dumper.dump("pause")

    rest.step = "resume"
    rest.call("PUT", "/connectors/%s/resume" % name)
    rest.until("GET", "/connectors/%s/status" % name, state_is("RUNNING", "RUNNING"), what="RUNNING")
    time.sleep(2)
    rest.call("GET", "/connectors/%s/status" % name)
    dumper.dump("resume")

    rest.step = "stop"
    rest.call("PUT", "/connectors/%s/stop" % name)
    rest.until("GET", "/connectors/%s/status" % name, state_is("STOPPED", ntasks=0), what="STOPPED")
    time.sleep(2)
    rest.call("GET", "/connectors/%s/status" % name)
    rest.call("GET", "/connectors/%s/tasks" % name)
    dumper.dump("stop")

    rest.step = "offsets-stopped"
    rest.call("GET", "/connectors/%s/offsets" % name)
    rest.call("PATCH", "/connectors/%s/offsets" % name, {"offsets": []})  # 400
    rest.call("PATCH", "/connectors/%s/offsets" % name,
              {"offsets": [{"partition": {"id": 0}, "offset": {"seqno": 5}}]})
    rest.call("GET", "/connectors/%s/offsets" % name)
    rest.call("DELETE", "/connectors/%s/offsets" % name)
    rest.call("GET", "/connectors/%s/offsets" % name)
    dumper.dump("offsets-stopped")

    rest.step = "resume-after-stop"
    rest.call("PUT", "/connectors/%s/resume" % name)
    rest.until("GET", "/connectors/%s/status" % name, state_is("RUNNING", "RUNNING", 1), what="RUNNING")
    time.sleep(2)
    rest.call("GET", "/connectors/%s/status" % name)
    dumper.dump("resume-after-stop")

    rest.step = "restart"
    rest.call("POST", "/connectors/%s/restart?includeTasks=true" % name)
    rest.until("GET", "/connectors/%s/status" % name, state_is("RUNNING", "RUNNING", 1), what="RUNNING")
    time.sleep(2)
    rest.call("GET", "/connectors/%s/status" % name)
    rest.call("POST", "/connectors/%s/restart" % name)
    rest.call("POST", "/connectors/%s/tasks/0/restart" % name)
    rest.call("POST", "/connectors/%s/tasks/9/restart" % name)
    rest.call("POST", "/connectors/nope/restart?includeTasks=true")
    time.sleep(2)
    dumper.dump("restart")

    rest.step = "delete"
    rest.call("DELETE", "/connectors/%s" % name)
    rest.until("GET", "/connectors/%s" % name, lambda s, b: s == 404, what="deleted")
    time.sleep(3)
    rest.call("GET", "/connectors/%s" % name)
    rest.call("GET", "/connectors/%s/status" % name)
    rest.call("GET", "/connectors")
    dumper.dump("delete")

    sample_data(a.bootstrap, a.data_topic, 5, a.out + "/data.jsonl")
    with open(a.out + "/topics-meta.json", "w") as f:
        json.dump(topics_meta(a.bootstrap, topics), f, indent=2, sort_keys=True)
        f.write("\n")
    rest_f.close()
    topics_f.close()
    log("done")


if __name__ == "__main__":
    main()
