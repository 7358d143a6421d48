"""The filter language's vocabulary (fields, operators) and each condition's Mongo clause.

app/domains/contacts/filters.py is the interface (the models, parse_filter, contact_query); this
module turns one checked condition into its clause, raising Refused (which part, why) when its
value does not fit the field or the attribute's type.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from beanie import PydanticObjectId

from app.domains.catalog.models import ContactAttribute
from app.domains.contacts.attribute_values import AttributeValueError, as_utc_datetime, coerce_attribute
from app.domains.contacts.models import holding
from app.domains.conversations.models import Conversation

if TYPE_CHECKING:
    from app.domains.contacts.filters import Condition

MAX_CONDITIONS = 20
MAX_FILTER_TEXT = 20_000
MAX_VALUE = 500
MAX_SEARCH = 100

TEXT_FIELDS = ("name", "phone", "email", "user_id", "username")
DATE_FIELDS = ("created_at", "last_inbound_at")
FIELDS = (*TEXT_FIELDS, "tag", "label", "opted_out", *DATE_FIELDS)
ATTRIBUTE_PREFIX = "attributes."
ATTRIBUTE_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")

PRESENCE_OPS = ("is_set", "is_unset")
TEXT_OPS = ("is", "is_not", "contains", "starts_with", *PRESENCE_OPS)
NUMBER_OPS = ("gt", "lt", "is", "is_not", *PRESENCE_OPS)
DATE_OPS = ("before", "after", "on", *PRESENCE_OPS)
BOOLEAN_OPS = ("is", "is_not", *PRESENCE_OPS)
SET_OPS = ("has", "has_not", *PRESENCE_OPS)
OPS_BY_TYPE = {"text": TEXT_OPS, "list": TEXT_OPS, "number": NUMBER_OPS, "date": DATE_OPS, "datetime": DATE_OPS,
               "boolean": BOOLEAN_OPS}
ATTRIBUTE_OPS = tuple(dict.fromkeys(op for ops in OPS_BY_TYPE.values() for op in ops))


def ops_of(field: str) -> tuple[str, ...]:
    """The operators a field takes (an attribute's depend on its type: see OPS_BY_TYPE)."""
    if field in TEXT_FIELDS:
        return TEXT_OPS
    if field in DATE_FIELDS:
        return DATE_OPS
    if field in ("tag", "label"):
        return SET_OPS
    if field == "opted_out":
        return ("is", "is_not")
    return ATTRIBUTE_OPS


class Refused(Exception):
    """A condition that cannot be used: ``part`` ("field", "op" or "value") and why, in words."""

    def __init__(self, part: str, reason: str) -> None:
        super().__init__(reason)
        self.part, self.reason = part, reason


def value_present(condition: Condition) -> None:
    value = condition.value
    if value is None or (isinstance(value, str) and not value.strip()) or value == []:
        raise Refused("value", "a value is needed")
    if isinstance(value, str) and len(value) > MAX_VALUE:
        raise Refused("value", f"at most {MAX_VALUE} characters")
    if isinstance(value, dict):
        raise Refused("value", "text, a number, true/false or a list")


def _text(condition: Condition) -> str:
    value_present(condition)
    value = condition.value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Refused("value", "text")
    return str(value).strip()


def _regex(text: str, op: str) -> dict[str, Any]:
    pattern = re.escape(text)
    pattern = f"^{pattern}$" if op in ("is", "is_not") else f"^{pattern}" if op == "starts_with" else pattern
    return {"$regex": pattern, "$options": "i"}


def _negate(op: str, clause: dict[str, Any]) -> dict[str, Any]:
    return {"$nor": [clause]} if op in ("is_not", "has_not") else clause


def _presence(path: str, op: str, *, empty: tuple[Any, ...] = (None, "")) -> dict[str, Any]:
    # {"$in": [None, ...]} also matches a missing field.
    return {path: {"$nin": list(empty)}} if op == "is_set" else {path: {"$in": list(empty)}}


def _day_or_moment(condition: Condition) -> tuple[datetime, bool]:
    """(the moment, whether only a day was given) from an ISO date or date-time value."""
    value = condition.value
    value_present(condition)
    if isinstance(value, datetime):
        return as_utc_datetime(value), False
    if not isinstance(value, str):
        raise Refused("value", "an ISO date (YYYY-MM-DD) or date-time")
    text = value.strip()
    try:
        if len(text) == 10:
            return datetime.fromisoformat(text).replace(tzinfo=UTC), True
        return as_utc_datetime(datetime.fromisoformat(text)), False
    except ValueError:
        raise Refused("value", "an ISO date (YYYY-MM-DD) or date-time") from None


def _date_clause(path: str, condition: Condition) -> dict[str, Any]:
    moment, whole_day = _day_or_moment(condition)
    day = datetime.combine(moment.date(), time(0), tzinfo=UTC)
    if condition.op == "on":
        return {path: {"$gte": day, "$lt": day + timedelta(days=1)}}
    if condition.op == "before":
        return {path: {"$lt": day if whole_day else moment}}
    return {path: {"$gte": day + timedelta(days=1)} if whole_day else {"$gt": moment}}


def _boolean(condition: Condition) -> bool:
    value = condition.value
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no"):
        return value.strip().lower() in ("true", "yes")
    raise Refused("value", "true or false")


def _names(condition: Condition) -> list[str]:
    value = condition.value
    values = value if isinstance(value, list) else [value]
    if not values or len(values) > 100:
        raise Refused("value", "1 to 100 values")
    if any(not isinstance(v, str) or not v.strip() or len(v) > 100 for v in values):
        raise Refused("value", "a name (or a list of names) of at most 100 characters")
    return [v.strip() for v in values]


def clause_of(condition: Condition, definition: ContactAttribute | None) -> dict[str, Any]:
    """The Mongo clause of one condition (``label`` is resolved by contact_query). Raises Refused."""
    field, op = condition.field, condition.op
    if field.startswith(ATTRIBUTE_PREFIX):
        return _attribute_clause(condition, definition)
    if field == "name":
        if op in PRESENCE_OPS:
            either = {"$or": [{"name": {"$nin": [None, ""]}}, {"profile_name": {"$nin": [None, ""]}}]}
            return either if op == "is_set" else {"$nor": [either]}
        match = _regex(_text(condition), op)
        return _negate(op, {"$or": [{"name": match}, {"profile_name": match}]})
    if field == "phone":
        if op in PRESENCE_OPS:
            return _presence("phone", op)
        digits = re.sub(r"\D", "", _text(condition))
        if not digits:
            raise Refused("value", "digits of a phone number")
        if op in ("is", "is_not"):
            return {"phone": "+" + digits} if op == "is" else {"phone": {"$ne": "+" + digits}}
        return {"phone": {"$regex": ("^\\+" if op == "starts_with" else "") + digits}}
    if field == "email":
        if op in PRESENCE_OPS:
            return _presence("email", op)
        text = _text(condition).lower()
        # Stored lower-case, so exact and prefix matches are case-sensitive ones the (partial) email
        # index serves; the $type test lets the planner use that partial index.
        if op == "is":
            return {"email": {"$eq": text, "$type": "string"}}
        if op == "is_not":
            return {"email": {"$ne": text}}
        if op == "starts_with":
            return {"email": {"$regex": "^" + re.escape(text), "$type": "string"}}
        return {"email": {"$regex": re.escape(text)}}
    if field == "user_id":
        if op in PRESENCE_OPS:
            return _presence("user_id", op)
        text = _text(condition)
        if op == "is":
            return holding(f"user:{text}")  # the unique identities index finds it
        if op == "is_not":
            return {"user_id": {"$ne": text}}
        return {"user_id": _regex(text, op)}
    if field == "username":
        if op in PRESENCE_OPS:
            return _presence("username", op)
        return _negate(op, {"username": _regex(_text(condition).lstrip("@"), op)})
    if field == "tag":
        if op in PRESENCE_OPS:
            return {"tags.0": {"$exists": op == "is_set"}}
        tags = _names(condition)
        return {"tags": {"$in": tags}} if op == "has" else {"tags": {"$nin": tags}}
    if field == "label":
        if op not in PRESENCE_OPS:
            _names(condition)
        return {}
    if field == "opted_out":
        wanted = _boolean(condition) == (op == "is")
        return {"opted_out_marketing": True} if wanted else {"opted_out_marketing": {"$ne": True}}
    if field in DATE_FIELDS:
        if op in PRESENCE_OPS:
            return _presence(field, op, empty=(None,))
        return _date_clause(field, condition)
    raise Refused("field", "unknown field")


def _attribute_clause(condition: Condition, definition: ContactAttribute | None) -> dict[str, Any]:
    key = condition.field[len(ATTRIBUTE_PREFIX):]
    path, op = f"attributes.{key}", condition.op
    type_ = definition.type if definition is not None else "text"
    allowed = OPS_BY_TYPE.get(type_, TEXT_OPS)
    if op not in allowed:
        raise Refused("op", f"{key} is {type_}: it takes " + ", ".join(allowed))
    if op in PRESENCE_OPS:
        return _presence(path, op)
    if type_ in ("date", "datetime"):
        return _date_clause(path, condition)
    value_present(condition)
    if type_ == "text" or (type_ == "list" and op in ("contains", "starts_with")):
        return _negate(op, {path: _regex(_text(condition), op)})
    try:
        value = coerce_attribute(definition, condition.value, key=key)
    except AttributeValueError as exc:
        raise Refused("value", exc.message) from None
    if op == "gt":
        return {path: {"$gt": value}}
    if op == "lt":
        return {path: {"$lt": value}}
    return {path: value} if op == "is" else {path: {"$ne": value}}


async def label_clause(workspace_id: PydanticObjectId, condition: Condition) -> dict[str, Any]:
    """Contacts with (or without) a label on any of their conversations. Labels are on conversations,
    so this costs one ``distinct`` of contact ids over the conversations carrying the label (served by
    the (workspace_id, labels, ...) index), then an ``$in`` of those ids on contacts by ``_id``: cheap
    while a label is on up to tens of thousands of conversations."""
    if condition.op in PRESENCE_OPS:
        match: dict[str, Any] = {"labels.0": {"$exists": True}}
    else:
        match = {"labels": {"$in": _names(condition)}}
    ids = await Conversation.distinct("contact_id", {"workspace_id": workspace_id, **match})
    return {"_id": {"$in": ids}} if condition.op in ("has", "is_set") else {"_id": {"$nin": ids}}
