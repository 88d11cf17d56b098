#!/usr/bin/env python3
"""watch_topic.py BOOTSTRAP TOPIC N PID TIMEOUT_S [POLL_MS=20]

Helper of scripts/bench-worker.sh. Measures one worker run from OUTSIDE the
worker process:

  * throughput: broker-side end offsets (high watermarks) of TOPIC, summed over
    its partitions, read with a confluent-kafka (librdkafka) Consumer every
    POLL_MS via ListOffsets (no records are fetched);
  * CPU: utime+stime of PID from /proc/PID/stat (the process line covers all
    its threads, including exited ones), sampled at the moment the first
    record is seen and at the moment the topic holds >= N records;
  * memory: VmHWM (peak RSS) and the largest sampled VmRSS from
    /proc/PID/status, at the end.

Prints one JSON object on stdout. Exit 1 if PID dies or TIMEOUT_S passes
before N records (the JSON then has "error").
"""
import json
import os
import sys
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # Fields after the parenthesised comm; utime/stime are fields 14/15.
    rest = stat[stat.rindex(")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def main():
    bootstrap, topic, n, pid, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    poll = (int(sys.argv[6]) if len(sys.argv) > 6 else 20) / 1000.0
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-watch-unused",
                  "enable.auto.commit": False, "log_level": 3})
    out = {"topic": topic, "target": n, "pid": pid, "poll_ms": poll * 1000}
    t0 = time.monotonic()
    out["cpu_at_watch_start"] = cpu_seconds(pid)
    partitions = None
    t_first = None
    max_rss = 0
    last = 0
    err = None
    while True:
        now = time.monotonic()
        if not alive(pid):
            err = f"worker pid {pid} died (topic had {last} records)"
            break
        if now - t0 > timeout:
            err = f"timeout after {timeout:.0f}s: topic had {last} of {n} records"
            break
        try:
            if partitions is None:
                md = c.list_topics(topic, timeout=2)
                t = md.topics.get(topic)
                if t is not None and t.error is None and t.partitions:
                    partitions = sorted(t.partitions)
                    out["partitions"] = len(partitions)
            total = 0
            if partitions is not None:
                for p in partitions:
                    _, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=2, cached=False)
                    total += max(hi, 0)
        except KafkaException:
            total = last
        now = time.monotonic()
        cpu = cpu_seconds(pid)
        rss = status_kb(pid, "VmRSS") or 0
        max_rss = max(max_rss, rss)
        if t_first is None and total > 0:
            t_first = now
            out["t_first_s"] = now - t0
            out["cpu_at_first"] = cpu
            out["records_at_first"] = total
        if total >= n:
            out["t_done_s"] = now - t0
            out["cpu_at_done"] = cpu
            out["records_at_done"] = total
            break
        last = total
        time.sleep(poll)
    out["vm_hwm_kb"] = status_kb(pid, "VmHWM") if alive(pid) else None
    out["max_sampled_rss_kb"] = max_rss
    out["threads"] = status_kb(pid, "Threads") if alive(pid) else None
    c.close()
    if err:
        out["error"] = err
        print(json.dumps(out))
        return 1
    wall = out["t_done_s"] - out["t_first_s"]
    cpu = out["cpu_at_done"] - out["cpu_at_first"]
    recs = out["records_at_done"] - out["records_at_first"]
    out["wall_s"] = wall
    out["prod_cpu_s"] = cpu
    out["prod_records"] = recs
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
