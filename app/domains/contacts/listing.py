"""The contacts page's list as its form states it: the search, the conditions (one row each: field,
operator, value), the sort and the saved segment, turned into the filter language of
app/domains/contacts/filters.py (the API and segments speak the same one).

No Litestar here: the controller hands over the query string as (name, value) pairs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from beanie import PydanticObjectId

from app.domains.catalog.models import ContactAttribute, Label
from app.domains.contacts.filters import Condition, ContactFilter, parse_filter
from app.errors import AppError

MAX_ROWS = 20
SORT_CHOICES = (("created", "Newest first"), ("updated", "Recently changed"), ("last_inbound", "Last message from them"),
                ("name", "Name A→Z"))
OPS = {
    "text": ("is", "is_not", "contains", "starts_with", "is_set", "is_unset"),
    "number": ("is", "is_not", "gt", "lt", "is_set", "is_unset"),
    "date": ("on", "before", "after", "is_set", "is_unset"),
    "datetime": ("on", "before", "after", "is_set", "is_unset"),
    "boolean": ("is",),
    "list": ("is", "is_not", "is_set", "is_unset"),
    "tag": ("has", "has_not"),
    "label": ("has", "has_not"),
}
OP_NAMES = {"is": "is", "is_not": "is not", "contains": "contains", "starts_with": "starts with",
            "gt": "more than", "lt": "less than", "on": "on", "before": "before", "after": "after",
            "is_set": "is set", "is_unset": "is not set", "has": "has", "has_not": "does not have"}
NO_VALUE = frozenset({"is_set", "is_unset"})
BUILT_IN = (("name", "Name", "text"), ("phone", "Phone", "text"), ("email", "Email", "text"),
            ("username", "WhatsApp username", "text"), ("user_id", "WhatsApp user id", "text"),
            ("tag", "Tag", "tag"), ("label", "Conversation label", "label"),
            ("opted_out", "Opted out of marketing", "boolean"),
            ("last_inbound_at", "Last message from them", "date"), ("created_at", "Created", "date"))


@dataclass
class FieldChoice:
    value: str
    name: str
    type: str
    options: list[tuple[str, str]] = field(default_factory=list)
    """(value, shown) for list, boolean and label fields: the value is a <select>."""

    @property
    def ops(self) -> tuple[str, ...]:
        return OPS.get(self.type, OPS["text"])

    @property
    def input_type(self) -> str:
        return {"number": "number", "date": "date", "datetime": "date"}.get(self.type, "text")


@dataclass
class ConditionRow:
    field: str
    op: str
    value: str
    choice: FieldChoice | None


@dataclass
class ListState:
    """What the page's form says, and the filter it means."""

    q: str = ""
    sort: str = "created"
    match: str = "all"
    segment: str = ""
    rows: list[ConditionRow] = field(default_factory=list)
    spec: ContactFilter | None = None
    fields: list[FieldChoice] = field(default_factory=list)
    error: AppError | None = None

    def query_pairs(self) -> list[tuple[str, str]]:
        pairs = [("q", self.q), ("sort", self.sort), ("match", self.match), ("segment", self.segment)]
        for row in self.rows:
            pairs += [("field", row.field), ("op", row.op), ("value", row.value)]
        return [(k, v) for k, v in pairs if v]

    def query_string(self, **extra: str) -> str:
        return urlencode(self.query_pairs() + [(k, v) for k, v in extra.items() if v])

    @property
    def filter_json(self) -> str:
        return json.dumps(self.spec.model_dump(mode="json")) if self.spec and self.spec.conditions else ""


async def field_choices(workspace_id: PydanticObjectId) -> list[FieldChoice]:
    """Every field the filter rows offer: built-in ones, then the workspace's attributes."""
    labels = await Label.scoped(workspace_id).sort("name").to_list()
    choices = []
    for value, name, kind in BUILT_IN:
        options: list[tuple[str, str]] = []
        if kind == "label":
            options = [(str(label.id), label.name) for label in labels]
        elif kind == "boolean":
            options = [("true", "yes"), ("false", "no")]
        choices.append(FieldChoice(value, name, kind, options))
    for attribute in await ContactAttribute.scoped(workspace_id).sort("name").to_list():
        options = [(o, o) for o in attribute.options] if attribute.type == "list" else (
            [("true", "yes"), ("false", "no")] if attribute.type == "boolean" else [])
        choices.append(FieldChoice(f"attributes.{attribute.key}", attribute.name, attribute.type, options))
    return choices


def _value(choice: FieldChoice | None, raw: str) -> Any:
    """The form's text as the filter language wants it (booleans as booleans, numbers as numbers)."""
    if choice is None:
        return raw
    if choice.type == "boolean":
        return raw.lower() in ("true", "yes", "1", "on")
    if choice.type == "number":
        try:
            number = float(raw)
        except ValueError:
            return raw  # the filter refuses it with its own words
        return int(number) if number.is_integer() else number
    return raw


async def list_state(workspace_id: PydanticObjectId, params: Iterable[tuple[str, str]], *,
                     add_row: bool = False, drop_row: int | None = None) -> ListState:
    """The page's state from its query string; conditions without a field are blank rows."""
    values: dict[str, list[str]] = {}
    for key, value in params:
        values.setdefault(key, []).append(value.strip())
    fields = await field_choices(workspace_id)
    by_value = {f.value: f for f in fields}
    rows: list[ConditionRow] = []
    for index, name in enumerate(values.get("field", [])[:MAX_ROWS]):
        op = (values.get("op") or [])[index] if index < len(values.get("op") or []) else ""
        value = (values.get("value") or [])[index] if index < len(values.get("value") or []) else ""
        choice = by_value.get(name)
        if choice is not None and op not in choice.ops:
            op = choice.ops[0]
        rows.append(ConditionRow(name, op, value, choice))
    if drop_row is not None and 0 <= drop_row < len(rows):
        rows.pop(drop_row)
    if add_row and len(rows) < MAX_ROWS:
        rows.append(ConditionRow("", "", "", None))
    sort = (values.get("sort") or ["created"])[-1]
    match = (values.get("match") or ["all"])[-1]
    state = ListState(q=(values.get("q") or [""])[-1][:100], sort=sort if sort in dict(SORT_CHOICES) else "created",
                      match=match if match in ("all", "any") else "all", segment=(values.get("segment") or [""])[-1],
                      rows=rows, fields=fields)
    complete = [r for r in rows if r.field and r.op and (r.op in NO_VALUE or r.value)]
    if complete:
        try:
            state.spec = parse_filter({"match": state.match, "conditions": [
                Condition(field=r.field, op=r.op, value=None if r.op in NO_VALUE else _value(r.choice, r.value)).model_dump()
                for r in complete]})
        except AppError as error:  # it names the bad row ("conditions[1].value"): the page shows it
            state.error = error
    return state


@dataclass
class SegmentLink:
    id: str
    name: str
    count: int | None


async def segment_links(workspace_id: PydanticObjectId) -> list[SegmentLink]:
    """The saved segments beside the list, each with how many contacts it holds now (one count
    each: a workspace keeps a handful; a segment whose filter no longer fits its attributes shows none)."""
    from app.domains.segments.services import SegmentService

    service = SegmentService()
    links = []
    for segment in await service.list(workspace_id):
        try:
            count: int | None = await service.count(segment)
        except AppError:
            count = None
        links.append(SegmentLink(str(segment.id), segment.name, count))
    return links
