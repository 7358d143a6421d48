"""The in-memory query shortcuts (app.mongomock_fast, app.mongomock_plan) answer exactly as mongomock.

Random documents (mixed types, arrays, missing fields), random writes between queries, random
filters and sorts: every answer of the patched collection (compiled predicates, unique-key tables,
ordered index walks and blocks) must equal mongomock's own ``filter_applies`` over all documents,
sorted with mongomock's own sort keys (stable, so ties keep insertion order), then limited.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import mongomock
import pymongo
import pytest
from bson import ObjectId
from mongomock.filtering import filter_applies, resolve_sort_key

from app.mongomock_compat import patch_mongomock
from app.mongomock_plan import choose

WORKSPACES = [ObjectId(), ObjectId()]
BASE = datetime(2026, 1, 1)
WORDS = ["invoice", "invoices", "order", "refund", "beans", "inv", "zebra"]
INDEXES = [
    pymongo.IndexModel([("ws", 1), ("at", -1), ("_id", -1)]),
    pymongo.IndexModel([("ws", 1), ("status", 1), ("at", -1), ("_id", -1)]),
    pymongo.IndexModel([("ws", 1), ("labels", 1)]),
    pymongo.IndexModel([("ws", 1), ("tokens", 1)]),
    pymongo.IndexModel([("ws", 1), ("updated", 1), ("_id", 1)]),
    pymongo.IndexModel([("n", 1)]),
    pymongo.IndexModel([("k", -1)]),
    pymongo.IndexModel([("ws", 1), ("key", 1)], unique=True),
    pymongo.IndexModel([("wamid", 1)], unique=True, partialFilterExpression={"wamid": {"$type": "string"}}),
]


def reference(docs: list[dict], spec: dict, sort: list | None, limit: int) -> list:
    found = [d for d in docs if filter_applies(spec, d)]
    for key, direction in reversed(sort or []):
        found = sorted(found, key=lambda d, k=key: resolve_sort_key(k, d), reverse=direction < 0)
    return [d["_id"] for d in (found[:limit] if limit else found)]


def random_value(rng: random.Random, kind: str):
    roll = rng.random()
    if kind == "at":
        if roll < 0.08:
            return None
        if roll < 0.1:
            return rng.choice([3, "x"])
        return BASE + timedelta(minutes=rng.randrange(300))  # ties on purpose
    if kind == "status":
        return rng.choice(["open", "open", "pending", "resolved", None, 1]) if roll < 0.95 else ["open"]
    if kind == "n":
        return rng.choice([0, 1, 1.0, 2, 2.5, True, False, None, "1", -3])
    if kind == "labels":
        return rng.choice([[], ["a"], ["a", "b"], ["b"], "a", None, ["c", "a"]])
    if kind == "k":
        return rng.choice(["a", "b", "ab", "", "B", None, 5])
    if kind == "tokens":
        return rng.sample(WORDS, rng.randrange(0, 3))
    raise AssertionError(kind)


def random_doc(rng: random.Random, i: int) -> dict:
    doc = {"ws": rng.choice(WORKSPACES), "key": f"k{i}", "updated": BASE + timedelta(seconds=rng.randrange(50))}
    for field in ("at", "status", "n", "labels", "k", "tokens"):
        if rng.random() < 0.92:
            doc[field] = random_value(rng, field)
    if rng.random() < 0.7:
        doc["wamid"] = f"w{i}"
    return doc


def random_query(rng: random.Random) -> tuple[dict, list | None]:
    spec: dict = {}
    if rng.random() < 0.9:
        spec["ws"] = rng.choice(WORKSPACES)
    roll = rng.random()
    if roll < 0.25:
        spec["status"] = rng.choice(["open", "pending", None, 1])
    elif roll < 0.35:
        spec["status"] = {"$in": rng.sample(["open", "pending", "resolved", None], 2)}
    if rng.random() < 0.4:
        spec["at"] = rng.choice([{"$ne": None}, {"$lt": BASE + timedelta(minutes=rng.randrange(300))},
                                 {"$gte": BASE + timedelta(minutes=150), "$ne": None},
                                 {"$lte": BASE + timedelta(minutes=rng.randrange(300))}])
    if rng.random() < 0.2:
        spec["labels"] = rng.choice(["a", "b", "c", None])
    if rng.random() < 0.2:
        word = rng.choice(["inv", "invoice", "ord", "z", "beans"])
        spec["tokens"] = {"$regex": "^" + word}
        if rng.random() < 0.5:
            spec["$and"] = [{"tokens": {"$regex": "^" + rng.choice(["inv", "ref", "o"])}}]
    if rng.random() < 0.15:
        spec["n"] = rng.choice([1, {"$gt": 0}, {"$lte": 1}, {"$in": [1, 2]}, True])
    if rng.random() < 0.1:
        spec["k"] = rng.choice(["a", {"$gte": "a", "$lt": "b"}, None])
    if rng.random() < 0.1:
        spec["wamid"] = f"w{rng.randrange(40)}"
    if rng.random() < 0.1:
        spec["key"] = f"k{rng.randrange(40)}"
    if rng.random() < 0.15:
        spec["updated"] = {"$gt": BASE + timedelta(seconds=rng.randrange(50))}
    if rng.random() < 0.1:  # a cursor, as the inbox list writes it
        at = BASE + timedelta(minutes=rng.randrange(300))
        spec.setdefault("$and", []).append({"$or": [{"at": {"$lt": at}}, {"at": at, "_id": {"$lt": ObjectId()}}]})
    if rng.random() < 0.1:  # Beanie's And
        plain = [{k: v} for k, v in spec.items() if not k.startswith("$")]
        spec = {"$and": plain} if plain else spec
    sort = rng.choice([None, None, [("at", -1), ("_id", -1)], [("at", 1), ("_id", 1)], [("at", -1)],
                       [("updated", 1), ("_id", 1)], [("updated", 1)], [("n", 1)], [("k", -1)], [("k", 1)],
                       [("status", 1), ("at", -1)], [("_id", -1)], [("labels", 1)]])
    return spec, sort


def mutate(rng: random.Random, collection, i: int) -> None:
    roll = rng.random()
    docs = list(collection.find({}, {"_id": 1}))
    target = rng.choice(docs)["_id"] if docs else None
    try:
        if roll < 0.3 or target is None:
            collection.insert_one(random_doc(rng, 1000 + i))
        elif roll < 0.55:
            field = rng.choice(["at", "status", "n", "labels", "k", "tokens"])
            collection.update_one({"_id": target}, {"$set": {field: random_value(rng, field)}})
        elif roll < 0.65:
            if isinstance(collection.find_one({"_id": target}).get("labels", []), list):
                collection.update_one({"_id": target}, {"$push": {"labels": rng.choice(["a", "b", "c"])}})
        elif roll < 0.75:
            collection.update_one({"_id": target}, {"$unset": {rng.choice(["at", "status", "labels"]): ""}})
        elif roll < 0.85:
            collection.delete_one({"_id": target})
        elif roll < 0.92:
            collection.replace_one({"_id": target}, random_doc(rng, 2000 + i))
        else:
            collection.update_many({"ws": rng.choice(WORKSPACES), "status": "pending"},
                                   {"$set": {"at": BASE + timedelta(minutes=rng.randrange(300))}})
    except pymongo.errors.DuplicateKeyError:
        pass


@pytest.mark.parametrize("seed", range(6))
def test_queries_match_mongomock(seed: int) -> None:
    patch_mongomock()
    rng = random.Random(seed)
    collection = mongomock.MongoClient()["fast"][f"c{seed}"]
    collection.create_indexes(INDEXES)
    for i in range(rng.choice([0, 5, 60, 200])):
        try:
            collection.insert_one(random_doc(rng, i))
        except pymongo.errors.DuplicateKeyError:
            pass
    used = 0
    for round_ in range(300):
        if rng.random() < 0.3:
            mutate(rng, collection, round_)
        spec, sort = random_query(rng)
        limit = rng.choice([0, 1, 3, 41])
        everything = list(collection._store._documents.values())
        if everything and rng.random() < 0.15:  # the _id table path, as rows() reads contacts
            spec["_id"] = {"$in": [d["_id"] for d in rng.sample(everything, min(len(everything), 5))]}
        expected = reference(everything, spec, sort, limit)
        cursor = collection.find(spec)
        if sort:
            cursor = cursor.sort(sort)
        if limit:
            cursor = cursor.limit(limit)
        got = [d["_id"] for d in cursor]
        matching = reference(everything, spec, None, 0)
        one = collection.find_one(spec)
        if "_id" in spec:  # the _id table (mongomock_compat) reads in the order the ids were asked for
            assert set(got) <= set(matching) and len(got) == min(len(matching), limit or len(matching)), spec
        else:
            assert got == expected, (spec, sort, limit)
        if "_id" in spec:
            assert (one["_id"] in matching) if one else not matching, spec
        else:
            assert (one["_id"] if one else None) == (matching[0] if matching else None), spec
        assert collection.count_documents(spec) == len(matching), spec
        projection = rng.choice([{"at": 1, "_id": 0}, {"status": 1, "labels": 1}, {"tokens": True}])
        projected = list(collection.find(spec, projection).sort(sort or [("_id", 1)]).limit(limit))
        by_id = {d["_id"]: d for d in everything}
        wanted = [{k: v for k, v in by_id[i].items() if projection.get(k) or (k == "_id" and projection.get("_id", 1))}
                  for i in (got if sort else reference(everything, spec, [("_id", 1)], limit))]
        if "_id" not in spec:
            assert projected == wanted, (spec, projection)
        if projected and isinstance(projected[0].get("labels"), list) and "_id" in projected[0]:
            stored = collection._store._documents[projected[0]["_id"]]["labels"]
            before = list(stored)
            projected[0]["labels"].append("mutated")  # an answer never shares a list with the store
            assert stored == before
        used += choose(collection, spec, sort) is not None
    assert used > 50  # the ordered indexes were really exercised


def test_index_walk_reads_a_few_entries_for_a_limited_sorted_page() -> None:
    patch_mongomock()
    collection = mongomock.MongoClient()["fast"]["walk"]
    collection.create_indexes(INDEXES)
    ws = WORKSPACES[0]
    collection.insert_many([{"ws": ws, "key": f"k{i}", "status": ["open", "pending"][i % 2],
                             "at": BASE + timedelta(seconds=i)} for i in range(2000)])
    plan = choose(collection, {"ws": ws, "status": "pending", "at": {"$ne": None}}, [("at", -1), ("_id", -1)])
    assert plan is not None and plan.reverse is False and plan.index.fields[1][0] == "status"
    walked = []
    for doc_id in plan.walk():
        walked.append(doc_id)
        if len(walked) == 5:
            break
    page = list(collection.find({"ws": ws, "status": "pending"}).sort([("at", -1), ("_id", -1)]).limit(5))
    assert [d["_id"] for d in page] == walked
    assert [d["at"].second for d in page] == [(BASE + timedelta(seconds=i)).second for i in (1999, 1997, 1995, 1993, 1991)]
