#!/usr/bin/env python3
"""quickstart_mongo.py: the MongoDB and Kafka side of scripts/quickstart.sh.

  seed   URI DB COLL N     drop DB.COLL and insert N orders (int, string and
                           ObjectId _ids, nested documents, arrays)
  change URI DB COLL R     update, replace, delete and insert some orders
                           (R: a round number, makes the inserted _ids new)
  check  URI DB COLL BOOTSTRAP TOPIC CHANGELOG [CHANGELOG...]
                           wait (up to 90 s) until
                           * TOPIC (upserts: key {"_id":..}, value the document
                             or a tombstone) folds to MongoDB's final state, and
                           * each CHANGELOG (Debezium envelope, with or
                             without JsonConverter's schema/payload wrapping,
                             images as objects or JSON text) folds to the same
                             state, every update's and delete's `before` being
                             the previous image of its key, and it holds
                             updates and deletes (not only snapshot reads);
                           then print a summary and sample records.
Exit 1 with the differences when the state does not converge.
"""
import json
import sys
import time

from bson import ObjectId, json_util
from bson.json_util import JSONOptions, JSONMode
from confluent_kafka import Consumer, KafkaException, TopicPartition
from pymongo import MongoClient

RELAXED = JSONOptions(json_mode=JSONMode.RELAXED)


def order(i):
    if i % 3 == 0:
        _id = i
    elif i % 3 == 1:
        _id = "order-%05d" % i
    else:
        _id = ObjectId()
    return {
        "_id": _id,
        "qty": i % 17,
        "status": "new",
        "customer": {"name": "customer %d" % (i % 97), "city": ["Oslo", "Lima", "Pune"][i % 3]},
        "items": [{"sku": "sku-%d" % (i % 13), "price": 1.5 * (i % 7)}],
    }


def seed(uri, db, coll, n):
    c = MongoClient(uri)[db][coll]
    c.drop()
    c.insert_many([order(i) for i in range(n)])
    print("seeded %s.%s with %d orders" % (db, coll, n), file=sys.stderr)


def change(uri, db, coll, round_no):
    c = MongoClient(uri)[db][coll]
    ids = [d["_id"] for d in c.find({}, {"_id": 1}).limit(200)]
    for _id in ids[:120]:
        c.update_one({"_id": _id}, {"$inc": {"qty": 1}, "$set": {"status": "paid"}})
    for _id in ids[120:140]:
        c.replace_one({"_id": _id}, {"status": "replaced", "note": "whole document replaced"})
    for _id in ids[140:170]:
        c.delete_one({"_id": _id})
    c.insert_many([order(10_000 * round_no + i) for i in range(50)])
    print("changed %s.%s: 120 updates, 20 replaces, 30 deletes, 50 inserts" % (db, coll),
          file=sys.stderr)


def canon(doc_id):
    return json.dumps(doc_id, sort_keys=True)


def mongo_state(uri, db, coll):
    c = MongoClient(uri)[db][coll]
    state = {}
    for d in c.find({}):
        j = json.loads(json_util.dumps(d, json_options=RELAXED))
        state[canon(j["_id"])] = j
    return state


