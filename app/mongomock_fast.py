"""Faster queries for mongomock (the in-memory database of `inbox run`, tests and benchmarks).

mongomock answers a ``find(...).sort(...).limit(n)`` by matching every document with its generic
filter engine, sorting all matches with a Python comparison object per value, and deep-copying
every match before the limit applies. The inbox list at 10,000 conversations paid more than a
second for 40 rows. Three shortcuts, each falling back to mongomock's own code whenever a case is
not plainly covered, so results stay the same:

- simple filters (top-level fields compared with scalars through equality, $eq, $ne, $lt, $lte,
  $gt, $gte, $in, $nin, combined with $and / $or) are compiled to a Python predicate; a document
  whose value is a list, a dict or of another type than the operand is handed to mongomock's
  ``filter_applies``, so array and cross-type semantics are unchanged;
- sorting on top-level fields whose values all share one simple type uses native keys;
- a cursor with a limit copies only the documents it returns (copies themselves: mongomock_copies);
- a filter fixing every field of a (full, non-sparse) unique index reads the candidates from the
  key -> ids table app.mongomock_compat keeps for that index, instead of scanning.
Only installed for the in-memory database; a real MongoDB never sees any of this.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bson import ObjectId

from app.mongomock_index import _PREFIX, install_store_hooks
from app.mongomock_plan import choose

_SCALARS = (str, int, float, datetime, ObjectId)
_UNSURE = object()  # "ask mongomock" for one document
_FAST_TYPES = {str, int, float, datetime, ObjectId}
_OPS = {"$eq", "$ne", "$lt", "$lte", "$gt", "$gte", "$in", "$nin"}
_CMP = {"$eq": operator.eq, "$ne": operator.ne, "$lt": operator.lt, "$lte": operator.le, "$gt": operator.gt,
        "$ge": operator.ge, "$gte": operator.ge}


def _plain(value: Any) -> Any:
    """Operands as stored: PydanticObjectId -> ObjectId, StrEnum -> str (same equality, exact types)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, ObjectId) and type(value) is not ObjectId:
        return ObjectId(value.binary)
    if isinstance(value, str) and type(value) is not str:
        return str.__str__(value)
    return value


def _scalar(value: Any) -> bool:
    return value is None or (isinstance(value, _SCALARS) and not isinstance(value, bool))


_KINDS: dict[type, type] = {}


def _kind(value: Any) -> type:
    """The BSON comparison bracket of a value (PydanticObjectId is an ObjectId, 1 and 1.0 are numbers)."""
    return _kind_of_type(type(value))


def _kind_of_type(t: type) -> type:
    kind = _KINDS.get(t)
    if kind is None:
        kind = t
        if issubclass(t, bool):
            kind = bool
        elif issubclass(t, (int, float)):
            kind = float
        else:
            for base in (str, datetime, ObjectId):
                if issubclass(t, base):
                    kind = base
                    break
        _KINDS[t] = kind
    return kind


def _same_kind(a: Any, b: Any) -> bool:
    return _kind(a) is _kind(b)


def _field_test(name: str, condition: Any):
    """A test of one field: True / False, or _UNSURE for values mongomock must judge."""
    if isinstance(condition, dict) and list(condition) == ["$regex"] and isinstance(condition["$regex"], str):
        return _prefix_test(name, condition["$regex"])
    if _scalar(condition):
        condition = {"$eq": condition}
    if isinstance(condition, dict):
        condition = {op: _plain(v) for op, v in condition.items()}
    if not isinstance(condition, dict) or not condition or not set(condition) <= _OPS:
        return None
    checks = []
    for op, operand in condition.items():
        if op in ("$in", "$nin"):
            if not isinstance(operand, (list, tuple)) or not all(_scalar(v) for v in operand):
                return None
            # Sets compare exactly here: no bools (excluded above), and 1 == 1.0 as in MongoDB.
            checks.append((op, {v for v in operand if v is not None}, None in operand))
        elif operand is None and op not in ("$eq", "$ne"):
            return None  # ordering against null: mongomock's own rules
        elif _scalar(operand):
            checks.append((op, operand, _CMP[op]))
        else:
            return None

    def general(document: dict) -> Any:
        value = document.get(name, _UNSURE)
        if type(value) not in _FAST_TYPES and (isinstance(value, (list, dict, bool)) or (
                value is not _UNSURE and value is not None and not _scalar(value))):
            return _UNSURE
        for op, operand, extra in checks:
            if op in ("$in", "$nin"):
                hit = bool(extra) if value is _UNSURE or value is None else value in operand
                if hit != (op == "$in"):
                    return False
                continue
            if operand is None:  # {field: None} also matches a missing field
                hit = value is _UNSURE or value is None
                if hit != (op == "$eq"):
                    return False
                continue
            if value is _UNSURE or value is None:
                if op != "$ne":
                    return False
                continue
            if type(value) is not type(operand) and not _same_kind(value, operand):
                return _UNSURE  # bracket order across types: let mongomock decide
            try:
                ok = extra(value, operand)  # this check's comparison operator
            except TypeError:  # aware vs naive datetimes
                return _UNSURE
            if not ok:
                return False
        return True

    if len(checks) == 1 and checks[0][0] == "$ne" and checks[0][1] is None:

        def not_null(document: dict) -> Any:  # {field: {"$ne": None}}: present and not null
            value = document.get(name)
            if value is None:
                return False
            return _UNSURE if type(value) in (list, dict) else True

        return not_null
    if len(checks) == 1 and checks[0][0] == "$eq" and checks[0][1] is not None:
        operand, bracket = checks[0][1], _kind(checks[0][1])

        def equal(document: dict) -> Any:  # the common case: field == scalar of the same bracket
            value = document.get(name)
            if _KINDS.get(type(value)) is bracket and bracket is not bool:
                return value == operand
            return general(document)

        return equal
    return general


