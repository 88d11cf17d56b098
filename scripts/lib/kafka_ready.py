#!/usr/bin/env python3
"""kafka_ready.py HOST:PORT [TIMEOUT_S]

Readiness probe used by scripts/dev-env.sh: sends one real Kafka Metadata
request (v4, all topics, stdlib only) and exits 0 when the broker answers with
at least one broker and a controller id. Prints the answer on stderr.
Exit 1 on any error (connection refused, short read, no brokers yet).
"""
import socket
import struct
import sys


def kstr(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    api_key, api_version, corr = 3, 4, 42  # Metadata v4
    header = struct.pack(">hhi", api_key, api_version, corr) + kstr("connectd-dev-env")
    body = struct.pack(">i", -1) + b"\x00"  # topics=null (all), allow_auto_topic_creation=false
    req = header + body
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(struct.pack(">i", len(req)) + req)
        (size,) = struct.unpack(">i", read_exact(s, 4))
        resp = read_exact(s, size)
    off = 0
    (rcorr, _throttle, nbrokers) = struct.unpack_from(">iii", resp, off)
    off += 12
    if rcorr != corr:
        raise ValueError("bad correlation id %d" % rcorr)
    brokers = []
    for _ in range(nbrokers):
        (node,) = struct.unpack_from(">i", resp, off)
        off += 4
        (hl,) = struct.unpack_from(">h", resp, off)
        off += 2
        h = resp[off:off + hl].decode()
        off += hl
        (p, rl) = struct.unpack_from(">ih", resp, off)
        off += 6
        if rl > 0:
            off += rl
        brokers.append("%d@%s:%d" % (node, h, p))
    (cl,) = struct.unpack_from(">h", resp, off)
    off += 2
    cluster = resp[off:off + cl].decode() if cl >= 0 else None
    off += max(cl, 0)
    (controller,) = struct.unpack_from(">i", resp, off)
    if not brokers or controller < 0:
        raise ValueError("no brokers/controller yet")
    print("metadata ok: cluster=%s brokers=%s controller=%d" % (cluster, ",".join(brokers), controller),
          file=sys.stderr)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - a probe: any failure means "not ready"
        print("not ready: %s" % e, file=sys.stderr)
        sys.exit(1)
