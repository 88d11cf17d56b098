#!/usr/bin/env python3
"""flink_interop_check.py: compare what Apache Flink made of a changelog topic
with MongoDB's final state (scripts/flink-interop.sh).

  flink_interop_check.py URI DB COLL OUT_DIR [OUT_DIR...]

Each OUT_DIR was written by scripts/flink-interop (ChangelogToTable.java)
for one changelog topic:
  rows.jsonl    the result table of SELECT * (Flink's changelog folded by _id)
  agg.jsonl     the result of SELECT status, COUNT(*), SUM(qty),
                SUM(items[1].price) ... GROUP BY status
  summary.json  row kinds per job and changelog anomalies

Checks, for every OUT_DIR:
  * the result table equals MongoDB's documents projected on the table's
    columns (same keys, same values; missing fields are NULL);
  * the aggregate equals the same aggregate computed from MongoDB;
  * the envelope metadata Flink reads (ingestion timestamp, source.db,
    source.collection) is there and names DB.COLL;
  * Flink saw updates and deletes (-U/+U/-D), so retractions were exercised,
    and no anomaly (an insert of a present key, a retraction of an absent or
    different row).
Exit 1 naming every difference.
"""
import json
import os
import sys

from bson import json_util
from bson.json_util import JSONMode, JSONOptions
from pymongo import MongoClient

RELAXED = JSONOptions(json_mode=JSONMode.RELAXED)
META = ("ingested", "source_db", "source_collection", "source_connector")


def flink_string(v):
    """What Flink's JSON reader puts into a STRING column: text as is, other
    scalars as their text, objects and arrays as compact JSON."""
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def project(doc):
    """A MongoDB document (relaxed extended JSON) as a row of the Flink table."""
    customer = doc.get("customer")
    items = doc.get("items")
    return {
        "_id": flink_string(doc["_id"]),
        "qty": doc.get("qty"),
        "status": doc.get("status"),
        "note": doc.get("note"),
        "customer": None if customer is None else {
            "name": customer.get("name"), "city": customer.get("city")},
        "items": None if items is None else [
            {"sku": i.get("sku"), "price": None if i.get("price") is None else float(i["price"])}
            for i in items],
    }


def mongo_rows(uri, db, coll):
    rows = {}
    for d in MongoClient(uri)[db][coll].find({}):
        row = project(json.loads(json_util.dumps(d, json_options=RELAXED)))
        rows[row["_id"]] = row
    return rows


def aggregate(rows):
    """GROUP BY status: COUNT(*), SUM(qty), SUM(items[1].price), with SQL's
    rule that a SUM over no non-NULL value is NULL."""
    out = {}
    for r in rows.values():
        a = out.setdefault(r["status"], {"status": r["status"], "n": 0,
                                         "qty_sum": None, "first_price_sum": None})
        a["n"] += 1
        if r["qty"] is not None:
            a["qty_sum"] = (a["qty_sum"] or 0) + r["qty"]
        price = r["items"][0]["price"] if r["items"] else None
        if price is not None:
            a["first_price_sum"] = (a["first_price_sum"] or 0.0) + price
    return out


def load_jsonl(path, key):
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            out[row[key]] = row
    return out


def compare(name, want, got, problems):
    missing = sorted(k for k in want if k not in got)
    extra = sorted(k for k in got if k not in want)
    wrong = sorted(k for k in want if k in got and want[k] != got[k])
    if missing:
        problems.append("%s: %d keys of MongoDB missing in Flink's result, e.g. %s"
                        % (name, len(missing), missing[:5]))
    if extra:
        problems.append("%s: %d keys in Flink's result that MongoDB does not have, e.g. %s"
                        % (name, len(extra), extra[:5]))
    for k in wrong[:5]:
        problems.append("%s: %s differs: MongoDB %s, Flink %s"
                        % (name, k, json.dumps(want[k], sort_keys=True),
                           json.dumps(got[k], sort_keys=True)))
    if len(wrong) > 5:
        problems.append("%s: ... %d differing keys in all" % (name, len(wrong)))


def check_dir(out_dir, db, coll, want_rows, want_agg):
    problems = []
    with open(os.path.join(out_dir, "summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    topic = summary["topic"]
    rows = load_jsonl(os.path.join(out_dir, "rows.jsonl"), "_id")
    for key, r in rows.items():
        if r["source_db"] != db or r["source_collection"] != coll or r["ingested"] is None:
            problems.append("%s: envelope metadata of %s: source.db=%r source.collection=%r "
                            "ts_ms=%r, want %r, %r and a timestamp"
                            % (topic, key, r["source_db"], r["source_collection"],
                               r["ingested"], db, coll))
            break
    compare(topic + " SELECT *", want_rows,
            {k: {c: v for c, v in r.items() if c not in META} for k, r in rows.items()},
            problems)
    agg = load_jsonl(os.path.join(out_dir, "agg.jsonl"), "status")
    compare(topic + " GROUP BY status", want_agg, agg, problems)
    for job in ("rows", "agg"):
        s = summary[job]
        for a in s["anomalies"]:
            problems.append("%s %s job: changelog anomaly: %s" % (topic, job, a))
        kinds = s["kinds"]
        # Groups never vanish in the quickstart's data, so the aggregate has no -D.
        needed = ("-U", "+U", "-D") if job == "rows" else ("-U", "+U")
        if not all(kinds.get(k) for k in needed):
            problems.append("%s %s job: Flink saw no updates/deletes (row kinds %s); "
                            "retractions were not exercised" % (topic, job, kinds))
    print("%s (schema-include=%s): Flink's table %d rows (row kinds %s), aggregate %d groups "
          "(row kinds %s); MongoDB %d documents, %d groups"
          % (topic, summary["schema_include"], len(rows), summary["rows"]["kinds"], len(agg),
             summary["agg"]["kinds"], len(want_rows), len(want_agg)))
    return problems


def main(argv):
    if len(argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    uri, db, coll = argv[1:4]
    want_rows = mongo_rows(uri, db, coll)
    want_agg = aggregate(want_rows)
    problems = []
    for out_dir in argv[4:]:
        problems += check_dir(out_dir, db, coll, want_rows, want_agg)
    for p in problems:
        print("DIFFERENCE: " + p, file=sys.stderr)
    if problems:
        return 1
    print("OK: Flink's debezium-json reading of every changelog equals MongoDB's final state "
          "(table and aggregate)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
