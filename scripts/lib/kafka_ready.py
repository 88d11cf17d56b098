#!/usr/bin/env python3
"""kafka_ready.py HOST:PORT [TIMEOUT_S]

Readiness probe used by scripts/dev-env.sh (stdlib only). Ready means:
1. a Metadata request (v4, all topics) answers with a broker and a controller,
2. a FindCoordinator request (v1, group key) answers without error.
The second matters on a fresh broker: __consumer_offsets is created on the
first coordinator lookup, and until it is, every consumer group and every
Connect worker group gets COORDINATOR_NOT_AVAILABLE. Prints the answers on
stderr. Exit 1 on any error (connection refused, short read, not ready yet).
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


def exchange(sock, api_key, api_version, corr, body):
    header = struct.pack(">hhi", api_key, api_version, corr) + kstr("connectd-dev-env")
    req = header + body
    sock.sendall(struct.pack(">i", len(req)) + req)
    (size,) = struct.unpack(">i", read_exact(sock, 4))
    resp = read_exact(sock, size)
    (rcorr,) = struct.unpack_from(">i", resp, 0)
    if rcorr != corr:
        raise ValueError("bad correlation id %d" % rcorr)
    return resp[4:]


def check_coordinator(sock):
    # FindCoordinator v1: key, key_type=0 (group). Response v1: throttle,
    # error_code, error_message, node_id, host, port.
    resp = exchange(sock, 10, 1, 43, kstr("connectd-dev-env-probe") + b"\x00")
    (_throttle, err) = struct.unpack_from(">ih", resp, 0)
    if err != 0:
        raise ValueError("group coordinator not available yet (error code %d)" % err)
    print("coordinator ok", file=sys.stderr)


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    # Metadata v4: topics=null (all), allow_auto_topic_creation=false
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.settimeout(timeout)
        resp = exchange(s, 3, 4, 42, struct.pack(">i", -1) + b"\x00")
        check_metadata(resp)
        check_coordinator(s)


def check_metadata(resp):
    off = 0
    (_throttle, nbrokers) = struct.unpack_from(">ii", resp, off)
    off += 8
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