_STR = {str}


def _prefix_test(name: str, pattern: str):
    """``{field: {"$regex": "^literal"}}`` (the inbox search): str.startswith on a string or a list of strings."""
    found = _PREFIX.fullmatch(pattern)
    if found is None:
        return None
    prefix = found.group(1)

    starts_with = operator.methodcaller("startswith", prefix)

    def starts(document: dict) -> Any:
        value = document.get(name)
        if type(value) is str:
            return value.startswith(prefix)
        if type(value) is list and set(map(type, value)) <= _STR:
            return any(map(starts_with, value))
        return False if value is None else _UNSURE

    return starts


def compile_filter(spec: Any):
    """A predicate for ``spec``, or None when it uses anything beyond the simple subset."""
    if not isinstance(spec, dict):
        return None
    tests = []
    for key, condition in spec.items():
        if key in ("$and", "$or"):
            if not isinstance(condition, list) or not condition:
                return None
            parts = [compile_filter(part) for part in condition]
            if any(p is None for p in parts):
                return None
            tests.append(_combine(key, parts))
        elif key.startswith("$") or "." in key:
            return None
        else:
            test = _field_test(key, condition)
            if test is None:
                return None
            tests.append(test)
    return _combine("$and", tests)


def _combine(kind: str, tests: list):
    if len(tests) == 1:
        return tests[0]
    if kind == "$and" and len(tests) == 2:  # the usual workspace_id + one more field
        first, second = tests

        def both(document: dict) -> Any:
            a = first(document)
            if a is False:
                return False
            b = second(document)
            if b is False:
                return False
            return _UNSURE if (a is _UNSURE or b is _UNSURE) else True

        return both

    def combined(document: dict) -> Any:
        unsure = False
        for test in tests:
            result = test(document)
            if result is _UNSURE:
                unsure = True
            elif result is (kind == "$or"):
                return result
        return _UNSURE if unsure else kind == "$and"

    return combined


def _native_sort(documents: list, sort: Any) -> list | None:
    """Sorted with native keys when every sort field is top-level and of one simple type."""
    keys = list(sort.items()) if isinstance(sort, dict) else list(sort)
    getters = []
    for key, _direction in keys:
        if not isinstance(key, str) or key.startswith("$") or "." in key:
            return None
        try:
            types = set(map(type, map(operator.itemgetter(key), documents)))  # C speed; KeyError if missing
        except KeyError:
            return None
        kinds = {_kind_of_type(t) for t in types}
        if len(kinds) > 1 or not kinds <= {str, float, datetime, ObjectId}:
            return None
        # ObjectIds compare in Python; their 12 bytes compare the same way, in C.
        getters.append((lambda d, k=key: d[k].binary) if kinds == {ObjectId} else operator.itemgetter(key))
    try:
        if len({direction < 0 for _, direction in keys}) == 1:  # one pass with a tuple key
            if len(getters) == 1:
                key_of = getters[0]
            elif len(getters) == 2:
                first, second = getters
                key_of = lambda d: (first(d), second(d))
            else:
                key_of = lambda d: tuple(g(d) for g in getters)
            documents.sort(key=key_of, reverse=keys[0][1] < 0)
        else:
            for (key, direction), getter in reversed(list(zip(keys, getters))):
                documents.sort(key=getter, reverse=direction < 0)
    except TypeError:
        return None
    return documents


def _unique_candidates(collection: Any, spec: Any) -> list | None:
    """Documents found through a unique index whose every field the filter fixes to a plain value.

    Uses the key -> ids tables that app.mongomock_compat keeps for unique indexes (every insert and
    update goes through them); candidates are still matched against the whole filter by the caller.
    Partial and sparse indexes are skipped: they do not hold every document.
    """
    from app.mongomock_compat import _key_of, _store_id

    if not isinstance(spec, dict):
        return None
    store = collection._store
    for name, index in list(store.indexes.items()):
        if not index.get("unique") or index.get("partialFilterExpression") is not None or index.get("sparse"):
            continue
        fields = [field for field, _ in index["key"]]
        values = []
        for field in fields:
            value = spec.get(field)
            if isinstance(value, dict) and list(value) == ["$eq"]:
                value = value["$eq"]
            if value is None or not _scalar(value):
                break
            values.append(value)
        else:
            tables = store.__dict__.setdefault("_inbox_unique", {})
            table = tables.get(name)
            documents = store._documents
            if table is None:  # built once, then kept up to date by every insert and update
                table = tables[name] = {}
                for document in documents.values():
                    existing = _key_of(document, fields)
                    if existing is not None:
                        table.setdefault(existing, set()).add(_store_id(document))
            if store._ttl_indexes:
                store._remove_expired_documents()
            found = [documents.get(i) for i in table.get(tuple(values), ())]
            return [d for d in found if d is not None]
    return None


