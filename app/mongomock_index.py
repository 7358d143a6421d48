"""Ordered indexes for mongomock: the declared (Beanie) indexes, kept sorted in memory and used by queries.

mongomock scans every document for every query and sorts all matches before a limit applies. Real
MongoDB walks an index: ``{workspace_id, status} sort (last_message_at -1, _id -1) limit 41`` reads
41 index entries whatever the collection's size. This module gives the in-memory database the same
shape of work, so a benchmark on it says something about the product:

- every declared index (top-level fields, not sparse; partial only when the query implies its filter)
  is a sorted list of entries ``(rank1, value1, rank2, value2, ..., insertion_seq, _id)``: values
  encoded so Python's tuple order is BSON's order (type bracket first; descending fields inverted);
  an array contributes one entry per element (multikey), as in MongoDB;
- entries are built on first use and then kept current by the store's writes (insert, delete,
  rollback) and by ``_ensure_uniques``, which mongomock calls after every in-place update;
- a query with equality on the index's leading fields, then optionally a range ($gt/$gte/$lt/$lte
  or an anchored literal prefix ``$regex``) on the next one, reads only that block of entries; when
  the requested sort is the index order (or its reverse) the block is walked lazily in that order,
  so a limit stops the walk; ties come out in insertion order, as mongomock's stable sort gives.
Every candidate is still matched against the whole filter (compiled predicate or mongomock's
``filter_applies``), so an index only narrows what is read; anything not plainly covered (a value
of another type, a dotted key, a sparse index ...) falls back to mongomock's own scan.
"""

from __future__ import annotations

import bisect
import gc
import math
import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

_EPOCH = datetime(1970, 1, 1)
_US = timedelta(microseconds=1)
_INVERT = bytes(255 - i for i in range(256))
# BSON comparison brackets, the numbers mongomock's filtering._get_compare_type uses.
R_NONE, R_NUM, R_STR, R_OID, R_BOOL, R_DATE = 5, 10, 15, 35, 40, 45
_PREFIX = re.compile(r"\^([\w:]+)")  # an anchored literal: word characters (and ":") only
MAX_IN = 64
FREEZE_AFTER = 5000  # entries of a freshly built index


class Unsupported(Exception):
    """A value this module does not encode (dict, bytes, NaN, nested list ...)."""


class _Top:
    """Greater than any component (an open upper end of a tuple range)."""

    __slots__ = ()

    def __gt__(self, other: Any) -> bool:
        return True

    def __lt__(self, other: Any) -> bool:
        return False

    def __eq__(self, other: object) -> bool:
        return other is self

    __hash__ = object.__hash__


TOP = _Top()


class _Rev:
    """A string in a descending index field: compares the other way round."""

    __slots__ = ("s",)

    def __init__(self, s: str) -> None:
        self.s = s

    def __lt__(self, other: Any) -> bool:
        return self.s > other.s if isinstance(other, _Rev) else NotImplemented

    def __gt__(self, other: Any) -> bool:
        return self.s < other.s if isinstance(other, _Rev) else NotImplemented

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Rev) and self.s == other.s

    def __hash__(self) -> int:
        return hash(self.s)


def encode(value: Any, descending: bool = False) -> tuple[int, Any]:
    """(rank, value) of one scalar; Python's order of these pairs is BSON's order of the values."""
    if value is None:
        rank, v = R_NONE, 0
    elif isinstance(value, bool):
        # mongomock sees {n: 1} -> {n: True} as no change (1 == True in Python) and skips the
        # hook an update relies on; an index holding booleans could go stale: not indexed.
        raise Unsupported(bool)
    elif isinstance(value, (int, float)):
        if isinstance(value, float) and math.isnan(value):
            raise Unsupported(value)
        rank, v = R_NUM, value
    elif isinstance(value, str):
        rank, v = R_STR, str.__str__(value)
        if descending:
            return -rank, _Rev(v)
    elif isinstance(value, ObjectId):
        rank, v = R_OID, value.binary
        if descending:
            return -rank, v.translate(_INVERT)
    elif isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        rank, v = R_DATE, (value - _EPOCH) // _US
    else:
        raise Unsupported(type(value))
    return (-rank, -v) if descending else (rank, v)


