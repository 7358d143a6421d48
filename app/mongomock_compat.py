"""Fixes and O(1) paths for mongomock, the in-memory database of `inbox run`, tests and benchmarks.

mongomock answers every query by scanning the whole collection, and checks unique indexes the
same way, so each insert costs O(documents) and a few thousand messages slow everything down.
Two hot paths get real lookups here, with mongomock's own matching applied to the candidates,
so results are unchanged:

- a filter on ``_id`` (a value or ``{"$in": [...]}``) reads those documents from the store;
- unique indexes keep a hash table (key -> ids) checked against the live documents, so stale
  entries (deleted or changed documents, rolled-back writes) are dropped when seen.

It also never holds a collection's lock while a cursor is being read, accepts the ``sort`` argument newer pymongo passes to bulk updates, and keeps ``partialFilterExpression`` in ``create_indexes()``, which mongomock drops: a
partial unique index (Message.wamid) would otherwise refuse a second document without the field.
Only applied when no INBOX_MONGODB_URL is set; a real MongoDB never sees any of this.
"""

from __future__ import annotations

from typing import Any

_HASHABLE_ID = (str, int, bytes)
_ID_TYPES: frozenset = frozenset()  # exact types _plain_id accepts (filled in below: ObjectId, PydanticObjectId)


def patch_mongomock() -> None:
    """Install the patches once per process."""
    from mongomock.collection import Collection

    if getattr(Collection, "_inbox_patched", False):
        return
    Collection.create_indexes = _create_indexes
    Collection._iter_documents = _make_iter_documents(Collection._iter_documents)
    Collection._ensure_uniques = _make_ensure_uniques(Collection._ensure_uniques)
    _accept_new_bulk_arguments()
    _snapshot_documents()
    _cache_version_checks()
    from app.mongomock_copies import (
        patch_writes,  # exact-type copies into the store
    )

    patch_writes()
    Collection._inbox_patched = True
    from app.mongomock_fast import (
        patch_queries,  # compiled simple filters, native sorts, copy only what a limit returns
    )

    patch_queries()


def _snapshot_documents() -> None:
    """mongomock yields a collection's documents while holding its lock, so a cursor left half-read
    (a task cancelled or a loop stopped mid-iteration) blocks every later write, in every thread.
    Take the snapshot under the lock and iterate it outside."""
    from mongomock.store import CollectionStore

    def documents(self: Any) -> Any:
        self._remove_expired_documents()
        with self._rwlock.reader():
            snapshot = list(self._documents.values())
        return (document for document in snapshot)  # a generator: create_index() calls .throw() on it

    CollectionStore.documents = property(documents)


def _cache_version_checks() -> None:
    """mongomock parses a version string (``version.parse('3.6')``) for every field of every update;
    profiled at ~6 % of a sending worker's CPU (issue 5). The answers never change: parse each once."""
    import functools
    import types

    from mongomock import collection

    parse = functools.lru_cache(maxsize=64)(collection.version.parse)
    collection.version = types.SimpleNamespace(**{**vars(collection.version), "parse": parse})


def _accept_new_bulk_arguments() -> None:
    """pymongo 4.11+ passes ``sort`` to bulk updates (UpdateOne(sort=...)); mongomock's builder predates it."""
    from mongomock.collection import BulkOperationBuilder

    for name in ("add_update", "add_replace"):
        original = getattr(BulkOperationBuilder, name)

        def tolerant(self: Any, *args: Any, _original: Any = original, sort: Any = None, **kwargs: Any) -> Any:
            if sort:
                raise NotImplementedError("mongomock: sort in bulk updates")
            return _original(self, *args, **kwargs)

        setattr(BulkOperationBuilder, name, tolerant)


def _create_indexes(self: Any, indexes: Any, session: Any = None) -> list[str]:
    names = []
    for index in indexes:
        spec = index.document
        name = spec.get("name")
        if name in self._store.indexes:
            names.append(name)  # a second process (or init_beanie) declaring it again
            continue
        partial = spec.get("partialFilterExpression")
        unique = spec.get("unique", False)
        created = self.create_index(
            spec["key"].items(), session=session, expireAfterSeconds=spec.get("expireAfterSeconds"),
            # mongomock checks existing documents for uniqueness ignoring the partial filter:
            # create it plain, then mark it unique (our _ensure_uniques honours the filter).
            unique=unique and partial is None, sparse=spec.get("sparse", False),
            partialFilterExpression=partial, name=name,
        )
        if unique and partial is not None:
            self._store.indexes[created]["unique"] = True
        names.append(created)
    return names


