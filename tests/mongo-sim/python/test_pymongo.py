"""pymongo against mongo-sim (or a real replica set): MONGODB_URI must be set.

Run by tests/pymongo.rs, which starts a simulator when MONGODB_URI is unset.
"""

import os
import threading
import time
import uuid

import pytest
from bson import ObjectId
from pymongo import ASCENDING, MongoClient
from pymongo.errors import OperationFailure

URI = os.environ["MONGODB_URI"]
SIM = os.environ.get("MONGO_SIM") == "1"


@pytest.fixture()
def client():
    c = MongoClient(URI, serverSelectionTimeoutMS=5000)
    yield c
    c.close()


@pytest.fixture()
def db(client):
    name = "pymongo_" + uuid.uuid4().hex[:8]
    yield client[name]
    client.drop_database(name)


def test_hello_replica_set(client):
    hello = client.admin.command("hello")
    assert hello["isWritablePrimary"] is True
    assert hello["setName"]
    assert hello["maxWireVersion"] >= 21


def test_crud_roundtrip(db):
    c = db.items
    c.insert_many([{"_id": i, "v": i * 10} for i in range(10)])
    assert c.count_documents({"v": {"$gte": 50}}) == 5
    c.update_one({"_id": 3}, {"$set": {"v": -1}, "$push": {"tags": "x"}})
    assert c.find_one({"_id": 3}) == {"_id": 3, "v": -1, "tags": ["x"]}
    c.delete_many({"v": {"$lt": 0}})
    assert [d["_id"] for d in c.find({}, sort=[("v", -1)], limit=2)] == [9, 8]
    with pytest.raises(OperationFailure) as e:
        c.insert_one({"_id": 1})
    assert e.value.code == 11000


def test_change_stream_resume_after_close_connection(client, db):
    c = db.cs
    c.insert_one({"_id": 0})
    with c.watch(max_await_time_ms=500) as stream:
        client.admin.command(
            "configureFailPoint",
            "failCommand",
            mode={"times": 1},
            data={"failCommands": ["getMore"], "closeConnection": True},
        )
        for i in range(1, 4):
            c.insert_one({"_id": i})
        got = [stream.next()["documentKey"]["_id"] for _ in range(3)]
    assert got == [1, 2, 3]


def test_pre_images_and_update_description(db):
    db.create_collection("img", changeStreamPreAndPostImages={"enabled": True})
    c = db.img
    c.insert_one({"_id": 1, "a": {"b": 1}, "arr": [1, 2, 3]})
    with c.watch(full_document="updateLookup", full_document_before_change="required") as s:
        c.update_one({"_id": 1}, {"$set": {"a.b": 2}, "$pop": {"arr": 1}})
        ev = s.next()
    assert ev["operationType"] == "update"
    assert ev["updateDescription"]["updatedFields"] == {"a.b": 2}
    assert ev["updateDescription"]["truncatedArrays"] == [{"field": "arr", "newSize": 2}]
    assert ev["fullDocumentBeforeChange"]["a"] == {"b": 1}
    assert ev["fullDocument"]["arr"] == [1, 2]


def test_database_and_cluster_watch(client, db):
    with db.watch() as dbs, client.watch() as cl:
        db.x.insert_one({"k": 1})
        db.y.insert_one({"k": 2})
        assert dbs.next()["ns"]["coll"] == "x"
        assert dbs.next()["ns"]["coll"] == "y"
        seen = []
        while len(seen) < 2:
            ev = cl.next()
            if ev["ns"]["db"] == db.name:
                seen.append(ev["ns"]["coll"])
        assert seen == ["x", "y"]


def test_history_lost_after_truncation(client, db):
    if not SIM:
        pytest.skip("simTruncateOplog is simulator-only")
    c = db.lost
    with c.watch() as s:
        c.insert_one({"_id": 1})
        token = s.next()["_id"]
    for i in range(2, 10):
        c.insert_one({"_id": i})
    client.admin.command({"simTruncateOplog": 1, "keepLast": 2})
    with pytest.raises(OperationFailure) as e:
        with c.watch(resume_after=token) as s:
            s.try_next()
    assert e.value.code == 286
    assert "ResumableChangeStreamError" not in (e.value.details or {}).get("errorLabels", [])


def test_mixed_ids_and_split_vector(client, db):
    c = db.mixed
    ids = [True, ObjectId(), "b", 3, 2.5, 1, "a", {"k": 1}, None]
    for i in ids:
        c.insert_one({"_id": i})
    got = [d["_id"] for d in c.find().sort("_id", ASCENDING)]
    assert got[:4] == [None, 1, 2.5, 3]
    assert got[4:6] == ["a", "b"]
    assert got[6] == {"k": 1}
    assert isinstance(got[7], ObjectId) and got[8] is True

    big = db.big
    big.insert_many([{"_id": i, "pad": "x" * 1000} for i in range(2500)])
    keys = client.admin.command(
        "splitVector", f"{db.name}.big", keyPattern={"_id": 1}, maxChunkSize=1
    )["splitKeys"]
    assert len(keys) >= 3
    bounds = [k["_id"] for k in keys]
    assert bounds == sorted(bounds)


def test_await_data_wakes_on_commit(db):
    c = db.wake
    with c.watch(max_await_time_ms=3000) as s:
        t = threading.Timer(0.2, lambda: c.insert_one({"_id": 1}))
        t.start()
        start = time.monotonic()
        ev = s.next()
        assert ev["operationType"] == "insert"
        assert time.monotonic() - start < 2.0