class OrderedIndex:
    """One declared index of one collection: a sorted list of entries, and each document's entries."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.fields: list[tuple[str, int]] = [(f, -1 if d == -1 else 1) for f, d in spec["key"]]
        self.partial = spec.get("partialFilterExpression")
        self.entries: list[tuple] = []
        self.of: dict[Any, list[tuple]] = {}
        self.multikey: set[str] = set()
        self.broken = False

    def keys(self, doc: dict, seq: int, doc_id: Any) -> list[tuple]:
        if self.partial is not None:
            from mongomock.filtering import filter_applies

            if not filter_applies(self.partial, doc):
                return []
        parts: list[list[tuple[int, Any]]] = [[]]
        for field, direction in self.fields:
            value = doc.get(field)
            desc = direction < 0
            if isinstance(value, (list, tuple)):
                self.multikey.add(field)
                if any(isinstance(v, (list, tuple, dict)) for v in value):
                    raise Unsupported("nested array")
                codes = list(dict.fromkeys(encode(v, desc) for v in value)) or [encode(None, desc)]
            else:
                codes = [encode(value, desc)]
            parts = [p + [c] for p in parts for c in codes]
        return [tuple(x for pair in p for x in pair) + (seq, doc_id) for p in parts]

    def put(self, doc_id: Any, doc: dict | None, seq: int) -> None:
        if self.broken:
            return
        try:
            new = self.keys(doc, seq, doc_id) if doc is not None else []
        except Unsupported:
            self.broken = True  # a value we do not order: this index is no longer used for this collection
            return
        old = self.of.get(doc_id)
        if old == new:
            return
        entries = self.entries
        for entry in old or ():
            i = bisect.bisect_left(entries, entry)
            if i < len(entries) and entries[i] == entry:
                del entries[i]
        for entry in new:
            bisect.insort(entries, entry)
        if new:
            self.of[doc_id] = new
        else:
            self.of.pop(doc_id, None)


class IndexSet:
    """The ordered indexes of one collection store, and the insertion order of its documents."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.lock = threading.RLock()
        self.indexes: dict[str, OrderedIndex] = {}
        self.seq: dict[Any, int] = {}
        self.next_seq = 0

    def _seq_of(self, doc_id: Any) -> int:
        seq = self.seq.get(doc_id)
        if seq is None:
            seq = self.seq[doc_id] = self.next_seq
            self.next_seq += 1
        return seq

    def index(self, name: str) -> OrderedIndex | None:
        """The ordered index, built on first use."""
        with self.lock:
            index = self.indexes.get(name)
            spec = self.store.indexes.get(name)
            if spec is None:
                return None
            if index is None:
                if not self.seq:
                    for doc_id in list(self.store._documents):
                        self._seq_of(doc_id)
                index = OrderedIndex(spec)
                try:
                    for doc_id, doc in list(self.store._documents.items()):
                        for entry in index.keys(doc, self._seq_of(doc_id), doc_id):
                            index.entries.append(entry)
                            index.of.setdefault(doc_id, []).append(entry)
                    index.entries.sort()
                except Unsupported:
                    index.broken = True
                self.indexes[name] = index
                if len(index.entries) >= FREEZE_AFTER:
                    # Tens of thousands of long-lived tuples at once: each later full collection would walk
                    # them (and the documents) again, ~60 ms a time at 10 k conversations. Move what exists
                    # out of the collector's sight, as the CLI does at startup (refcounting still frees it).
                    gc.collect()
                    gc.freeze()
            return None if index.broken else index

    def changed(self, doc_id: Any, doc: dict | None) -> None:
        with self.lock:
            if doc is None:
                seq = self.seq.pop(doc_id, 0)
            else:
                seq = self._seq_of(doc_id)
            for name, index in list(self.indexes.items()):
                if name not in self.store.indexes:
                    del self.indexes[name]
                    continue
                index.put(doc_id, doc, seq)

    def reset(self) -> None:
        with self.lock:
            self.indexes.clear()
            self.seq.clear()


def index_set(store: Any, create: bool = True) -> IndexSet | None:
    found = store.__dict__.get("_inbox_ordered")
    if found is None and create:
        found = store.__dict__["_inbox_ordered"] = IndexSet(store)
    return found


def install_store_hooks() -> None:
    """Keep built indexes current through every write of a CollectionStore."""
    from mongomock.store import CollectionStore

    if getattr(CollectionStore, "_inbox_ordered_hooks", False):
        return
    set_item, del_item, drop = CollectionStore.__setitem__, CollectionStore.__delitem__, CollectionStore.drop
    create_index, drop_index = CollectionStore.create_index, CollectionStore.drop_index

    def __setitem__(self: Any, key: Any, val: Any) -> None:
        set_item(self, key, val)
        found = self.__dict__.get("_inbox_ordered")
        if found is not None:
            found.changed(key, val)

    def __delitem__(self: Any, key: Any) -> None:
        del_item(self, key)
        found = self.__dict__.get("_inbox_ordered")
        if found is not None:
            found.changed(key, None)

    def _drop(self: Any) -> None:
        drop(self)
        found = self.__dict__.get("_inbox_ordered")
        if found is not None:
            found.reset()

    def _create_index(self: Any, index_name: Any, index_dict: Any) -> None:
        create_index(self, index_name, index_dict)
        found = self.__dict__.get("_inbox_ordered")
        if found is not None:
            with found.lock:
                found.indexes.pop(index_name, None)

    def _drop_index(self: Any, index_name: Any) -> None:
        drop_index(self, index_name)
        found = self.__dict__.get("_inbox_ordered")
        if found is not None:
            with found.lock:
                found.indexes.pop(index_name, None)

    CollectionStore.__setitem__ = __setitem__
    CollectionStore.__delitem__ = __delitem__
    CollectionStore.drop = _drop
    CollectionStore.create_index = _create_index
    CollectionStore.drop_index = _drop_index
    CollectionStore._inbox_ordered_hooks = True


def document_changed(store: Any, document: dict) -> None:
    """An in-place update (mongomock mutates the stored dict, then calls _ensure_uniques)."""
    found = store.__dict__.get("_inbox_ordered")
    if found is not None:
        from app.mongomock_compat import _store_id

        found.changed(_store_id(document), document)
