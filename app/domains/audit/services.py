"""The audit log: every admin action recorded with who, when, from which address, the request, and what changed.

- **Who** is bound once per request by the auth middleware (app/auth.py: ``acting``): the person (their email), or
  the API key (its name), with the client's address (as INBOX_TRUSTED_PROXIES let us see it) and the request id. A
  worker's or Meta's doing is "the system".
- **What** is recorded by the services that do it (``record``), so the page, the API and the workers are all seen:
  numbers (added, changed, token or app secret changed, turned on or off, removed, sending resumed), templates
  (created, deleted), people (added, name or role changed, removed), API keys (created, revoked), event webhooks
  (created, changed, secret rotated, removed), workflows (saved, turned on or off, removed, secret rotated),
  broadcasts (saved, started or scheduled, paused, resumed, cancelled, deleted), contact exports and erasures.
- **Secrets never enter it**: a field whose name says token, secret, password or key is kept as "changed", whatever
  the caller passed.
- **Kept** INBOX_AUDIT_RETENTION_DAYS (365) days: the ``purge_audit_log`` cron deletes older entries daily.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from beanie import PydanticObjectId
from bson import ObjectId

from app import correlation
from app.db import as_utc, utcnow
from app.domains.audit.models import AuditEntry

SECRET = re.compile(r"(token|secret|password|api_key|key_hash)", re.IGNORECASE)
CHANGED = "changed"


@dataclass(frozen=True)
class Actor:
    who: str
    user_id: PydanticObjectId | None = None
    api_key_id: PydanticObjectId | None = None
    ip: str | None = None


_ACTOR: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("audit_actor", default=None)


@contextmanager
def acting(actor: Actor | None) -> Iterator[None]:
    """Everything recorded inside is ``actor``'s doing (the auth middleware binds the request's principal)."""
    token = _ACTOR.set(actor)
    try:
        yield
    finally:
        _ACTOR.reset(token)


def _kept(name: str, value: Any) -> Any:
    if SECRET.search(name):
        return CHANGED
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, dict):
        return {k: _kept(k, v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_kept(name, v) for v in value]
    return value


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The fields that changed, as {"from", "to"} (secrets: "changed")."""
    changes: dict[str, Any] = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old != new:
            changes[name] = CHANGED if SECRET.search(name) else {"from": _kept(name, old), "to": _kept(name, new)}
    return changes


async def record(workspace_id: PydanticObjectId | None, action: str, target_type: str, target_id: Any = None,
                 target_name: str = "", changes: dict[str, Any] | None = None) -> None:
    """One entry, by whoever is acting in this request (``acting``); secrets in ``changes`` kept as "changed"."""
    if workspace_id is None:
        return
    actor = _ACTOR.get() or Actor("the system")
    await AuditEntry(workspace_id=workspace_id, action=action, target_type=target_type,
                     target_id=str(target_id) if target_id is not None else None, target_name=target_name or "",
                     changes={k: _kept(k, v) for k, v in (changes or {}).items()}, actor=actor.who,
                     actor_user_id=actor.user_id, actor_api_key_id=actor.api_key_id, ip=actor.ip,
                     request_id=correlation.current()).insert()


@dataclass(frozen=True)
class AuditFilter:
    action: str | None = None
    """An action or its prefix ("number." for every number action)."""
    actor: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    before: datetime | None = None
    """The cursor: entries before this time (the last one shown)."""
    limit: int = 50


async def entries(workspace_id: PydanticObjectId, asked: AuditFilter) -> tuple[list[AuditEntry], str | None]:
    """Newest first, on the (workspace_id, at) index; the cursor is the time of the last entry shown."""
    query: dict[str, Any] = {"workspace_id": workspace_id}
    at: dict[str, Any] = {}
    if asked.start is not None:
        at["$gte"] = as_utc(asked.start)
    ends = [as_utc(t) for t in (asked.end, asked.before) if t is not None]
    if ends:
        at["$lt"] = min(ends)
    if at:
        query["at"] = at
    if asked.action:
        query["action"] = {"$regex": "^" + re.escape(asked.action)}
    if asked.actor:
        query["actor"] = {"$regex": re.escape(asked.actor), "$options": "i"}
    found = await AuditEntry.find(query).sort([("at", -1)]).limit(asked.limit + 1).to_list()
    shown = found[:asked.limit]
    return shown, as_utc(shown[-1].at).isoformat() if len(found) > asked.limit and shown else None


async def purge(retention_days: int, *, now: datetime | None = None) -> int:
    """Entries older than the retention deleted (the daily cron). Returns how many."""
    result = await AuditEntry.find({"at": {"$lt": (now or utcnow()) - timedelta(days=retention_days)}}).delete()
    return result.deleted_count if result is not None else 0
