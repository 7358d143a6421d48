"""The conversations panel: conversations customers started, resolved and reopened per bucket of a period, the
same totals for the period compared with, and how many are open and pending now.

- **New**: conversations a customer's message started (their first message in it; the message carries
  ``opened="new"``). Those a broadcast or an agent started are not: outreach is not incoming work (when such a
  customer answers a resolved one, it counts as reopened).
- **Resolved**: each time a conversation was resolved (the "resolved" line of its thread), by an agent, a
  workflow or the API; one resolved twice in the period counts twice.
- **Reopened**: each time a resolved or snoozed conversation opened again: by an agent, by a snooze ending, or
  by the customer writing again (the "reopened" line of its thread).
- **Time to resolution**: from when the conversation was started (or last reopened after being resolved; a
  snooze ending is no new start) to its resolution, counted in the bucket of the resolution; median and 90th
  percentile, exact. **Resolved by** people (signed in: the inbox, or the API as a person) or by workflows and
  integrations.
- **Open at the end** / **pending at the end** of each bucket: the backlog over time, from the worker's samples
  every quarter hour (backlog.py); a bucket with no sample in its last hour has none.
- **Open now** / **pending now**: conversations in that state when the report is read (not a figure of the
  period), counted at most ``NOW_TTL`` seconds before (each process keeps the count that long: at 100,000
  conversations on the embedded server, counting them took ~400 ms of every page).

Counted in the local hour of the line or message (rollups.py), so in the bucket it happened in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from beanie import PydanticObjectId

from app.cache import TtlCache
from app.domains.access.scope import Scope, scope_of
from app.domains.conversations.models import Conversation, ConversationStatus
from app.domains.reports import rollups
from app.domains.reports.backlog import backlog_at_ends
from app.domains.reports.hours import ReportHours, accounts_of, read_hours
from app.domains.reports.periods import Interval, Period
from app.domains.reports.waits import Waits

COUNTERS = {"new": "conv:new", "resolved": "event:resolved", "reopened": "event:reopened"}
COUNTS = tuple(COUNTERS)
NOW_TTL = 20.0
_NOW: TtlCache[tuple[int, int]] = TtlCache(NOW_TTL)


@dataclass
class ConversationBucket:
    start: datetime
    end: datetime
    new: int = 0
    resolved: int = 0
    reopened: int = 0
    open_at_end: int | None = None
    """The backlog: conversations open at the bucket's end (backlog.py); None: not sampled then."""
    pending_at_end: int | None = None


@dataclass
class ConversationFigures:
    buckets: list[ConversationBucket]
    totals: dict[str, int] = field(default_factory=dict)
    previous: dict[str, int] = field(default_factory=dict)
    open_now: int = 0
    pending_now: int = 0
    resolution: Waits = field(default_factory=Waits)
    previous_resolution: Waits = field(default_factory=Waits)
    resolved_by: dict[str, int] = field(default_factory=dict)
    """person / automation"""


async def conversation_figures(who: PydanticObjectId | Scope, period: Period, interval: Interval, *,
                               account_id: PydanticObjectId | None = None, read: ReportHours | None = None
                               ) -> ConversationFigures:
    scope = scope_of(who)
    read = read or await read_hours(scope, period, interval, account_id=account_id)
    columns = {name: read.per_bucket(key) for name, key in COUNTERS.items()}
    buckets = [ConversationBucket(start, end, **{name: columns[name][i] for name in COUNTS})
               for i, (start, end) in enumerate(read.bounds)]
    figures = ConversationFigures(buckets=buckets,
                                  totals={name: sum(columns[name]) for name in COUNTS},
                                  previous={name: read.previous.get(key, 0) for name, key in COUNTERS.items()})
    figures.resolution = Waits.of([w for hour in read.hours for w in hour.waits.get("resolution", [])])
    figures.previous_resolution = Waits.of(read.previous_waits.get("resolution", []))
    figures.resolved_by = {who: sum(hour.counts.get(f"resolved:{who}", 0) for hour in read.hours)
                           for who in ("person", "automation")}
    opened, pending = await backlog_at_ends(scope.workspace_id, read, accounts_of(scope, account_id))
    for bucket, open_at_end, pending_at_end in zip(buckets, opened, pending, strict=True):
        bucket.open_at_end, bucket.pending_at_end = open_at_end, pending_at_end
    figures.open_now, figures.pending_now = await _now(scope, account_id, read.only)
    return figures


async def _now(scope: Scope, account_id: PydanticObjectId | None, only: str | None) -> tuple[int, int]:
    """Open and pending conversations now that this person sees (as in the inbox): two counts on the
    (workspace, status) index, kept ``NOW_TTL`` seconds."""

    def query(status: ConversationStatus) -> dict[str, Any]:
        asked: dict[str, Any] = {"workspace_id": scope.workspace_id, "status": status.value}
        if account_id is not None:
            asked["account_id"] = account_id
        if only is not None:
            asked.update(rollups.slice_query(only))
        return scope.restrict(asked)

    async def count() -> tuple[int, int]:
        found = [await Conversation.find(query(status)).count()
                 for status in (ConversationStatus.OPEN, ConversationStatus.PENDING)]
        return found[0], found[1]

    return await _NOW.get(repr(query(ConversationStatus.OPEN)), count)
