"""Does a declared index serve a query? MongoDB's own rule (ESR), checked on the commands the driver sent.

A query (filter, sort, limit) as a captured ``find`` / ``aggregate`` ($match, then $sort) / ``count`` /
``distinct`` / ``update`` / ``delete`` / ``findAndModify`` command is checked against a collection's
indexes (``Index.from_info`` of ``list_indexes()``, or ``Index.from_model`` of a Document's
``Settings.indexes``). No planner is run: the rule below is the one MongoDB documents for compound
indexes (Equality, Sort, Range) and for partial indexes, kept small enough to read.

Predicates, per field of the filter (top-level ``$and`` is flattened, so Beanie's ``{"$and": [...]}``
is the same as one document):

- equality: ``v``, ``{"$eq": v}`` (``None`` too), ``{"$in": [v]}`` (one value);
- points: ``{"$in": [v1, v2, ...]}``: bounds the read like equality, but the index then gives one
  ordered run per value, so it breaks a sort on later fields (mongod can merge-sort up to 200 runs;
  this rule does not count on it);
- range: ``$gt`` / ``$gte`` / ``$lt`` / ``$lte``, and an anchored, case-sensitive literal-prefix
  regex (``^invo``: index bounds ["invo", "invp"));
- anything else (``$ne``, ``$nin``, ``$exists``, ``$type``, ``$not``, ``$elemMatch``, an unanchored or
  ``i`` regex, ...) bounds nothing: it is a filter applied to what the index read.

An index serves a query when all of these hold:

1. it may be used at all: a partial index only when the filter implies its
   ``partialFilterExpression``, by mongod's own test (``isSubsetOf`` in
   src/mongo/db/matcher/expression_algo.cpp): the same predicate, a comparison inside the
   filter's (``{f: "x"}`` implies ``{f: {"$gt": ""}}``, same BSON type only), an ``$in`` whose every
   value does, or any non-null comparison for ``{"$exists": true}``. mongod has no rule that
   derives a ``$type`` from a value: ``{f: "x"}`` can NOT use an index partial on
   ``{f: {"$type": "string"}}``. A sparse index likewise needs a predicate that excludes a missing field;
2. Equality: its first fields are all the equality fields of the filter, in any order (an ``$in`` of
   several values may sit among them when the query is not sorted, or stay out of the index and be
   checked on the documents read, like a range; in a sorted query it is a range, see 3). A field compared for equality but left out of the index would be checked on
   every document the index read returns: ``{workspace_id, wamid}`` is not served by an index
   on ``(workspace_id, conversation_id)``, which walks the whole workspace;
3. Sort: a sorted query (limited or not) gets its order from the index, never from an in-memory
   sort: right after the equality fields come the sort fields, in order, with the directions all
   equal to the sort's or all reversed (sort fields fixed by equality drop out of the sort). Range
   fields (and a sorted query's several-value ``$in``) come after the sort fields, or are left to
   the documents read: before a sort field they break the order;
4. the read is bounded: the index's first field has an equality, points or range predicate (not a
   walk of the whole index). An empty filter is served only when limited, and unsorted or sorted
   in an index's order (every document matches: the walk stops at the limit);
5. a point read of a unique index (``_id``, or a unique index whose every field has an equality or
   ``$in``) is always served: at most one document per value, whatever else the filter says, and
   those few may be sorted in memory. So ``_id`` equality is always served.

Range predicates are not required to be in the index: once the equality fields (and the sort)
bound the read, a range on another field only filters what was read. Which index bounds a read
the most is reported (``Verdict.index`` / ``Verdict.bounding``) for tests that expect a specific one.

A filter with ``$or`` is served when every branch (with the rest of the filter) is served, each
with the query's sort (mongod then merges the branches' ordered reads).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bson import Decimal128, Int64, ObjectId, Regex

EQ, POINTS, RANGE, RESIDUAL = "equality", "points", "range", "residual"
_STRENGTH = {RESIDUAL: 0, RANGE: 1, POINTS: 2, EQ: 3}
_COMPARISONS = ("$eq", "$gt", "$gte", "$lt", "$lte")
_REGEX_META = set(".^$*+?()[]{}|\\")

# --------------------------------------------------------------------------------------------------
# Indexes and queries
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Index:
    name: str
    keys: tuple[tuple[str, Any], ...]
    unique: bool = False
    sparse: bool = False
    partial: Mapping[str, Any] | None = None

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> Index:
        """An entry of ``list_indexes()``."""
        keys = tuple((str(k), _direction(v)) for k, v in dict(info["key"]).items())
        return cls(str(info.get("name") or _default_name(keys)), keys,
                   unique=bool(info.get("unique")) or info.get("name") == "_id_",
                   sparse=bool(info.get("sparse")), partial=info.get("partialFilterExpression"))

    @classmethod
    def from_model(cls, model: Any) -> Index:
        """A ``pymongo.IndexModel`` (as in a Document's ``Settings.indexes``)."""
        return cls.from_info(model.document)

    def __str__(self) -> str:
        text = f"{self.name} {{{', '.join(f'{k}: {d}' for k, d in self.keys)}}}"
        if self.unique:
            text += " unique"
        if self.partial:
            text += f" partial {_short(self.partial)}"
        return text


ID_INDEX = Index("_id_", (("_id", 1),), unique=True)


def declared_indexes(document: Any) -> list[Index]:
    """The ``_id`` index and a Beanie Document's ``Settings.indexes``."""
    return [ID_INDEX, *(Index.from_model(m) for m in getattr(document.Settings, "indexes", []))]


@dataclass(frozen=True)
class Query:
    collection: str
    command: str
    filter: Mapping[str, Any]
    sort: tuple[tuple[str, int], ...] = ()
    limit: int | None = None

    def __str__(self) -> str:
        text = f"{self.collection}.{self.command} filter={_short(self.filter)}"
        if self.sort:
            text += f" sort={dict(self.sort)}"
        if self.limit:
            text += f" limit={self.limit}"
        return text


READ_COMMANDS = frozenset({"find", "aggregate", "count", "distinct", "update", "delete", "findAndModify"})


def queries_of(command_name: str, command: Mapping[str, Any]) -> list[Query]:
    """The reads a captured command makes (an update or delete command may carry several)."""
    name = "findAndModify" if command_name.lower() == "findandmodify" else command_name
    if name not in READ_COMMANDS:
        return []
    collection = str(command[next(k for k in command if k.lower() == name.lower())])
    if name == "find":
        return [Query(collection, name, command.get("filter") or {}, _sort(command.get("sort")),
                      abs(int(command.get("limit") or 0)) or None)]
    if name == "aggregate":
        filter_: dict[str, Any] = {}
        sort: tuple[tuple[str, int], ...] = ()
        limit = None
        stages = list(command.get("pipeline") or [])
        while stages and "$match" in stages[0]:
            match = stages.pop(0)["$match"]
            filter_ = {"$and": [filter_, match]} if filter_ else dict(match)
        for stage in stages:  # a $sort and $limit right after the $match run on the index read
            if "$sort" in stage and not sort:
                sort = _sort(stage["$sort"])
            elif "$limit" in stage:
                limit = int(stage["$limit"])
                break
            elif "$skip" not in stage:
                break
        return [Query(collection, name, filter_, sort, limit)]
    if name == "count":
        return [Query(collection, name, command.get("query") or {}, (), int(command.get("limit") or 0) or None)]
    if name == "distinct":
        return [Query(collection, name, command.get("query") or {})]
    if name == "update":
        return [Query(collection, name, u.get("q") or {}) for u in command.get("updates") or []]
    if name == "delete":
        return [Query(collection, name, d.get("q") or {}, (), int(d.get("limit") or 0) or None)
                for d in command.get("deletes") or []]
    return [Query(collection, name, command.get("query") or {}, _sort(command.get("sort")), 1)]


# --------------------------------------------------------------------------------------------------
# Predicates
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pred:
    op: str
    value: Any
    kind: str


@dataclass
class Conj:
    """A filter as an AND of per-field predicates, plus the ``$or`` lists still to expand."""

    preds: dict[str, list[Pred]] = field(default_factory=dict)
    ors: list[list[Mapping[str, Any]]] = field(default_factory=list)
    other: list[str] = field(default_factory=list)

    def kind(self, path: str) -> str | None:
        preds = self.preds.get(path)
        if not preds:
            return None
        return max((p.kind for p in preds), key=_STRENGTH.__getitem__)

    def copy(self) -> Conj:
        return Conj({k: list(v) for k, v in self.preds.items()}, list(self.ors), list(self.other))

    @property
    def empty(self) -> bool:
        return not self.preds and not self.ors and not self.other


def conjunction(filter_: Mapping[str, Any]) -> Conj:
    conj = Conj()
    _add(conj, filter_)
    return conj


def _add(conj: Conj, filter_: Mapping[str, Any]) -> None:
    for key, value in filter_.items():
        if key == "$and":
            for clause in value:
                _add(conj, clause)
        elif key == "$or":
            branches = list(value)
            if len(branches) == 1:
                _add(conj, branches[0])
            else:
                conj.ors.append(branches)
        elif key.startswith("$"):
            conj.other.append(key)  # $nor, $expr, $where, $comment...: bound nothing
        else:
            conj.preds.setdefault(key, []).extend(_leaf(value))


def _leaf(value: Any) -> list[Pred]:
    if isinstance(value, (Regex, re.Pattern)):
        return [_regex(value.pattern, value.flags)]
    if isinstance(value, Mapping) and value and all(str(k).startswith("$") for k in value):
        preds = []
        for op, arg in value.items():
            if op == "$options":
                continue
            if op == "$eq":
                preds.append(Pred(op, arg, EQ))
            elif op == "$in":
                values = list(arg)
                if any(isinstance(v, (Regex, re.Pattern)) for v in values):
                    preds.append(Pred(op, values, RESIDUAL))
                else:
                    preds.append(Pred(op, values, EQ if len(values) <= 1 else POINTS))
            elif op in ("$gt", "$gte", "$lt", "$lte"):
                preds.append(Pred(op, arg, RANGE))
            elif op == "$regex":
                pattern, flags = (arg.pattern, arg.flags) if isinstance(arg, (Regex, re.Pattern)) else (arg, 0)
                preds.append(_regex(str(pattern), flags, str(value.get("$options", ""))))
            else:
                preds.append(Pred(op, arg, RESIDUAL))
        return preds
    return [Pred("$eq", value, EQ)]


def _regex(pattern: str, flags: Any = 0, options: str = "") -> Pred:
    """An anchored literal prefix without ``i`` / ``m`` / ``x`` is an index range (mongod's simpleRegex)."""
    if isinstance(flags, str):
        options += flags
    elif isinstance(flags, int):
        options += "".join(letter for bit, letter in ((re.IGNORECASE, "i"), (re.MULTILINE, "m"),
                                                       (re.VERBOSE, "x")) if flags & bit)
    prefix = ""
    if pattern.startswith("^") and not set(options) & set("imx") and "|" not in pattern:
        i = 1
        while i < len(pattern):
            ch = pattern[i]
            if ch == "\\" and i + 1 < len(pattern) and not pattern[i + 1].isalnum():
                prefix += pattern[i + 1]
                i += 2
            elif ch in _REGEX_META:
                break
            else:
                prefix += ch
                i += 1
        if i < len(pattern) and pattern[i] in "*?{":  # the last literal is optional
            prefix = prefix[:-1]
    return Pred("$regex", pattern, RANGE if prefix else RESIDUAL)


# --------------------------------------------------------------------------------------------------
# The rule
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fit:
    """How one index relates to one query (without ``$or``)."""

    index: Index
    usable: bool
    bounded: bool          # its first field has an equality, points or range predicate
    leading: bool          # the filter's equality fields are its first fields
    sort_served: bool      # its order is the sort (or no sort is needed)
    bounded_fields: int    # how many of its first fields the filter bounds
    reason: str

    @property
    def served(self) -> bool:
        return self.usable and self.bounded and self.leading and self.sort_served


@dataclass(frozen=True)
class Verdict:
    query: Query
    served: bool
    fits: tuple[Fit, ...] = ()
    branches: tuple[Verdict, ...] = ()
    note: str = ""
    branch: str = ""

    @property
    def index(self) -> Index | None:
        """The index that serves the query (the one bounding the most fields), if any."""
        best = _best([f for f in self.fits if f.served])
        return best.index if best else None

    @property
    def bounding(self) -> Fit | None:
        """The index bounding the read best (equality fields leading), whether or not it also gives the sort."""
        return _best([f for f in self.fits if f.usable and f.bounded and f.leading])

    def indexes_used(self) -> list[Index]:
        if self.branches:
            return [i for b in self.branches for i in b.indexes_used()]
        return [self.index] if self.index else []

    def message(self, indent: str = "") -> str:
        head = f"{indent}branch {self.branch}" if self.branch else f"{indent}{self.query}"
        if self.branches:
            lines = [f"{head}: {'served' if self.served else 'NOT served'}: a filter with $or needs every branch served"]
            lines += [b.message(indent + "    ") for b in self.branches]
            return "\n".join(lines)
        if self.served:
            return f"{head}: served by {self.index}"
        lines = [f"{head}: NOT served by any index ({self.note or 'indexes considered below'})"]
        lines += [f"{indent}    - {f.index}: {f.reason}" for f in self.fits]
        return "\n".join(lines)


def check(query: Query, indexes: Sequence[Index]) -> Verdict:
    """Whether some index in ``indexes`` serves ``query`` by the rule of this module."""
    indexes = list(indexes)
    if not any(i.name == "_id_" for i in indexes):
        indexes.insert(0, ID_INDEX)
    return _check(query, conjunction(query.filter), indexes, "")


def assert_served(query: Query, indexes: Sequence[Index]) -> Verdict:
    verdict = check(query, indexes)
    assert verdict.served, "\n" + verdict.message()
    return verdict


def _check(query: Query, conj: Conj, indexes: list[Index], label: str) -> Verdict:
    if conj.ors:
        first, rest = conj.ors[0], conj.ors[1:]
        branches = []
        for branch in first:
            merged = conj.copy()
            merged.ors = list(rest)
            _add(merged, branch)
            branches.append(_check(query, merged, indexes, _short(branch)))
        return Verdict(query, all(b.served for b in branches), branches=tuple(branches), branch=label)
    if conj.empty:
        return _check_empty(query, indexes, label)
    fits = tuple(_fit(index, conj, query) for index in indexes)
    return Verdict(query, any(f.served for f in fits), fits, branch=label)


def _check_empty(query: Query, indexes: list[Index], label: str) -> Verdict:
    """No predicate: every document matches, so only a limited walk (in an index's order if sorted) is cheap."""
    if not query.limit:
        return Verdict(query, False, note="an empty filter without a limit reads the whole collection", branch=label)
    if not query.sort:
        return Verdict(query, True, (Fit(ID_INDEX, True, True, True, True, 0, "an unsorted, limited read of any documents"),),
                       branch=label)
    fits = []
    for index in indexes:
        ok = _order_matches([(k, d) for k, d in index.keys], list(query.sort)) and not index.partial and not index.sparse
        fits.append(Fit(index, True, ok, True, ok, 0, "a limited walk in index order" if ok else "its order is not the sort"))
    return Verdict(query, any(f.served for f in fits), tuple(fits), branch=label)


def _fit(index: Index, conj: Conj, query: Query) -> Fit:
    def fit(sort_served: bool, count: int, reason: str, *, bounded: bool = True, leading: bool = True,
            usable: bool = True) -> Fit:
        return Fit(index, usable, bounded, leading, sort_served, count, reason)

    if any(not isinstance(d, int) and d != "hashed" for _, d in index.keys):
        return fit(False, 0, "a special (text / geo) index: not considered", bounded=False, usable=False)
    gap = _partial_gap(index, conj)
    if gap:
        return fit(False, 0, gap, bounded=False, usable=False)
    names = [name for name, _ in index.keys]
    kinds = []
    for name, direction in index.keys:
        kind = conj.kind(name)
        if direction == "hashed" and kind not in (EQ, POINTS):
            kind = None  # a hashed field answers equality only
        kinds.append(kind)
    count = 0
    for kind in kinds:
        if kind not in (EQ, POINTS, RANGE):
            break
        count += 1
    if kinds[0] not in (EQ, POINTS, RANGE):
        return fit(False, 0, f"its first field {names[0]!r} has no equality or range predicate "
                             f"({_describe(conj, names[0])}): the read would walk the whole index", bounded=False)
    if index.unique and all(k in (EQ, POINTS) for k in kinds):
        return fit(True, count, "a point read of a unique index: at most one document per value")
    required = [(f, d) for f, d in query.sort if conj.kind(f) != EQ]
    # Equality first: every equality field of the filter leads the index. An $in of several values
    # bounds the read like equality when the query is not sorted, so it may sit among them; it may
    # also stay out of the index and be checked on the documents read, like a range (a
    # {wamid, workspace_id} index serves {workspace_id, wamid, status: {$in: [...]}}).
    equality = {f for f in conj.preds if conj.kind(f) == EQ}
    prefix = 0
    for name in names:
        if conj.kind(name) == EQ or (conj.kind(name) == POINTS and not required):
            prefix += 1
        else:
            break
    if not equality <= set(names[:prefix]):
        missing = sorted(equality - set(names[:prefix]))
        return fit(False, count, f"the filter's equality fields {sorted(equality)} do not lead it ({missing} "
                                 f"{'is' if len(missing) == 1 else 'are'} not among its leading equality "
                                 f"fields): the read is bounded by less than the equalities", leading=False)
    if not required:
        return fit(True, count, "its leading fields are the equality fields" +
                   (" (the sort is fixed by equality)" if query.sort else ""))
    remaining = list(index.keys[prefix:])
    if _order_matches(remaining, required):
        return fit(True, count, "equality fields, then the sort fields in index order")
    return fit(False, count, _sort_reason(remaining, required, kinds[prefix:]))


def _order_matches(index_keys: list[tuple[str, Any]], sort: list[tuple[str, int]]) -> bool:
    head = index_keys[:len(sort)]
    if len(head) < len(sort) or [k for k, _ in head] != [k for k, _ in sort]:
        return False
    if any(not isinstance(d, int) for _, d in head):
        return False
    same = [d == s for (_, d), (_, s) in zip(head, sort, strict=False)]
    return all(same) or not any(same)


def _sort_reason(remaining: list[tuple[str, Any]], required: list[tuple[str, int]], kinds: list[str | None]) -> str:
    wanted = ", ".join(f"{k} {d}" for k, d in required)
    sort_fields = {k for k, _ in required}
    for (name, _), kind in zip(remaining, kinds, strict=False):
        if name in sort_fields:
            break
        if kind == RANGE:
            return f"bounded, but the range on {name!r} comes before the sort fields ({wanted}): an in-memory sort"
        if kind == POINTS:
            return (f"bounded, but the $in of several values on {name!r} comes before the sort fields ({wanted}): "
                    f"one ordered run per value, merged or sorted in memory")
        return f"bounded, but {name!r} (not fixed by equality) comes before the sort fields ({wanted}): an in-memory sort"
    got = ", ".join(f"{k} {d}" for k, d in remaining[:len(required)]) or "nothing"
    return f"bounded, but after its equality fields the index order is ({got}), not the sort ({wanted}): an in-memory sort"


def _describe(conj: Conj, path: str) -> str:
    preds = conj.preds.get(path)
    if not preds:
        return "not in the filter"
    return "only " + ", ".join(f"{p.op}" for p in preds)


def _best(fits: list[Fit]) -> Fit | None:
    if not fits:
        return None
    return max(fits, key=lambda f: (f.sort_served, f.bounded_fields, -len(f.index.keys)))


# --------------------------------------------------------------------------------------------------
# Partial and sparse indexes: does the filter imply the index's filter? (mongod's isSubsetOf)
# --------------------------------------------------------------------------------------------------


def _partial_gap(index: Index, conj: Conj) -> str | None:
    if index.partial:
        required = conjunction(index.partial)
        if required.ors or required.other:
            return f"partial on {_short(index.partial)}: only an identical filter could use it (not checked here)"
        for path, clauses in required.preds.items():
            for clause in clauses:
                if not any(_subset(p, clause) for p in conj.preds.get(path, [])):
                    return (f"partial index: the filter ({_describe(conj, path)} on {path!r}) does not imply "
                            f"{{{path!r}: {clause.op} {_short(clause.value)}}}, so mongod cannot use it")
    if index.sparse:
        exists = Pred("$exists", True, RESIDUAL)
        if not any(_subset(p, exists) for name, _ in index.keys for p in conj.preds.get(name, [])):
            return "sparse index: no predicate excludes documents without its fields"
    return None


def _subset(p: Pred, clause: Pred) -> bool:
    """Documents matching predicate ``p`` all match ``clause`` (same field), as mongod can prove it."""
    if p.op == clause.op and _same(p.value, clause.value):
        return True
    if clause.op in _COMPARISONS:
        if p.op in _COMPARISONS:
            return _comparison_subset(p.op, p.value, clause.op, clause.value)
        if p.op == "$in" and p.kind != RESIDUAL:
            return all(_comparison_subset("$eq", v, clause.op, clause.value) for v in p.value)
        return False
    if clause.op == "$exists" and clause.value:
        if p.op in _COMPARISONS:
            return p.value is not None
        if p.op == "$in":
            return None not in p.value
        return p.op in ("$regex", "$type", "$size", "$elemMatch", "$mod") or (p.op == "$exists" and bool(p.value))
    if clause.op == "$in":
        return any(_subset(p, Pred("$eq", v, EQ)) for v in clause.value)
    return False  # $type and the rest: only the identical predicate (above)


def _comparison_subset(lop: str, lv: Any, rop: str, rv: Any) -> bool:
    if _canonical(lv) != _canonical(rv) or _canonical(lv) is None:
        return False
    cmp = _compare(lv, rv)
    if lop == rop and cmp == 0:
        return True
    if rop in ("$lt", "$lte") and lop in ("$lt", "$lte", "$eq"):
        return cmp <= 0 if rop == "$lte" else cmp < 0
    if rop in ("$gt", "$gte") and lop in ("$gt", "$gte", "$eq"):
        return cmp >= 0 if rop == "$gte" else cmp > 0
    return False


def _canonical(value: Any) -> str | None:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float, Int64, Decimal128)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, datetime):
        return "date"
    if isinstance(value, ObjectId):
        return "objectid"
    return None  # documents, arrays, binary...: not compared here


