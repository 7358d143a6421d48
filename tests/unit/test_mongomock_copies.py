"""app/mongomock_copies.py gives exactly what mongomock's own write helpers give, on random documents."""

from __future__ import annotations

import random
from collections import OrderedDict
from datetime import UTC, datetime, timedelta, timezone

import pytest
from beanie import PydanticObjectId
from bson import BSON, ObjectId, Timestamp
from bson.errors import InvalidDocument
from bson.son import SON

from app.mongomock_compat import patch_mongomock


@pytest.fixture(scope="module")
def helpers():
    from mongomock import collection, helpers

    patch_mongomock()
    fast, original = helpers.patch_datetime_awareness_in_document, helpers.patch_datetime_awareness_in_document.original
    check, original_check = (collection._recursive_key_check_null_character,
                             collection._recursive_key_check_null_character.original)
    return fast, original, check, original_check


def random_value(rng: random.Random, depth: int = 0):
    roll = rng.randrange(16 if depth < 3 else 10)
    if roll == 0:
        return rng.choice(["", "text", "ünïcode", "a\0b"])
    if roll == 1:
        return rng.randint(-10**12, 10**12)
    if roll == 2:
        return rng.random()
    if roll == 3:
        return rng.choice([True, False, None])
    if roll == 4:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(8)))
    if roll == 5:
        return rng.choice([ObjectId(), PydanticObjectId()])
    if roll == 6:  # naive and aware datetimes, with sub-millisecond parts MongoDB drops
        moment = datetime(2026, 1, 1) + timedelta(microseconds=rng.randrange(10**13))
        zone = rng.choice([None, UTC, timezone(timedelta(hours=rng.randint(-12, 12)))])
        return moment.replace(tzinfo=zone)
    if roll == 7:
        return Timestamp(0, 0) if rng.random() < 0.5 else Timestamp(1_700_000_000, 3)
    if roll in (8, 9):
        return rng.choice([decimal_or_str(rng), ("tuple", 1)])
    if roll in (10, 11):
        return {f"k{i}": random_value(rng, depth + 1) for i in range(rng.randrange(4))}
    if roll in (12, 13):
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if roll == 14:
        return OrderedDict((f"o{i}", random_value(rng, depth + 1)) for i in range(rng.randrange(3)))
    return SON((f"s{i}", random_value(rng, depth + 1)) for i in range(rng.randrange(3)))


def decimal_or_str(rng: random.Random):
    """A value of an unusual type (Decimal), or a plain one."""
    from decimal import Decimal

    return Decimal("1.5") if rng.random() < 0.5 else "plain"


def same(a, b) -> bool:
    """Equal, of the same types all the way down (a dict must not come back as an OrderedDict)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Timestamp):
        return True  # Timestamp(0, 0) becomes "now": two calls cannot agree on it
    return a == b and (not isinstance(a, datetime) or a.tzinfo == b.tzinfo)


def test_datetime_patching_matches_mongomock_on_random_documents(helpers):
    fast, original, _, _ = helpers
    rng = random.Random(20261122)
    for _ in range(3000):
        document = {f"f{i}": random_value(rng) for i in range(rng.randrange(6))}
        assert same(fast(document), original(document)), document


def test_datetimes_are_stored_naive_utc_at_millisecond_precision(helpers):
    fast, *_ = helpers
    aware = datetime(2026, 11, 22, 3, 4, 5, 678_901, tzinfo=timezone(timedelta(hours=2)))
    stored = fast({"at": aware, "list": [aware], "nested": {"at": aware}})
    expected = datetime(2026, 11, 22, 1, 4, 5, 678_000)
    assert stored == {"at": expected, "list": [expected], "nested": {"at": expected}}
    assert stored["at"].tzinfo is None


def test_the_stored_copy_does_not_share_containers_with_the_callers_document(helpers):
    fast, *_ = helpers
    document = {"fields": ["messages"], "nested": {"a": [1]}}
    stored = fast(document)
    document["fields"].append("statuses")
    document["nested"]["a"].append(2)
    assert stored == {"fields": ["messages"], "nested": {"a": [1]}}


def test_null_characters_in_keys_are_refused_as_mongomock_does(helpers):
    _, _, check, original_check = helpers
    rng = random.Random(7)
    for _ in range(2000):
        document = {rng.choice(["a", "b\0", "c"]): random_value(rng) for _ in range(rng.randrange(4))}
        if rng.random() < 0.3:
            document["deep"] = {"x": {rng.choice(["ok", "bad\0"]): 1}}
        outcomes = []
        for function in (check, original_check):
            try:
                function(document)
                outcomes.append(None)
            except InvalidDocument as exc:
                outcomes.append(str(exc))
        assert outcomes[0] == outcomes[1], document


def test_inserts_store_and_refuse_what_mongomock_itself_does(helpers):
    """The same random documents through the fast insert and mongomock's own: same stored data, same errors."""
    import mongomock
    from mongomock import collection as mongomock_collection

    original_insert = None
    for cell in mongomock_collection.Collection._insert.__closure__ or ():
        if callable(cell.cell_contents) and getattr(cell.cell_contents, "__name__", "") == "_insert":
            original_insert = cell.cell_contents
    assert original_insert is not None
    database = mongomock.MongoClient().db
    fast, slow = database.fast, database.slow
    for target in (fast, slow):
        target.create_index("unique_key", unique=True, sparse=True)
    rng = random.Random(99)

    def storable(value) -> bool:
        try:
            BSON.encode({"v": value})
            return True
        except Exception:  # noqa: BLE001 - Decimal, tuples of odd types...: mostly keep to what can be stored
            return False

    for i in range(1500):
        document = {f"f{k}": random_value(rng) for k in range(rng.randrange(4))}
        if rng.random() < 0.9:
            document = {k: v for k, v in document.items() if storable(v)}
        roll = rng.random()
        if roll < 0.5:
            document["_id"] = rng.choice([i, f"id{i}", ObjectId(), rng.randrange(50)])  # some repeat: duplicates
        elif roll < 0.55:
            document[rng.choice(["$bad", "nul\0", 7])] = 1  # refused keys
        if rng.random() < 0.2:
            document["unique_key"] = rng.randrange(40)  # some collide: rolled back
        outcomes = []
        for target, insert in ((fast, mongomock_collection.Collection._insert), (slow, original_insert)):
            copy = dict(document)
            try:
                insert(target, copy)
                outcomes.append(None)
            except Exception as exc:  # noqa: BLE001 - the error type and text are what is compared
                outcomes.append((type(exc).__name__, str(exc)))
            if "_id" not in document and "_id" in copy:
                document["_id"] = copy["_id"]  # the generated id, so the second insert stores the same
        assert outcomes[0] == outcomes[1], document
    stored_fast = {repr(d["_id"]): d for d in fast.find()}
    stored_slow = {repr(d["_id"]): d for d in slow.find()}
    assert stored_fast.keys() == stored_slow.keys() and len(stored_fast) > 500
    assert all(same(stored_fast[k], stored_slow[k]) for k in stored_fast)
