"""The index rule of tests/support/index_rule.py on hand-written queries: it must be able to say no."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pymongo
import pytest
from bson import SON, ObjectId

from tests.support.index_rule import ID_INDEX, Index, Query, assert_served, check, declared_indexes, queries_of

WS = ObjectId()
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def index(*keys: tuple[str, int], **options) -> Index:
    return Index.from_model(pymongo.IndexModel(list(keys), **options))


LIST = index(("workspace_id", 1), ("status", 1), ("last_message_at", -1), ("_id", -1))
BY_WORKSPACE = index(("workspace_id", 1), ("last_message_at", -1), ("_id", -1))
NEWEST = (("last_message_at", -1), ("_id", -1))


def find(filter_: dict, sort: tuple = (), limit: int | None = None, collection: str = "conversations") -> Query:
    return Query(collection, "find", filter_, sort, limit)


def test_equality_then_sort_in_index_order_is_served_both_ways() -> None:
    query = find({"workspace_id": WS, "status": "open"}, NEWEST, 41)
    assert check(query, [LIST]).index == LIST
    reversed_sort = find({"workspace_id": WS, "status": "open"}, (("last_message_at", 1), ("_id", 1)), 41)
    assert check(reversed_sort, [LIST]).served
    # A range on a sort field (the cursor) keeps the order; a filter on a field outside the index is applied after.
    cursor = find({"workspace_id": WS, "status": "open", "unread_count": {"$gt": 0},
                   "last_message_at": {"$ne": None, "$lte": NOW}}, NEWEST, 41)
    assert check(cursor, [LIST]).served


def test_sort_not_served_by_the_index_is_refused_with_the_indexes_considered() -> None:
    mixed = find({"workspace_id": WS, "status": "open"}, (("last_message_at", -1), ("_id", 1)), 41)
    verdict = check(mixed, [LIST])
    assert not verdict.served and verdict.bounding.index == LIST and not verdict.bounding.sort_served
    message = verdict.message()
    assert "conversations.find" in message and "'status': 'open'" in message and "last_message_at" in message
    assert "workspace_id_1_status_1_last_message_at_-1__id_-1" in message and "not the sort" in message
    with pytest.raises(AssertionError, match="NOT served"):
        assert_served(mixed, [LIST])
    # A range before the sort field: ESR says the range goes after the sort.
    created = index(("workspace_id", 1), ("created_at", 1), ("name", 1))
    ranged = find({"workspace_id": WS, "created_at": {"$gt": NOW}}, (("name", 1),), 10)
    assert "range on 'created_at' comes before" in check(ranged, [created]).message()
    assert check(ranged, [index(("workspace_id", 1), ("name", 1), ("created_at", 1))]).served
    # An $in of several values before the sort field breaks the order; one value is equality.
    several = find({"workspace_id": WS, "status": {"$in": ["open", "pending"]}}, NEWEST, 41)
    assert not check(several, [LIST]).served and "$in of several values on 'status'" in check(several, [LIST]).message()
    assert check(find({"workspace_id": WS, "status": {"$in": ["open"]}}, NEWEST, 41), [LIST]).served
    # Unsorted, the same $in is fine: it bounds the read.
    assert check(find({"workspace_id": WS, "status": {"$in": ["open", "pending"]}}), [LIST]).served


def test_every_equality_field_must_lead_the_index() -> None:
    lookup = Query("messages", "find", {"workspace_id": WS, "wamid": "wamid.1"}, (), 1)
    by_conversation = index(("workspace_id", 1), ("conversation_id", 1), ("_id", -1))
    verdict = check(lookup, [by_conversation])
    assert not verdict.served and verdict.bounding is None
    assert "['wamid'] is not among its leading equality fields" in verdict.message()
    assert check(lookup, [by_conversation, index(("wamid", 1), ("workspace_id", 1))]).served
    # Any order of the equality fields; then the sort; ranges may stay out of the index.
    unread = find({"workspace_id": WS, "status": "open", "unread_count": {"$gt": 0}}, NEWEST, 100)
    assert check(unread, [index(("status", 1), ("workspace_id", 1), ("last_message_at", -1), ("_id", -1))]).served
    assert not check(unread, [BY_WORKSPACE]).served  # status left to the documents read
    # Sorted, an $in of several values is a range: it may follow the sort, or stay out of the index.
    contacts = find({"workspace_id": WS, "contact_id": {"$in": [ObjectId(), ObjectId()]}}, NEWEST, 41)
    assert check(contacts, [BY_WORKSPACE]).served
    assert not check(find({"workspace_id": WS, "contact_id": {"$in": [ObjectId()]}}, NEWEST, 41), [BY_WORKSPACE]).served


def test_a_read_not_bounded_by_the_first_index_field_is_not_served() -> None:
    queued = Query("messages", "find", {"status": "queued", "direction": "outbound"}, (("_id", 1),), 1000)
    by_account = index(("account_id", 1), ("status", 1), ("_id", 1))
    verdict = check(queued, [by_account])
    assert not verdict.served and "first field 'account_id' has no equality or range predicate" in verdict.message()
    assert "_id_" in verdict.message()  # the _id index gives the order, but would walk every message
    assert check(queued, [by_account, index(("status", 1), ("direction", 1), ("_id", 1))]).served
    # $ne and unanchored or case-insensitive regexes bound nothing.
    assert not check(find({"workspace_id": {"$ne": WS}}), [BY_WORKSPACE]).served
    tokens = index(("workspace_id", 1), ("search_tokens", 1))
    assert check(find({"search_tokens": {"$regex": "^invo"}}), [index(("search_tokens", 1))]).served
    assert not check(find({"search_tokens": {"$regex": "invo"}}), [index(("search_tokens", 1))]).served
    assert not check(find({"search_tokens": re.compile("^invo", re.I)}), [index(("search_tokens", 1))]).served
    # Empty filters: only a limited read.
    assert not check(find({}), [BY_WORKSPACE]).served and check(find({}, limit=1), [BY_WORKSPACE]).served
    assert check(find({"workspace_id": WS, "search_tokens": {"$regex": "^invo"}}), [tokens]).bounding.bounded_fields == 2


def test_id_equality_and_unique_point_reads_are_always_served() -> None:
    assert check(find({"_id": ObjectId(), "workspace_id": WS}), []).index == ID_INDEX
    ids = find({"workspace_id": WS, "last_message_at": {"$ne": None}, "_id": {"$in": [ObjectId(), ObjectId()]}},
               NEWEST, 41)
    assert check(ids, []).served  # at most two documents, sorted in memory
    key = index(("workspace_id", 1), ("key", 1), unique=True)
    assert check(find({"workspace_id": WS, "key": "wa:1"}, (("updated_at", -1),)), [key]).served
    assert not check(find({"workspace_id": WS}, (("updated_at", -1),), 10), [key]).served


def test_partial_indexes_need_a_filter_mongod_can_prove_implies_theirs() -> None:
    by_type = index(("wamid", 1), unique=True, partialFilterExpression={"wamid": {"$type": "string"}})
    lookup = Query("messages", "find", {"$and": [{"workspace_id": WS}, {"wamid": "wamid.1"}]}, (), 1)
    verdict = check(lookup, [by_type])
    assert not verdict.served and "does not imply" in verdict.message()  # mongod derives no $type from a value
    by_range = index(("workspace_id", 1), ("wamid", 1), partialFilterExpression={"wamid": {"$gt": ""}})
    assert check(lookup, [by_type, by_range]).index == by_range
    assert check(Query("messages", "find", {"workspace_id": WS, "wamid": {"$in": ["a", "b"]}}), [by_range]).served
    assert not check(Query("messages", "find", {"workspace_id": WS, "wamid": {"$in": ["a", None]}}), [by_range]).served
    queued = index(("status", 1), ("_id", 1), partialFilterExpression={"status": "queued"})
    assert check(Query("messages", "find", {"status": "queued"}, (("_id", 1),), 10), [queued]).served
    assert not check(Query("messages", "find", {"status": "sent"}, (("_id", 1),), 10), [queued]).served
    expiring = index(("due", 1), partialFilterExpression={"due": {"$exists": True}})
    assert check(find({"due": {"$lte": NOW}}), [expiring]).served
    assert not check(find({"due": None}), [expiring]).served


def test_or_needs_every_branch_served() -> None:
    quoted = Query("messages", "find", {"workspace_id": WS, "$or": [{"_id": {"$in": [ObjectId()]}},
                                                                   {"wamid": {"$in": ["wamid.1"]}}]})
    verdict = check(quoted, [index(("workspace_id", 1), ("conversation_id", 1))])
    assert not verdict.served  # the wamid branch would walk the whole workspace
    assert "equality fields ['wamid', 'workspace_id'] do not lead it" in verdict.message()
    assert "branch {'_id': {'$in': [" in verdict.message() and ": served by _id_" in verdict.message()
    assert check(quoted, [index(("wamid", 1), ("workspace_id", 1))]).served
    strict = Query("messages", "find", {"$or": [{"_id": ObjectId()}, {"wamid": "wamid.1"}]})
    verdict = check(strict, [index(("workspace_id", 1), ("conversation_id", 1))])
    assert not verdict.served and "needs every branch served" in verdict.message()
    assert check(strict, [index(("wamid", 1))]).served
    cursor = {"workspace_id": WS, "last_message_at": {"$ne": None, "$lte": NOW},
              "$or": [{"last_message_at": {"$lt": NOW}}, {"_id": {"$lt": ObjectId()}}]}
    assert check(find(cursor, NEWEST, 41), [BY_WORKSPACE]).served
    assert not check(find({**cursor, "status": "open"}, (("created_at", 1),), 41), [LIST]).served


def test_commands_as_the_driver_sends_them() -> None:
    found = queries_of("find", SON([("find", "conversations"), ("filter", {"workspace_id": WS}),
                                    ("sort", SON([("last_message_at", -1), ("_id", -1)])), ("limit", 41)]))
    assert found == [Query("conversations", "find", {"workspace_id": WS}, NEWEST, 41)]
    pipeline = [{"$match": {"workspace_id": WS}}, {"$sort": {"last_message_at": -1, "_id": -1}}, {"$limit": 5},
                {"$project": {"_id": 1}}]
    assert queries_of("aggregate", {"aggregate": "conversations", "pipeline": pipeline})[0].sort == NEWEST
    counted = queries_of("aggregate", {"aggregate": "messages", "pipeline": [{"$match": {"wamid": "x"}},
                                                                            {"$group": {"_id": 1, "n": {"$sum": 1}}}]})
    assert counted == [Query("messages", "aggregate", {"wamid": "x"})]
    updates = queries_of("update", {"update": "messages", "updates": [{"q": {"_id": 1}, "u": {}}, {"q": {"_id": 2}, "u": {}}]})
    assert [q.filter for q in updates] == [{"_id": 1}, {"_id": 2}]
    assert queries_of("findAndModify", {"findAndModify": "contacts", "query": {"key": "k"}, "sort": {"_id": 1}})[0].sort == (("_id", 1),)
    assert queries_of("delete", {"delete": "x", "deletes": [{"q": {"a": 1}, "limit": 0}]})[0].filter == {"a": 1}
    assert queries_of("insert", {"insert": "x", "documents": []}) == [] and queries_of("getMore", {"getMore": 1}) == []


def test_declared_indexes_of_a_document() -> None:
    from app.domains.conversations.models import Conversation

    declared = declared_indexes(Conversation)
    assert declared[0] == ID_INDEX and LIST in declared
