"""A number's WhatsApp notices: the severities the admins' badge counts, and the events of a number
(``health.account_events``) as its admin page lists them.

Each event is put in words by ``describe`` (app/domains/notifications/words.py); ``notices_of``
turns a number's stored events into notices, newest first, and ``counts`` says whether one is
counted in the badge. Nothing here reads or writes the database.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from app.db import as_utc, utcnow
from app.domains.notifications.words import describe
from app.whatsapp.webhook_values import AccountUpdate

SEVERITIES = ("info", "warning", "critical")
NOTIFY = ("warning", "critical")
"""Severities counted in the admins' "WhatsApp notices" badge until one of them marks them seen."""
VIOLATION_LINK = timedelta(days=30)
"""A restriction names the policy violation Meta reported on the account at most this long before it."""


@dataclass(frozen=True)
class Notice:
    """One event of a number's ``health.account_events``, as its admin page shows it."""

    key: str
    field: str
    event: str | None
    severity: str
    text: str
    detail: str
    known: bool
    at: datetime | None
    seen: bool
    """Acknowledged by an admin ("Mark as seen"), or never counted (info, or stored before notices)."""
    raw: Any = None
    """Meta's value as it came."""

    @property
    def unseen(self) -> bool:
        return not self.seen

    @property
    def raw_json(self) -> str:
        return json.dumps(self.raw, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def counts(event: dict[str, Any]) -> bool:
    """Whether a stored event is counted in the badge: warning or critical and not seen yet."""
    return event.get("severity") in NOTIFY and event.get("seen_at") is None


def _violation_of(event: dict[str, Any]) -> str | None:
    if event.get("field") != "account_update" or not isinstance(event.get("value"), dict):
        return None
    if event["value"].get("event") != "ACCOUNT_VIOLATION":
        return None
    try:
        violation = AccountUpdate.model_validate(event["value"]).violation
    except ValidationError:
        return None
    return violation.violation_type if violation else None


def notices_of(events: Iterable[dict[str, Any]], now: datetime | None = None) -> list[Notice]:
    """A number's stored events as notices, newest first; a restriction names the policy violation
    Meta reported shortly before it."""
    now = now or utcnow()
    notices: list[Notice] = []
    violation: tuple[str, datetime | None] | None = None
    for event in events:
        if not isinstance(event, dict):
            continue
        at = event.get("at") if isinstance(event.get("at"), datetime) else None
        at = as_utc(at) if at is not None else None
        recent = None
        if violation is not None and (at is None or violation[1] is None or at - violation[1] <= VIOLATION_LINK):
            recent = violation[0]
        field_name = str(event.get("field") or "unknown")
        text = describe(field_name, event.get("value"), previous_limit=event.get("previous_limit"),
                        violation=recent, now=now)
        kind = _violation_of(event)
        if kind:
            violation = (kind, at)
        notices.append(Notice(
            key=str(event.get("key") or ""), field=field_name, event=event.get("event"), severity=text.severity,
            text=text.text, detail=text.detail, known=text.known, at=at, seen=not counts(event),
            raw=event.get("value")))
    notices.reverse()
    return notices
