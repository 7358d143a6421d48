"""What a run knows (its contact, conversation, message, answers) and the tests of conditions and branches.

``Facts`` is read once per run slice; conditions are tested on it in memory, except ``segment``
(one query: is this contact in the segment's filter). Texts of steps are filled from the same
facts (``fill``): ``{{contact.name}}``, ``{{attributes.<key>}}``, ``{{answer}}``, ``{{vars.<name>}}``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from beanie import PydanticObjectId

from app.db import as_utc
from app.domains.contacts.models import Contact
from app.domains.conversations.models import Conversation

_PLACEHOLDER = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_.]*)\s*\}\}")
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass
class Facts:
    workspace_id: PydanticObjectId
    contact: Contact
    conversation: Conversation | None = None
    message_text: str | None = None
    vars: dict[str, Any] = field(default_factory=dict)
    open_now: Callable[[], Awaitable[bool]] | None = None
    """Business hours open now (asked only when a condition needs it)."""
    in_segment: Callable[[str], Awaitable[bool]] | None = None

    def value(self, name: str) -> Any:  # noqa: C901 - one line per field
        contact, conversation = self.contact, self.conversation
        if name.startswith("attributes."):
            return (contact.attributes or {}).get(name.split(".", 1)[1])
        if name.startswith("vars."):  # a dotted path into nested values: vars.webhook.order
            value: Any = self.vars
            for part in name.split(".")[1:]:
                value = value.get(part) if isinstance(value, dict) else None
            return value
        if name == "answer":
            return self.vars.get("answer")
        if name == "tag":
            return list(contact.tags)
        if name == "opted_out":
            return bool(contact.opted_out_marketing)
        if name == "contact.name":
            return contact.display_name
        if name == "contact.phone":
            return contact.phone or (f"+{contact.wa_id}" if contact.wa_id else None)
        if name == "contact.email":
            return contact.email
        if name == "message.text":
            return self.message_text
        if conversation is None:
            return None
        if name == "conversation.status":
            return conversation.status.value
        if name == "conversation.assignee":
            return str(conversation.assignee_id) if conversation.assignee_id else None
        if name == "conversation.team":
            return str(conversation.team_id) if conversation.team_id else None
        if name == "conversation.label":
            return list(conversation.labels)
        if name == "conversation.number":
            return str(conversation.account_id)
        return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except (TypeError, ValueError):
        return None


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, date):
        return as_utc(datetime(value.year, value.month, value.day))
    if isinstance(value, str) and value.strip():
        try:
            return as_utc(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value).strip().casefold()


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        truthy = {"true", "yes", "1", "y", "on"}
        return (_text(left) in truthy) == (_text(right) in truthy)
    a, b = _number(left), _number(right)
    if a is not None and b is not None:
        return a == b
    return _text(left) == _text(right)


def has_word(text: str, words: list[str]) -> bool:
    """One of ``words`` (each one word or several) stands as whole words in ``text``, case and accents as typed."""
    tokens = _WORD.findall(text.casefold())
    joined = " " + " ".join(tokens) + " "
    return any(" " + " ".join(_WORD.findall(w.casefold())) + " " in joined for w in words if _WORD.findall(w))


def test(op: str, actual: Any, expected: Any) -> bool:  # noqa: C901 - one line per operator
    """One condition on a value already read (lists: tags and labels)."""
    if op == "is_set":
        return actual not in (None, "", [])
    if op == "is_unset":
        return actual in (None, "", [])
    if isinstance(actual, list):
        wanted = _text(expected)
        inside = any(_text(item) == wanted for item in actual)
        if op in ("has", "is", "contains", "in"):
            return inside
        if op in ("has_not", "is_not", "not_contains", "not_in"):
            return not inside
        return False
    if op == "is":
        return _same(actual, expected)
    if op == "is_not":
        return not _same(actual, expected)
    if op == "contains":
        return _text(expected) in _text(actual) if _text(expected) else False
    if op == "not_contains":
        return _text(expected) not in _text(actual)
    if op == "starts_with":
        return _text(actual).startswith(_text(expected))
    if op == "has":
        words = expected if isinstance(expected, list) else [str(expected or "")]
        return has_word(str(actual or ""), [str(w) for w in words])
    if op == "has_not":
        words = expected if isinstance(expected, list) else [str(expected or "")]
        return not has_word(str(actual or ""), [str(w) for w in words])
    if op == "matches":
        try:
            return re.search(str(expected or ""), str(actual or ""), re.IGNORECASE) is not None
        except re.error:
            return False
    if op == "in":
        return any(_same(actual, e) for e in (expected if isinstance(expected, list) else [expected]))
    if op == "not_in":
        return not any(_same(actual, e) for e in (expected if isinstance(expected, list) else [expected]))
    if op in ("gt", "lt"):
        a, b = _number(actual), _number(expected)
        if a is None or b is None:
            return False
        return a > b if op == "gt" else a < b
    if op in ("before", "after"):
        early, late = _moment(actual), _moment(expected)
        if early is None or late is None:
            return False
        return early < late if op == "before" else early > late
    return False


async def holds(facts: Facts, conditions: dict[str, Any] | None) -> bool:
    """Whether ``{"match": "all"|"any", "conditions": [...]}`` holds for these facts (none: it holds)."""
    items = (conditions or {}).get("conditions") or []
    if not items:
        return True
    results = []
    for condition in items:
        results.append(await _one(facts, condition))
        if conditions and conditions.get("match") == "any" and results[-1]:
            return True
    return any(results) if (conditions or {}).get("match") == "any" else all(results)


async def _one(facts: Facts, condition: dict[str, Any]) -> bool:
    field_, op, expected = condition.get("field", ""), condition.get("op", ""), condition.get("value")
    if field_ == "business_hours":
        open_now = await facts.open_now() if facts.open_now is not None else True
        return open_now if op in ("open", "is") and expected in (None, "open", True) else not open_now
    if field_ == "segment":
        inside = await facts.in_segment(str(expected)) if facts.in_segment is not None else False
        return inside if op in ("in", "is", "has") else not inside
    return test(op, facts.value(field_), expected)


def fill(text: str, facts: Facts) -> str:
    """``text`` with its ``{{...}}`` placeholders replaced (an unknown or empty one becomes "")."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("contact.attributes."):
            name = name.removeprefix("contact.")
        value = facts.value(name)
        if isinstance(value, datetime):
            return value.strftime("%Y-%m-%d %H:%M")
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return "" if value is None else (("yes" if value else "no") if isinstance(value, bool) else str(value))

    return _PLACEHOLDER.sub(one, text)
