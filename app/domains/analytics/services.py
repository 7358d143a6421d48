"""The analytics summary of a workspace over a date range, from the messages themselves.

Counts run as Mongo aggregations; first-response time walks the range's customer and business
messages in order per conversation: a customer turn starts with an inbound message after a
business message (or the conversation's first), and ends with the next outbound message.

Each turn is measured twice: in all hours, and in business time (the seconds of the wait inside the
workspace's business hours: business_hours/rules.py ``business_seconds``; with business hours off or
never saved every second counts, so both figures agree).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from beanie import PydanticObjectId

from app.db import as_utc
from app.domains.access.scope import Scope, scope_of
from app.domains.business_hours.rules import Schedule, business_seconds
from app.domains.messages.models import Message
from app.errors import ValidationFailed

MAX_RANGE = timedelta(days=366)
DELIVERED = ("delivered", "read", "played")
READ = ("read", "played")


@dataclass
class FailureCount:
    code: int | None
    title: str
    count: int


@dataclass
class Summary:
    since: datetime
    until: datetime
    messages_in: int = 0
    messages_out: int = 0
    outbound_settled: int = 0
    """Outbound messages that left our outbox (accepted by Meta, or failed)."""
    delivered: int = 0
    read: int = 0
    failed: int = 0
    failures: list[FailureCount] = field(default_factory=list)
    first_responses: list[float] = field(default_factory=list)
    first_responses_business: list[float] = field(default_factory=list)
    """The same waits in business time (same order)."""
    business_hours: bool = False
    """Business hours were on: the business-time waits count only open seconds."""

    def rate(self, part: int) -> float | None:
        return round(part / self.outbound_settled, 4) if self.outbound_settled else None


class Analytics:
    async def summary(self, who: PydanticObjectId | Scope, since: datetime, until: datetime,
                      account_id: PydanticObjectId | None = None, *, hours: Schedule | None = None) -> Summary:
        """The figures of the numbers ``who`` sees whole (an agent limited to some numbers: those).
        ``hours``: the workspace's business hours settings (BusinessHoursService.cached), for business time."""
        scope = scope_of(who)
        workspace_id = scope.workspace_id
        since, until = as_utc(since), as_utc(until)
        if until <= since:
            raise ValidationFailed("`to` must be after `from`.", details={"to": until.isoformat()}, status_code=400)
        if until - since > MAX_RANGE:
            raise ValidationFailed("At most 366 days at a time.", details={"from": since.isoformat()}, status_code=400)
        match: dict[str, Any] = {"workspace_id": workspace_id, "timestamp": {"$gte": since, "$lt": until}}
        if account_id is not None:
            match["account_id"] = account_id if scope.sees_number(account_id) else {"$in": []}
        elif not scope.everything:
            match["account_id"] = {"$in": sorted(scope.account_ids)}
        summary = Summary(since=since, until=until)
        collection = Message.get_motor_collection()
        summary.messages_in = await collection.count_documents({**match, "direction": "inbound"})
        outbound = {**match, "direction": "outbound", "type": {"$ne": "reaction"}}
        summary.messages_out = await collection.count_documents(outbound)
        summary.outbound_settled = await collection.count_documents(
            {**outbound, "status": {"$nin": ["queued"]}})
        summary.delivered = await collection.count_documents(
            {**outbound, "$or": [{f"status_at.{s}": {"$exists": True}} for s in DELIVERED]})
        summary.read = await collection.count_documents(
            {**outbound, "$or": [{f"status_at.{s}": {"$exists": True}} for s in READ]})
        rows = await collection.aggregate([
            {"$match": {**outbound, "status": "failed"}},
            {"$group": {"_id": "$error.code", "count": {"$sum": 1}, "title": {"$first": "$error.title"}}},
        ]).to_list(length=None)
        summary.failures = sorted((FailureCount(code=r["_id"], title=r.get("title") or "", count=r["count"])
                                   for r in rows), key=lambda f: (-f.count, f.code or 0))
        summary.failed = sum(f.count for f in summary.failures)
        turns = await self._first_responses(match)
        summary.first_responses = [max(0.0, (answered - asked).total_seconds()) for asked, answered in turns]
        summary.first_responses_business = [business_seconds(hours, asked, answered) for asked, answered in turns]
        summary.business_hours = bool(hours is not None and getattr(hours, "enabled", True))
        return summary

    async def _first_responses(self, match: dict[str, Any]) -> list[tuple[datetime, datetime]]:
        """Each answered customer turn: (its first message's time, the answer's time)."""
        cursor = Message.get_motor_collection().find(
            # Automatic replies (greeting, away message: app/domains/business_hours) answer nobody's question.
            {**match, "direction": {"$in": ["inbound", "outbound"]}, "type": {"$ne": "reaction"},
             "via": {"$ne": "automation"}},
            projection={"conversation_id": 1, "direction": 1, "timestamp": 1},
        ).sort([("conversation_id", 1), ("timestamp", 1), ("_id", 1)])
        waits: list[tuple[datetime, datetime]] = []
        conversation = None
        waiting_since: datetime | None = None
        async for row in cursor:
            if row["conversation_id"] != conversation:
                conversation, waiting_since = row["conversation_id"], None
            at = as_utc(row["timestamp"])
            if row["direction"] == "inbound":
                waiting_since = waiting_since or at
            elif waiting_since is not None:
                waits.append((waiting_since, at))
                waiting_since = None
        return waits


def first_response_stats(waits: list[float]) -> dict[str, float | int | None]:
    if not waits:
        return {"count": 0, "average_seconds": None, "median_seconds": None}
    return {"count": len(waits), "average_seconds": round(statistics.fmean(waits), 1),
            "median_seconds": round(statistics.median(waits), 1)}