def _matcher(spec: Any):
    """A document test for ``spec``: the compiled predicate, mongomock's filter_applies when unsure."""
    from mongomock.filtering import filter_applies

    predicate = compile_filter(spec)
    if predicate is None:
        return lambda document: filter_applies(spec, document)

    def matches(document: dict) -> bool:
        result = predicate(document)
        return filter_applies(spec, document) if result is _UNSURE else result

    return matches


def _walked(collection: Any, plan: Any, spec: Any) -> Any:
    """Matching documents in the walked index's order (lazy: a limit stops the walk)."""
    store = collection._store
    if store._ttl_indexes:
        store._remove_expired_documents()
    documents, matches = store._documents, _matcher(spec)
    for doc_id in plan.walk():
        document = documents.get(doc_id)
        if document is not None and matches(document):
            yield document


def patch_queries() -> None:
    from mongomock import helpers
    from mongomock.collection import Collection, Cursor
    from mongomock.filtering import filter_applies

    from app.mongomock_compat import _wanted_ids

    if getattr(Collection, "_inbox_fast_queries", False):
        return
    previous_iter = Collection._iter_documents

    def _iter_documents(self: Any, filter: Any) -> Any:
        # A filter naming a few _ids already has an O(1) path (app.mongomock_compat); others compile.
        if not filter or _wanted_ids(filter) is not None or not self._store._documents:
            return previous_iter(self, filter)
        candidates = _unique_candidates(self, filter)
        if candidates is not None:
            return (document for document in candidates if filter_applies(filter, document))
        matches = _matcher(filter)
        plan = choose(self, filter, None)
        if plan is not None and plan.size() <= max(64, len(self._store._documents) // 4):
            # A small block of a declared index, read in insertion order (a scan's order).
            if self._store._ttl_indexes:
                self._store._remove_expired_documents()
            documents = self._store._documents
            found = [documents.get(i) for i in plan.ids_by_insertion()]
            return (document for document in found if document is not None and matches(document))
        if compile_filter(filter) is None:
            return previous_iter(self, filter)
        return (document for document in list(self._store.documents) if matches(document))

    previous_dataset = Collection._get_dataset

    def _get_dataset(self: Any, spec: Any, sort: Any, fields: Any, as_class: Any) -> Any:
        if not sort:
            return previous_dataset(self, spec, sort, fields, as_class)
        plan = choose(self, spec, sort) if _wanted_ids(spec) is None else None  # a few _ids: read those
        if plan is not None and plan.reverse is not None:  # the index's order is the sort: walk it lazily
            return (self._copy_only_fields(document, fields, as_class) for document in _walked(self, plan, spec))
        documents = _native_sort(list(self._iter_documents(spec)), sort)
        if documents is None:
            return previous_dataset(self, spec, sort, fields, as_class)
        return (self._copy_only_fields(document, fields, as_class) for document in documents)

    previous_results = Cursor._compute_results

    def _compute_results(self: Any, with_limit_and_skip: bool = False) -> Any:
        if not (with_limit_and_skip and self._limit and self._results is None):
            return previous_results(self, with_limit_and_skip)
        window = getattr(self, "_inbox_window", None)
        if window is None or window[0] is not self._factory:
            skip = self._skip or 0
            rows = list(itertools.islice(self._factory(), skip + abs(self._limit)))
            if self.collection.codec_options.tz_aware:
                rows = [helpers.make_datetime_timezone_aware_in_document(x) for x in rows]
            window = (self._factory, rows[skip:])
            self._inbox_window = window
        return window[1]

    def find_one(self: Any, filter: Any = None, *args: Any, **kwargs: Any) -> Any:
        # mongomock materializes (and copies) every match before taking the first: take one.
        if filter is None:
            filter = {}
        if not isinstance(filter, Mapping):
            filter = {"_id": filter}
        try:
            return next(self.find(filter, *args, **kwargs).limit(1))
        except StopIteration:
            return None

    install_store_hooks()
    from app.mongomock_copies import patch_answers  # answers copied with type dispatch

    patch_answers()
    Collection._iter_documents = _iter_documents
    Collection._get_dataset = _get_dataset
    Collection.find_one = find_one
    Cursor._compute_results = _compute_results
    Collection._inbox_fast_queries = True
