"""Picks an ordered index (app.mongomock_index) for a mongomock query and reads only its block.

The choice follows what MongoDB's planner would do with the same declared indexes: the index
whose leading fields the filter fixes (equality, or a short ``$in`` on the last fixed field) the
most, plus a range on the next field, preferring one whose order is the requested sort. Results
are those of mongomock's scan (same documents, same order, ties in insertion order); the
randomized comparison in tests/unit/test_mongomock_fast.py checks that.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import Any

from app.mongomock_index import (
    _PREFIX,
    MAX_IN,
    R_STR,
    TOP,
    IndexSet,
    OrderedIndex,
    Unsupported,
    encode,
    index_set,
)

_RANGE_OPS = ("$gt", "$gte", "$lt", "$lte")


def _conditions(spec: dict) -> dict[str, list]:
    """Top-level field conditions, including those inside top-level ``$and`` lists (Beanie's And)."""
    out: dict[str, list] = {}

    def walk(d: dict) -> None:
        for key, value in d.items():
            if key == "$and" and isinstance(value, list):
                for part in value:
                    if isinstance(part, dict):
                        walk(part)
            elif isinstance(key, str) and not key.startswith("$") and "." not in key:
                out.setdefault(key, []).append(value)

    walk(spec)
    return out


def _encodable(value: Any) -> bool:
    try:
        encode(value)
    except Unsupported:
        return False
    return True


def _operators(condition: Any) -> dict | None:
    if isinstance(condition, dict) and condition and all(isinstance(k, str) and k.startswith("$") for k in condition):
        return condition
    return None


def _points(conditions: list) -> list | None:
    """The values a field must equal (one, or a few from ``$in``), or None."""
    for condition in conditions:
        ops = _operators(condition)
        if ops is None:
            if not isinstance(condition, (dict, list, tuple)) and _encodable(condition):
                return [condition]
            continue
        if "$eq" in ops and not isinstance(ops["$eq"], (dict, list, tuple)) and _encodable(ops["$eq"]):
            return [ops["$eq"]]
        values = ops.get("$in")
        if (isinstance(values, (list, tuple)) and 0 < len(values) <= MAX_IN
                and all(not isinstance(v, (dict, list, tuple)) and _encodable(v) for v in values)):
            return list({encode(v): v for v in values}.values())  # 1 and 1.0 are one point
    return None


def _range(conditions: list) -> list[tuple[str, Any]] | None:
    """Range operators of one condition, against values of one bracket; or one literal prefix regex.

    Only one condition: on an array field, two conditions (or two operators) may hold for two
    different elements, so their bounds must not be intersected (MongoDB's multikey rule; the
    caller keeps one operator when the field turns out multikey). A prefix regex is one element's.
    """
    for condition in conditions:
        o = _operators(condition)
        if o is None:
            continue
        if isinstance(o.get("$regex"), str) and "$options" not in o:
            found = _PREFIX.fullmatch(o["$regex"])
            if found:
                prefix = found.group(1)
                return [("$gte", prefix), ("$lt", prefix[:-1] + chr(ord(prefix[-1]) + 1)), ("regex", None)]
        ops = [(op, o[op]) for op in _RANGE_OPS
               if op in o and o[op] is not None and not isinstance(o[op], (dict, list, tuple)) and _encodable(o[op])]
        if ops and len({encode(v)[0] for _, v in ops}) == 1:
            return ops
    return None


def _implied(partial: Any, conditions: dict[str, list]) -> bool:
    """Whether the filter implies a partial index's filter (only ``{field: {"$type": "string"}}``)."""
    if not isinstance(partial, dict) or len(partial) != 1:
        return False
    (field, condition), = partial.items()
    if condition != {"$type": "string"}:
        return False
    points = _points(conditions.get(field, []))
    return bool(points) and all(encode(v)[0] == R_STR for v in points)


class Plan:
    def __init__(self, indexes: IndexSet, index: OrderedIndex, prefixes: list[tuple], rng: list | None,
                 sort_width: int, reverse: bool | None) -> None:
        self.indexes, self.index, self.prefixes, self.rng = indexes, index, prefixes, rng
        self.sort_width, self.reverse = sort_width, reverse  # reverse None: the index gives no order

    def bounds(self, prefix: tuple) -> tuple[tuple, tuple]:
        lo, hi = prefix, prefix + (TOP,)
        if self.rng:
            desc = self.index.fields[len(prefix) // 2][1] < 0
            rank = encode(self.rng[0][1], desc)[0]
            lo, hi = prefix + (rank,), prefix + (rank, TOP)
            for op, value in self.rng:
                code = encode(value, desc)
                if desc:  # larger values come first: the operators swap ends
                    op = {"$gt": "$lt", "$gte": "$lte", "$lt": "$gt", "$lte": "$gte"}[op]
                if op == "$gte":
                    lo = max(lo, prefix + code)
                elif op == "$gt":
                    lo = max(lo, prefix + code + (TOP,))
                elif op == "$lt":
                    hi = min(hi, prefix + code)
                else:
                    hi = min(hi, prefix + code + (TOP,))
        return lo, hi

    def size(self) -> int:
        entries = self.index.entries
        with self.indexes.lock:
            return sum(max(0, bisect.bisect_left(entries, hi) - bisect.bisect_left(entries, lo))
                       for lo, hi in map(self.bounds, self.prefixes))

    def ids_by_insertion(self) -> list:
        """Ids of every entry in the blocks, once each, in insertion order."""
        entries = self.index.entries
        with self.indexes.lock:
            block = [e for lo, hi in map(self.bounds, self.prefixes)
                     for e in entries[bisect.bisect_left(entries, lo):bisect.bisect_left(entries, hi)]]
        block.sort(key=lambda e: e[-2])
        return list(dict.fromkeys(e[-1] for e in block))

    def walk(self) -> Iterator[Any]:
        """Ids in the index's order (or its reverse), ties on the sort fields in insertion order."""
        lo, hi = self.bounds(self.prefixes[0])
        start = len(self.prefixes[0])
        stop = start + 2 * self.sort_width
        seen: set | None = set() if self.index.multikey else None
        run: list[tuple] = []
        for entry in self._entries(lo, hi):
            if run and entry[start:stop] != run[0][start:stop]:
                yield from self._emit(run, seen)
                run = []
            run.append(entry)
        yield from self._emit(run, seen)

    @staticmethod
    def _emit(run: list[tuple], seen: set | None) -> Iterator[Any]:
        if len(run) > 1:
            run.sort(key=lambda e: e[-2])
        for entry in run:
            if seen is not None:
                if entry[-1] in seen:
                    continue
                seen.add(entry[-1])
            yield entry[-1]

    def _entries(self, lo: tuple, hi: tuple) -> Iterator[tuple]:
        # Read in growing chunks under the lock, resuming after the last entry seen, so a write
        # between two chunks (another thread) never shifts the walk.
        entries, lock, last, size = self.index.entries, self.indexes.lock, None, 16
        while True:
            with lock:
                if not self.reverse:
                    begin = bisect.bisect_left(entries, lo) if last is None else bisect.bisect_right(entries, last)
                    end = min(bisect.bisect_left(entries, hi, begin), begin + size)
                    chunk = entries[begin:end]
                else:
                    end = bisect.bisect_left(entries, hi) if last is None else bisect.bisect_left(entries, last)
                    begin = max(bisect.bisect_left(entries, lo, 0, end), end - size)
                    chunk = entries[begin:end][::-1]
            if not chunk:
                return
            yield from chunk
            last, size = chunk[-1], min(size * 4, 4096)


def choose(collection: Any, spec: Any, sort: Any) -> Plan | None:
    """The best index for ``spec`` (and ``sort``, a list of (field, direction)), or None."""
    store = collection._store
    if not isinstance(spec, dict) or not store.indexes:
        return None
    conditions = _conditions(spec)
    if not conditions:
        return None
    sort_keys = list(sort.items()) if isinstance(sort, dict) else list(sort or [])
    if any(not isinstance(f, str) or f.startswith("$") or d not in (1, -1) for f, d in sort_keys):
        sort_keys = None  # $natural and friends: mongomock's own path
    best, best_score = None, None
    for name, declared in list(store.indexes.items()):
        fields = [(f, d) for f, d in declared.get("key", [])]
        if (declared.get("sparse") or not fields or any(not isinstance(f, str) or "." in f or f.startswith("$")
                                                         or d not in (1, -1) for f, d in fields)):
            continue
        partial = declared.get("partialFilterExpression")
        if partial is not None and not _implied(partial, conditions):
            continue
        points: list[list] = []
        for field, _ in fields:
            found = _points(conditions.get(field, []))
            if found is None:
                break
            points.append(found)
            if len(found) > 1:
                break
        fixed = len(points)
        several = bool(points) and len(points[-1]) > 1
        rng = _range(conditions.get(fields[fixed][0], [])) if not several and fixed < len(fields) else None
        reverse = None
        rest = [(f, d) for f, d in (sort_keys or []) if f not in {f for f, _ in fields[:fixed]}]
        if sort_keys and rest and not several and len(rest) <= len(fields) - fixed:
            pairs = list(zip(rest, fields[fixed:]))
            if all(a[0] == b[0] for a, b in pairs) and len({a[1] * b[1] for a, b in pairs}) == 1:
                reverse = pairs[0][0][1] * pairs[0][1][1] < 0
        if not fixed and not rng and reverse is None:
            continue
        score = (fixed + (1 if rng else 0), reverse is not None, -len(fields))
        if best_score is None or score > best_score:
            best, best_score = (name, points, rng, len(rest), reverse), score
    if best is None:
        return None
    name, points, rng, width, reverse = best
    indexes = index_set(store)
    index = indexes.index(name)
    if index is None:
        return None
    if reverse is not None and any(f in index.multikey for f, _ in index.fields[len(points):len(points) + width]):
        reverse = None  # MongoDB and mongomock sort arrays by an element: not the index's order
    if reverse is None and not points and not rng:
        return None
    if rng and rng[-1][0] == "regex":
        rng = rng[:-1]
    elif rng and index.fields[len(points)][0] in index.multikey:
        rng = rng[:1]
    try:
        prefixes = [()]
        for (field, direction), values in zip(index.fields, points):
            prefixes = [p + encode(v, direction < 0) for p in prefixes for v in values]
    except Unsupported:
        return None
    return Plan(indexes, index, prefixes, rng, width, reverse)