def _id_types() -> frozenset:
    from beanie import PydanticObjectId
    from bson import ObjectId

    return frozenset({ObjectId, PydanticObjectId, str, int, bytes})


_ID_TYPES = _id_types()


def _plain_id(value: Any) -> bool:
    from bson import ObjectId

    return isinstance(value, (ObjectId, *_HASHABLE_ID)) and not isinstance(value, bool)


def _wanted_ids(filter: Any) -> list[Any] | None:
    """The _id values a filter is limited to, or None when it is not limited that simply."""
    if not isinstance(filter, dict) or "_id" not in filter:
        return None
    wanted = filter["_id"]
    if _plain_id(wanted):
        return [wanted]
    if isinstance(wanted, dict) and list(wanted) == ["$in"] and isinstance(wanted["$in"], (list, tuple)):
        values = list(wanted["$in"])
        if {type(v) for v in values} <= _ID_TYPES or all(_plain_id(v) for v in values):
            return list(dict.fromkeys(values))
    return None


def _make_iter_documents(original: Any) -> Any:
    def _iter_documents(self: Any, filter: Any) -> Any:
        # The compiled predicate: {"_id": {"$in": 40 ids}} is a set test.
        from app.mongomock_fast import _matcher

        ids = _wanted_ids(filter)
        if ids is None:
            return original(self, filter)
        store = self._store
        if store._ttl_indexes:
            store._remove_expired_documents()
        documents = store._documents
        found = [documents.get(i) for i in ids]
        matches = _matcher(filter)
        return (doc for doc in found if doc is not None and matches(doc))

    return _iter_documents


def _key_of(document: Any, fields: list[str]) -> tuple[Any, ...] | None:
    from mongomock import helpers

    values = []
    for field in fields:
        try:
            value = helpers.get_value_by_dot(document, field)
        except KeyError:
            value = None
        if isinstance(value, (list, dict)):
            return None  # multikey or sub-document: leave it to mongomock's scan
        values.append(value)
    return tuple(values)


def _store_id(document: Any) -> Any:
    from mongomock import helpers

    value = document["_id"]
    return helpers.hashdict(value) if isinstance(value, dict) else value


def _make_ensure_uniques(original: Any) -> Any:
    from mongomock.filtering import filter_applies
    from pymongo.errors import DuplicateKeyError

    from app.mongomock_index import document_changed

    def _ensure_uniques(self: Any, new_data: Any) -> None:
        store = self._store
        # Called after every insert and every in-place update: the ordered indexes follow the change.
        document_changed(store, new_data)
        tables: dict[str, dict[tuple[Any, ...], set[Any]]] = store.__dict__.setdefault("_inbox_unique", {})
        documents = store._documents
        for name, index in list(store.indexes.items()):
            if not index.get("unique"):
                continue
            fields = [field for field, _ in index["key"]]
            key = _key_of(new_data, fields)
            partial = index.get("partialFilterExpression")
            if key is None:
                original_one(self, new_data, name, index)
                continue
            if index.get("sparse") and all(v is None for v in key):
                continue
            if partial is not None and not filter_applies(partial, new_data):
                continue
            table = tables.get(name)
            if table is None:
                table = tables[name] = {}
                for document in documents.values():
                    existing = _key_of(document, fields)
                    if existing is not None:
                        table.setdefault(existing, set()).add(_store_id(document))
            ids = table.setdefault(key, set())
            ids.add(_store_id(new_data))
            live = 0
            for doc_id in list(ids):
                document = documents.get(doc_id)
                if (document is None or _key_of(document, fields) != key
                        or (partial is not None and not filter_applies(partial, document))):
                    ids.discard(doc_id)
                    continue
                live += 1
            if live > 1:
                raise DuplicateKeyError("E11000 Duplicate Key Error", 11000)

    def original_one(self: Any, new_data: Any, name: str, index: Any) -> None:
        # mongomock's check, for one index whose key holds a list or a sub-document.
        from mongomock import helpers

        find: dict[str, Any] = {}
        for field, _ in index["key"]:
            try:
                find[field] = helpers.get_value_by_dot(new_data, field)
            except KeyError:
                find[field] = None
        if index.get("sparse") and set(map(repr, find.values())) == {"None"}:
            return
        if index.get("partialFilterExpression") is not None:
            find = {"$and": [index["partialFilterExpression"], find]}
        if len(list(self._iter_documents(find))) > 1:
            raise DuplicateKeyError("E11000 Duplicate Key Error", 11000)

    return _ensure_uniques
