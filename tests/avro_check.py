#!/usr/bin/env python3
"""Independent reader of connectd's Avro topics, driven by tests/mongodb_avro.rs.

  avro_check.py decode BOOTSTRAP REGISTRY TOPIC COUNT
      Reads COUNT records of TOPIC from the beginning and decodes every key
      and value twice: with confluent-kafka's AvroDeserializer (through its
      SchemaRegistryClient) and with fastavro's schemaless_reader on the
      writer schema fetched by id. Exits 1 if the two disagree. Prints one
      JSON line per record: {"key": ..., "value": ..., "key_id", "value_id"},
      with bytes as base64 and timestamp-millis as epoch milliseconds.

  avro_check.py compat REGISTRY SUBJECT
      Sets SUBJECT's compatibility to BACKWARD and asks the registry's
      compatibility endpoint whether each version is compatible with the
      previous one. Prints {"versions": n, "checked": n-1}; exits 1 on the
      first incompatible pair.
"""

import base64
import datetime
import io
import json
import struct
import sys

import fastavro
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def plain(v):
    """Decoded Avro → JSON-able, the same way for both decoders."""
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(bytes(v)).decode()
    if isinstance(v, datetime.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=datetime.timezone.utc)
        return (v - EPOCH) // datetime.timedelta(milliseconds=1)
    return v


def registry_client(registry):
    # Without a timeout the client waits forever on a request the registry
    # never answers (seen once in CI: the test hung 12 minutes on one
    # decode); with one, httpx's timeout is a transport error the client
    # retries on a fresh request.
    return SchemaRegistryClient({"url": registry, "timeout": 15})


def decode(bootstrap, registry, topic, count):
    sr = registry_client(registry)
    deser = AvroDeserializer(sr)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "avro-check",
            "enable.auto.commit": False,
        }
    )
    md = consumer.list_topics(topic, timeout=10)
    parts = [TopicPartition(topic, p, 0) for p in md.topics[topic].partitions]
    consumer.assign(parts)
    parsed = {}

    def by_fastavro(payload):
        if payload[0] != 0:
            raise ValueError(f"magic byte {payload[0]} is not 0")
        sid = struct.unpack(">I", payload[1:5])[0]
        if sid not in parsed:
            text = sr.get_schema(sid).schema_str
            parsed[sid] = fastavro.parse_schema(json.loads(text))
        return sid, fastavro.schemaless_reader(io.BytesIO(payload[5:]), parsed[sid])

    out = []
    idle = 0
    while len(out) < count and idle < 60:
        m = consumer.poll(1.0)
        if m is None:
            idle += 1
            continue
        if m.error():
            raise RuntimeError(str(m.error()))
        rec = {"partition": m.partition(), "offset": m.offset()}
        for field, payload, mf in (
            ("key", m.key(), MessageField.KEY),
            ("value", m.value(), MessageField.VALUE),
        ):
            if payload is None:
                rec[field] = None
                continue
            ctx = SerializationContext(topic, mf)
            a = plain(deser(payload, ctx))
            sid, b = by_fastavro(payload)
            b = plain(b)
            if a != b:
                print(
                    f"decoders disagree at {m.partition()}/{m.offset()} {field}:\n"
                    f"  confluent-kafka: {a}\n  fastavro:        {b}",
                    file=sys.stderr,
                )
                sys.exit(1)
            rec[field] = a
            rec[field + "_id"] = sid
        out.append(rec)
    consumer.close()
    if len(out) < count:
        print(f"only {len(out)} of {count} records in {topic}", file=sys.stderr)
        sys.exit(1)
    for r in out:
        print(json.dumps(r, sort_keys=True))


def compat(registry, subject):
    sr = registry_client(registry)
    sr.set_compatibility(subject_name=subject, level="BACKWARD")
    versions = sorted(sr.get_versions(subject))
    checked = 0
    for prev, cur in zip(versions, versions[1:]):
        schema = sr.get_version(subject, cur).schema
        ok = sr.test_compatibility(subject, Schema(schema.schema_str, "AVRO"), version=prev)
        if not ok:
            print(
                f"{subject}: version {cur} is not BACKWARD compatible with {prev}",
                file=sys.stderr,
            )
            sys.exit(1)
        checked += 1
    print(json.dumps({"versions": len(versions), "checked": checked}))


if __name__ == "__main__":
    if sys.argv[1] == "decode":
        decode(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif sys.argv[1] == "compat":
        compat(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown mode {sys.argv[1]}")