def _compare(a: Any, b: Any) -> int:
    if isinstance(a, str):
        a, b = a.encode(), b.encode()  # BSON strings compare as UTF-8 bytes
    elif isinstance(a, (Decimal128, Int64, int, float)) and not isinstance(a, bool):
        a, b = float(a.to_decimal() if isinstance(a, Decimal128) else a), float(
            b.to_decimal() if isinstance(b, Decimal128) else b)
    return (a > b) - (a < b)


def _same(a: Any, b: Any) -> bool:
    try:
        if _canonical(a) is not None or _canonical(b) is not None:  # a str subclass (StrEnum) is a string
            return _canonical(a) == _canonical(b) and _compare(a, b) == 0 if _canonical(a) != "null" else b is None
        return bool(a == b) and type(a) is type(b)
    except Exception:  # noqa: BLE001 - incomparable values are not the same
        return False


# --------------------------------------------------------------------------------------------------


def _direction(value: Any) -> Any:
    if isinstance(value, (int, float, Int64)) and not isinstance(value, bool):
        return 1 if value > 0 else -1
    return str(value)


def _default_name(keys: Iterable[tuple[str, Any]]) -> str:
    return "_".join(f"{k}_{d}" for k, d in keys)


def _sort(spec: Any) -> tuple[tuple[str, int], ...]:
    if not spec:
        return ()
    items = spec.items() if isinstance(spec, Mapping) else spec
    out = []
    for key, direction in items:
        if isinstance(direction, Mapping):  # {"$meta": "textScore"}: not an index order
            continue
        out.append((str(key), 1 if direction > 0 else -1))
    return tuple(out)


def _short(value: Any, limit: int = 240) -> str:
    text = repr(plain(value))
    return text if len(text) <= limit else text[:limit - 3] + "..."


def plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        shown = [plain(v) for v in value[:5]]
        return shown + [f"... {len(value) - 5} more"] if len(value) > 5 else shown
    if isinstance(value, ObjectId):
        return f"ObjectId({str(value)[-6:]})"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, (Regex, re.Pattern)):
        return f"/{value.pattern}/"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return value
