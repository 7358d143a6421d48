"""Typed contact attribute values: what an admin's definition (text, number, date, date-time, yes/no,
list of choices) accepts, how it is stored, and how it is shown.

One set of rules for every path that writes an attribute (the inbox side panel, the contacts page,
the JSON API, CSV import) so a value is validated by type everywhere. Stored values are BSON-native
(``int`` / ``float``, ``datetime`` in UTC, ``bool``, ``str``) so the contacts filters can compare
them in Mongo (``attributes.renewal before 2025-01-01`` is a range on real dates, not on text).
An attribute with no definition (a key sent through the API before anyone defined it) is text.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time
from typing import Any

from beanie import PydanticObjectId

from app.domains.catalog.models import ContactAttribute
from app.errors import ValidationFailed

MAX_TEXT = 500
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TRUE = {"true", "yes", "1", "y", "on"}
_FALSE = {"false", "no", "0", "n", "off"}
_BSON_INT = 2**63
TYPE_WORDS = {"text": "text", "number": "a number", "date": "a date (YYYY-MM-DD)",
              "datetime": "a date and time (ISO 8601, e.g. 2025-03-01T14:30:00Z)", "boolean": "yes or no",
              "list": "one of the choices"}


class AttributeValueError(ValueError):
    """A value the attribute's type refuses; ``message`` says what was expected, in words."""

    def __init__(self, message: str, *, key: str, expected: str) -> None:
        super().__init__(message)
        self.message = message
        self.key = key
        self.expected = expected

    def as_validation_error(self) -> ValidationFailed:
        """The 422 the page and API answer (``ATTRIBUTE_INVALID``, naming the attribute and its type)."""
        return ValidationFailed(self.message, error_code="ATTRIBUTE_INVALID",
                                details={self.key: self.message, "expected": self.expected})


def attribute_type(definition: ContactAttribute | None) -> str:
    return definition.type if definition is not None else "text"


def coerce_attribute(definition: ContactAttribute | None, raw: Any, *, key: str) -> Any:
    """The value to store for ``raw`` (text from a form or CSV cell, or a JSON value from the API);
    ``None`` means "unset" (for ``None``, "" and blank text). Raises AttributeValueError."""
    type_ = attribute_type(definition)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    name = definition.name if definition is not None else key

    def refuse(why: str = "") -> AttributeValueError:
        shown = str(raw)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        text = f"{name} must be {TYPE_WORDS.get(type_, type_)}" + (f" ({why})" if why else "")
        return AttributeValueError(f"{text}; got {shown!r}.", key=key, expected=type_)

    text = raw.strip() if isinstance(raw, str) else None
    if type_ == "number":
        return _number(raw, text, refuse)
    if type_ == "date":
        return _date(raw, text, refuse)
    if type_ == "datetime":
        return _datetime(raw, text, refuse)
    if type_ == "boolean":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, int) and raw in (0, 1):
            return bool(raw)
        if text is not None and text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise refuse()
    if type_ == "list":
        options = definition.options if definition is not None else []
        candidate = text if text is not None else (str(raw) if isinstance(raw, int | float) and
                                                   not isinstance(raw, bool) else None)
        if candidate is not None:
            for option in options:
                if option.casefold() == candidate.casefold():
                    return option
        raise refuse("one of: " + ", ".join(options[:10]) + ("…" if len(options) > 10 else ""))
    # text (and any type this version does not know)
    if text is None:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise refuse()
        text = str(raw)
    if len(text) > MAX_TEXT:
        raise refuse(f"at most {MAX_TEXT} characters, this has {len(text)}")
    return text


def _number(raw: Any, text: str | None, refuse: Any) -> int | float:
    if isinstance(raw, bool):
        raise refuse()
    if isinstance(raw, int):
        value: int | float = raw
    elif isinstance(raw, float):
        value = raw
    elif text is not None and _INT.match(text):
        value = int(text)
    elif text is not None and _FLOAT.match(text):
        value = float(text)
    else:
        raise refuse()
    if isinstance(value, int) and not -_BSON_INT <= value < _BSON_INT:
        raise refuse("too large")
    if isinstance(value, float) and not math.isfinite(value):
        raise refuse()
    return value


def _date(raw: Any, text: str | None, refuse: Any) -> datetime:
    if isinstance(raw, datetime):
        day = as_utc_datetime(raw).date()
    elif isinstance(raw, date):
        day = raw
    elif text is not None and _DATE.match(text[:10]) and (len(text) == 10 or text[10] in "T "):
        try:
            day = date.fromisoformat(text[:10])
        except ValueError:
            raise refuse("no such day") from None
    else:
        raise refuse()
    return datetime.combine(day, time(0), tzinfo=UTC)


def _datetime(raw: Any, text: str | None, refuse: Any) -> datetime:
    if isinstance(raw, datetime):
        value = raw
    elif isinstance(raw, date):
        value = datetime.combine(raw, time(0))
    elif text is not None and _DATE.match(text[:10]):
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise refuse() from None
    else:
        raise refuse()
    value = as_utc_datetime(value)
    # Mongo keeps milliseconds: store what it will give back, so a value compares equal to itself.
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def as_utc_datetime(value: datetime) -> datetime:
    """Aware UTC (naive values, like the ones Mongo gives back, are UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def show_attribute(definition: ContactAttribute | None, value: Any) -> str:
    """How the contacts page, the side panel, canned responses and CSV show a stored value."""
    if value is None:
        return ""
    type_ = attribute_type(definition)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        value = as_utc_datetime(value)
        if type_ == "date" or (type_ != "datetime" and value.time() == time(0)):
            return value.date().isoformat()
        return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds").replace("+00:00", "Z")
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def shown_attributes(definitions: dict[str, ContactAttribute], attributes: dict[str, Any]) -> dict[str, str]:
    """Every attribute of a contact as text (defined or not), for templates and variables."""
    return {key: show_attribute(definitions.get(key), value) for key, value in attributes.items()}


async def attribute_definitions(workspace_id: PydanticObjectId) -> dict[str, ContactAttribute]:
    """The workspace's attribute definitions by key (one small query; a workspace has at most a few dozen)."""
    return {a.key: a for a in await ContactAttribute.scoped(workspace_id).to_list()}
