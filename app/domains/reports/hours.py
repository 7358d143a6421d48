"""The hourly rollups of one report request, read once and shared by its panels: the period's hours, each in the
bucket of the asked interval it falls in, and the counters of the period compared with, summed."""

from __future__ import annotations

from array import array
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from beanie import PydanticObjectId

from app.domains.access.scope import Scope, scope_of
from app.domains.reports import rollups
from app.domains.reports.periods import Interval, Period
from app.domains.reports.waits import unpack

REFRESH_BUDGET = 2.0
"""Seconds a report spends on a first count of the workspace's past before showing how far it got."""


@dataclass
class Hour:
    at: datetime
    bucket: int
    """The index of the bucket it falls in."""
    counts: dict[str, int]
    reasons: dict[str, dict[str, str]]
    waits: dict[str, array[int]] = field(default_factory=dict)


@dataclass
class ReportHours:
    period: Period
    interval: Interval
    bounds: list[tuple[datetime, datetime]]
    hours: list[Hour] = field(default_factory=list)
    previous: dict[str, int] = field(default_factory=dict)
    """Every counter of the period compared with, summed."""
    previous_waits: dict[str, array[int]] = field(default_factory=dict)
    """Every wait of the period compared with, by kind."""
    freshness: rollups.Freshness = field(default_factory=rollups.Freshness)
    """Whether the workspace's past is counted yet (the first count after an upgrade or a new time zone)."""
    only: str | None = None
    """The conversations counted: one slice (rollups.slices_of: a team, an agent, a label); None: all."""
    starts: list[datetime] = field(init=False)

    def __post_init__(self) -> None:
        self.starts = [start for start, _ in self.bounds]

    def bucket_of(self, hour: datetime) -> int | None:
        """The index of the bucket an hour (a rollup's start) falls in; None: outside the period."""
        at = _utc(hour)
        index = bisect_right(self.starts, at) - 1
        return index if 0 <= index and at < self.bounds[index][1] else None

    def per_bucket(self, key: str) -> list[int]:
        """One counter summed per bucket."""
        sums = [0] * len(self.bounds)
        for hour in self.hours:
            sums[hour.bucket] += hour.counts.get(key, 0)
        return sums


def accounts_of(scope: Scope, account_id: PydanticObjectId | None) -> list[PydanticObjectId] | None:
    """The numbers counted: the one asked for (if this person sees it), else all they see (None: every one)."""
    if account_id is not None:
        return [account_id] if scope.sees_number(account_id) else []
    return None if scope.everything else sorted(scope.account_ids)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


async def read_hours(who: PydanticObjectId | Scope, period: Period, interval: Interval, *,
                     account_id: PydanticObjectId | None = None, only: str | None = None) -> ReportHours:
    """The rollups brought up to date (rollups.refresh; a first count of the past gets ``REFRESH_BUDGET`` seconds
    here, the cron does the rest), then two reads: the period's, the previous one's."""
    scope = scope_of(who)
    freshness = await rollups.refresh(scope.workspace_id, period.zone, budget=REFRESH_BUDGET)
    accounts = accounts_of(scope, account_id)
    read = ReportHours(period, interval, period.buckets(interval), freshness=freshness, only=only)
    for row in await rollups.hours(scope.workspace_id, period.start, period.end, accounts, only):
        index = read.bucket_of(row["hour"])
        if index is not None:
            waits = {kind: unpack(stored) for kind, stored in (row.get("waits") or {}).items()}
            read.hours.append(Hour(_utc(row["hour"]), index, row.get("counts") or {}, row.get("reasons") or {}, waits))
    before = period.previous()
    previous: dict[str, Any] = {}
    for row in await rollups.hours(scope.workspace_id, before.start, before.end, accounts, only):
        for key, count in (row.get("counts") or {}).items():
            previous[key] = previous.get(key, 0) + count
        for kind, waits in (row.get("waits") or {}).items():
            read.previous_waits.setdefault(kind, array("I")).extend(unpack(waits))
    read.previous = previous
    return read