def read_all(bootstrap, topic):
    """Every record of every partition of `topic`, up to its current end."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "connectd-quickstart-reader",
                  "enable.auto.commit": False, "isolation.level": "read_committed"})
    try:
        md = c.list_topics(topic, timeout=10)
        t = md.topics.get(topic)
        if t is None or t.error is not None or not t.partitions:
            return []
        out = []
        for p in sorted(t.partitions):
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if hi <= lo:
                continue
            c.assign([TopicPartition(topic, p, lo)])
            deadline = time.time() + 30
            # hi may count transaction markers, which are never delivered.
            while time.time() < deadline:
                m = c.poll(0.5)
                if m is None:
                    if c.position([TopicPartition(topic, p)])[0].offset >= hi:
                        break
                    continue
                if m.error():
                    continue
                out.append(m)
                if m.offset() >= hi - 1:
                    break
        return out
    except KafkaException:
        return []
    finally:
        c.close()


def fold_upserts(records):
    state = {}
    for m in records:
        key = json.loads(m.key())["_id"]
        if m.value() is None:
            state.pop(canon(key), None)
        else:
            state[canon(key)] = json.loads(m.value())
    return state


def strip_nulls(doc):
    """`doc` without null-valued fields, at any depth.

    With output.json.schemas.enable=true an event's `before` and `after` share
    one struct schema inferred from both documents, so a field only one of
    them has is null in the other (a replace that adds `note` gives the
    before-image `note: null`). To a consumer that maps fields to columns
    (Flink's debezium-json with schema-include) null and absent are the same
    value, so the images of such a changelog are compared without them
    (and schemaless changelogs exactly).
    """
    if isinstance(doc, dict):
        return {k: strip_nulls(v) for k, v in doc.items() if v is not None}
    if isinstance(doc, list):
        return [strip_nulls(v) for v in doc]
    return doc


def fold_changelog(records):
    """Returns (state, counts by op, problems, schemas); with schemas (the
    JsonConverter wrapping) the images are compared without null fields."""
    state, ops, problems, schemas = {}, {}, [], False
    for m in records:
        if m.value() is None:
            continue
        key = canon(json.loads(m.key())["_id"])
        env = json.loads(m.value())
        # output.json.schemas.enable=true wraps the envelope like JsonConverter.
        if isinstance(env, dict) and "schema" in env and "payload" in env:
            env = env["payload"]
            schemas = True
        # io.debezium.data.Json images are the document as JSON text.
        for image in ("before", "after"):
            if isinstance(env.get(image), str):
                env[image] = json.loads(env[image])
            if schemas:
                env[image] = strip_nulls(env.get(image))
        op = env.get("op")
        ops[op] = ops.get(op, 0) + 1
        if op in ("c", "r"):
            if key in state:
                problems.append("create of a known key %s at offset %d" % (key, m.offset()))
            state[key] = env["after"]
        elif op == "u":
            if env.get("before") != state.get(key):
                problems.append("update of %s: before %s != previous %s"
                                % (key, env.get("before"), state.get(key)))
            state[key] = env["after"]
        elif op == "d":
            if env.get("before") != state.get(key):
                problems.append("delete of %s: before %s != previous %s"
                                % (key, env.get("before"), state.get(key)))
            state.pop(key, None)
        else:
            problems.append("unknown op %r at offset %d" % (op, m.offset()))
    return state, ops, problems, schemas


def diff(want, got):
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    wrong = [k for k in want if k in got and want[k] != got[k]]
    return missing, extra, wrong


def check(uri, db, coll, bootstrap, topic, changelogs):
    want = mongo_state(uri, db, coll)
    want_images = {k: strip_nulls(d) for k, d in want.items()}
    deadline = time.time() + 90
    while True:
        upserts = read_all(bootstrap, topic)
        got = fold_upserts(upserts)
        folded = []
        for changelog in changelogs:
            entries = read_all(bootstrap, changelog)
            folded.append((changelog, entries) + fold_changelog(entries))
        # The quickstart changes orders after the snapshot too, so the
        # changelog must carry stream updates and deletes, not only reads.
        ok = got == want and all(
            cl_state == (want_images if schemas else want) and not problems
            and ops.get("u", 0) > 0 and ops.get("d", 0) > 0
            for _, _, cl_state, ops, problems, schemas in folded)
        if ok or time.time() > deadline:
            break
        time.sleep(1.0)
    print("MongoDB %s.%s: %d documents" % (db, coll, len(want)))
    print("%s: %d records, folds to %d documents" % (topic, len(upserts), len(got)))
    for changelog, entries, cl_state, ops, _, _ in folded:
        print("%s: %d records (ops %s), folds to %d documents"
              % (changelog, len(entries), json.dumps(ops, sort_keys=True), len(cl_state)))
    if not ok:
        for name, expected, state in [(topic, want, got)] + [
                (f[0], want_images if f[5] else want, f[2]) for f in folded]:
            missing, extra, wrong = diff(expected, state)
            if missing or extra or wrong:
                print("%s differs from MongoDB: missing %s, extra %s, different %s"
                      % (name, missing[:5], extra[:5], wrong[:5]), file=sys.stderr)
        for changelog, _, _, ops, problems, _ in folded:
            for p in problems[:5]:
                print("%s problem: %s" % (changelog, p), file=sys.stderr)
            if not (ops.get("u") and ops.get("d")):
                print("%s has no stream updates/deletes: ops %s" % (changelog, ops),
                      file=sys.stderr)
        return 1
    print("OK: the upsert topic and the changelog%s rebuild MongoDB's final state; "
          "every before-image matches" % ("s" if len(folded) > 1 else ""))
    entries = folded[0][1]
    sample = next((m for m in entries if m.value() and json.loads(m.value()).get("op") == "u"), None)
    if sample is not None:
        print("== a changelog update (key  value)")
        print("%s  %s" % (sample.key().decode(), sample.value().decode()[:1500]))
    return 0


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "seed" and len(argv) == 6:
        seed(argv[2], argv[3], argv[4], int(argv[5]))
        return 0
    if cmd == "change" and len(argv) == 6:
        change(argv[2], argv[3], argv[4], int(argv[5]))
        return 0
    if cmd == "check" and len(argv) >= 8:
        return check(*argv[2:7], argv[7:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
