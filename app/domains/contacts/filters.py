"""The one contact filter language: the contacts page, the JSON API, segments, exports and broadcasts.

A filter is ``{"match": "all" | "any", "conditions": [{"field", "op", "value"}, ...]}`` (at most
MAX_CONDITIONS). Fields and their operators:

- ``name`` (the name agents gave or the WhatsApp profile name), ``phone``, ``email``, ``user_id``,
  ``username``: ``is``, ``is_not``, ``contains``, ``starts_with`` (case-insensitive; phone by digits);
- ``tag``: ``has``, ``has_not``; ``label`` (a label id on any of the contact's conversations): the same;
- ``opted_out``: ``is``, ``is_not`` (true / false);
- ``created_at``, ``last_inbound_at``: ``before``, ``after``, ``on`` (an ISO date, days in UTC, or a
  full ISO date-time for ``before`` / ``after``);
- ``attributes.<key>``: by the attribute's type: text and list like ``name``; number ``gt``, ``lt``,
  ``is``, ``is_not``; date and date-time ``before``, ``after``, ``on``; yes/no ``is``, ``is_not``;
- every field: ``is_set``, ``is_unset``.

:func:`parse_filter` checks the shape (a bad filter is a 422 ``FILTER_INVALID`` naming the condition,
never a 500); :func:`contact_query` turns it into the Mongo filter, typing attribute values by their
definition. Every query is scoped to a workspace and leaves groups out.

Indexes (``Contact.Settings``): ``phone`` is / starts with, ``email`` is / starts with, ``user_id`` is
(through ``identities``), ``tag`` has, ``created_at`` / ``last_inbound_at`` ranges and every sort are
served by an index. Not indexed, so read through the sort's index with the filter applied to each
contact: ``contains`` and any case-insensitive text match (an unanchored or case-insensitive regex
cannot use index bounds), ``name``, ``username``, ``opted_out`` (two values: an index would not be
selective), negations (``is_not``, ``has_not``) and ``attributes.<key>`` (keys are the admins' own, so
there is no index per key). ``label`` costs one extra ``distinct`` query (see ``filter_clauses.label_clause``).
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from beanie import PydanticObjectId
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from app.db import parse_object_id
from app.domains.catalog.models import ContactAttribute
from app.domains.contacts.attribute_values import attribute_definitions
from app.domains.contacts.filter_clauses import (
    ATTRIBUTE_KEY,
    ATTRIBUTE_PREFIX,
    FIELDS,
    MAX_CONDITIONS,
    MAX_FILTER_TEXT,
    MAX_SEARCH,
    PRESENCE_OPS,
    Refused,
    clause_of,
    label_clause,
    ops_of,
    value_present,
)
from app.domains.contacts.models import holding
from app.domains.conversations.search import SearchQuery
from app.errors import ValidationFailed

FILTER_DESCRIPTION = (
    "A contact filter: `{\"match\": \"all\"|\"any\", \"conditions\": [{\"field\", \"op\", \"value\"}]}` (at most 20 "
    "conditions). Fields: name, phone, email, user_id, username, tag, label, opted_out, created_at, "
    "last_inbound_at, attributes.<key>. Operators: is, is_not, contains, starts_with (text); gt, lt (numbers); "
    "before, after, on (dates, ISO); has, has_not (tag, label); is_set, is_unset (any). "
    "An invalid one answers 422 `FILTER_INVALID` naming the condition.")
FILTER_EXAMPLE = {"match": "all", "conditions": [{"field": "tag", "op": "has", "value": "vip"},
                                                 {"field": "attributes.plan", "op": "is", "value": "pro"}]}
"""How the JSON API documents a filter (query parameter and body fields)."""

SORTS: dict[str, tuple[str, bool]] = {
    "created": ("created_at", True),
    "updated": ("updated_at", True),
    "last_inbound": ("last_inbound_at", True),
    "name": ("sort_name", False),
}
"""The contacts list's orders: sort name -> (field, descending). Each is keyset-paged on (field, _id)
and served by a (workspace_id, field, _id) index."""


def sort_of(sort: str) -> tuple[str, bool]:
    """(field, descending) of a sort name; 422 SORT_INVALID for any other."""
    try:
        return SORTS[sort]
    except KeyError:
        raise ValidationFailed(f"Sort by one of: {', '.join(SORTS)}.", error_code="SORT_INVALID",
                               details={"sort": str(sort)[:40]}) from None


def object_ids(ids: list[str]) -> list[PydanticObjectId]:
    """Contact ids as given by a client; 422 naming the first that is not an id."""
    found = []
    for value in ids:
        oid = parse_object_id(value)
        if oid is None:
            raise ValidationFailed("Not a contact id.", error_code="ID_INVALID", details={"ids": str(value)[:40]})
        found.append(oid)
    return found


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    field: str = Field(max_length=60, description="`name`, `phone`, `email`, `user_id`, `username`, `tag`, "
                       "`label`, `opted_out`, `created_at`, `last_inbound_at` or `attributes.<key>`",
                       examples=["attributes.plan"])
    op: str = Field(max_length=20, description="`is`, `is_not`, `contains`, `starts_with`, `gt`, `lt`, `before`, "
                    "`after`, `on`, `has`, `has_not`, `is_set`, `is_unset` (which ones depend on the field)",
                    examples=["is"])
    value: Any = Field(None, description="Text, a number, true/false, an ISO date, or a list of tags / label ids "
                       "for `has`; none for `is_set` / `is_unset`", examples=["pro"])


class ContactFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    match: Literal["all", "any"] = Field("all", description="`all`: every condition holds; `any`: at least one")
    conditions: list[Condition] = Field(default_factory=list, max_length=MAX_CONDITIONS)

    @property
    def empty(self) -> bool:
        return not self.conditions


def _invalid(details: dict[str, str], message: str | None = None) -> ValidationFailed:
    return ValidationFailed(message or "This filter cannot be used: " + "; ".join(f"{k}: {v}"
                                                                               for k, v in details.items()),
                            error_code="FILTER_INVALID", details=details)


def parse_filter(raw: str | dict[str, Any] | list[Any] | ContactFilter | None) -> ContactFilter:
    """A ContactFilter from a JSON string (a query parameter), a dict (a JSON body), a bare list of
    conditions (all must hold) or None (no filter). 422 FILTER_INVALID, naming the condition, otherwise."""
    if raw is None or isinstance(raw, ContactFilter):
        return raw or ContactFilter()
    if isinstance(raw, str):
        if not raw.strip():
            return ContactFilter()
        if len(raw) > MAX_FILTER_TEXT:
            raise _invalid({"filter": f"at most {MAX_FILTER_TEXT} characters"})
        try:
            raw = json.loads(raw)
        except ValueError:
            raise _invalid({"filter": "not JSON"}, "The filter is not valid JSON.") from None
    if isinstance(raw, list):
        raw = {"conditions": raw}
    if not isinstance(raw, dict):
        raise _invalid({"filter": "an object with match and conditions"})
    try:
        spec = ContactFilter.model_validate(raw)
    except PydanticValidationError as exc:
        details = {}
        for error in exc.errors():
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".")
            details[where or "filter"] = error["msg"]
        raise _invalid(details) from None
    details = {}
    for i, condition in enumerate(spec.conditions):
        try:
            _check(condition)
        except Refused as exc:
            details[f"conditions[{i}].{exc.part}"] = exc.reason
    if details:
        raise _invalid(details)
    return spec


def _check(condition: Condition) -> None:
    """What can be checked without the attribute definitions (contact_query checks the rest)."""
    field, op = condition.field, condition.op
    if field.startswith(ATTRIBUTE_PREFIX):
        if not ATTRIBUTE_KEY.match(field[len(ATTRIBUTE_PREFIX):]):
            raise Refused("field", "attributes.<key>: the key of a contact attribute")
    elif field not in FIELDS:
        raise Refused("field", "one of " + ", ".join(FIELDS) + " or attributes.<key>")
    if op not in ops_of(field):
        raise Refused("op", f"{field} takes " + ", ".join(ops_of(field)))
    if op in PRESENCE_OPS:
        return
    if field.startswith(ATTRIBUTE_PREFIX):  # its type is known in contact_query
        value_present(condition)
        return
    clause_of(condition, None)  # builds and drops it: every value error surfaces now, not in contact_query


def search_clause(q: str, definitions: dict[str, ContactAttribute]) -> dict[str, Any] | None:
    """Every word of ``q`` starts a word of the name / profile name / username, or the digits appear in
    the number (the inbox search's indexed tokens); or ``q`` is the user id, starts the email, or is
    part of a text or list attribute's value (those are not indexed)."""
    q = q.strip()
    if not q:
        return None
    if len(q) > MAX_SEARCH:
        raise ValidationFailed(f"Search at most {MAX_SEARCH} characters.", details={"q": "too long"},
                               status_code=400)
    branches: list[dict[str, Any]] = []
    tokens = SearchQuery(q).contact_filter()
    if tokens:
        branches.append(tokens)
    branches.append(holding(f"user:{q}"))
    branches.append({"email": {"$regex": "^" + re.escape(q.lower()), "$type": "string"}})
    contains = {"$regex": re.escape(q), "$options": "i"}
    branches += [{f"attributes.{key}": contains} for key, d in definitions.items() if d.type in ("text", "list")]
    return {"$or": branches}


async def contact_query(workspace_id: PydanticObjectId, spec: ContactFilter | None, *, q: str | None = None,
                        definitions: dict[str, ContactAttribute] | None = None) -> dict[str, Any]:
    """The Mongo filter on contacts for ``spec`` and the search words ``q``: always scoped to the
    workspace, never a group. Attribute values are typed by their definitions (read once, or given).
    422 FILTER_INVALID when a condition does not fit the attribute's type."""
    query: dict[str, Any] = {"workspace_id": workspace_id, "kind": {"$ne": "group"}}
    needs_definitions = bool(q) or any(c.field.startswith(ATTRIBUTE_PREFIX) for c in (spec.conditions if spec else []))
    if definitions is None and needs_definitions:
        definitions = await attribute_definitions(workspace_id)
    definitions = definitions or {}
    parts: list[dict[str, Any]] = []
    if spec is not None and spec.conditions:
        clauses: list[dict[str, Any]] = []
        details: dict[str, str] = {}
        for i, condition in enumerate(spec.conditions):
            try:
                if condition.field == "label":
                    clause_of(condition, None)
                    clauses.append(await label_clause(workspace_id, condition))
                    continue
                definition = definitions.get(condition.field[len(ATTRIBUTE_PREFIX):]) \
                    if condition.field.startswith(ATTRIBUTE_PREFIX) else None
                clauses.append(clause_of(condition, definition))
            except Refused as exc:
                details[f"conditions[{i}].{exc.part}"] = exc.reason
        if details:
            raise _invalid(details)
        if spec.match == "any" and len(clauses) > 1:
            parts.append({"$or": clauses})
        else:
            parts += clauses
    if q:
        searched = search_clause(q, definitions)
        if searched:
            parts.append(searched)
    if parts:
        query["$and"] = parts
    return query
