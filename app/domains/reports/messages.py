"""The messages panel: customers' and our messages per bucket of a period, how ours fared, and the same totals
for the period compared with.

Read from the hourly rollups (rollups.py): each local hour's counters summed into the period's buckets (local
hours, days and weeks, DST included: periods.py), broken down by message type, our failures by WhatsApp's error
code (the ten most frequent, with what they mean) and our billable messages by Meta's pricing category.
Reactions and internal lines (notes, events) are not messages here. "Delivered" counts our messages that reached the phone (delivered, read or played), "read" those read or
played, "failed" those WhatsApp refused or gave up on; each is counted in the bucket the message was sent in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from beanie import PydanticObjectId

from app.domains.access.scope import Scope
from app.domains.reports.hours import ReportHours, read_hours
from app.domains.reports.periods import Interval, Period

COUNTS = ("inbound", "outbound", "delivered", "read", "failed")
TOP_FAILURES = 10


@dataclass
class Bucket:
    start: datetime
    end: datetime
    inbound: int = 0
    outbound: int = 0
    delivered: int = 0
    read: int = 0
    failed: int = 0


@dataclass
class Failure:
    code: int | None
    title: str
    words: str
    """What it means, as agents read it on the message."""
    count: int


@dataclass
class MessageFigures:
    buckets: list[Bucket]
    totals: dict[str, int] = field(default_factory=dict)
    previous: dict[str, int] = field(default_factory=dict)
    """The same totals for the period compared with."""
    by_type: dict[str, dict[str, int]] = field(default_factory=dict)
    """inbound / outbound: count per message type (text, image, template ...)."""
    failures: list[Failure] = field(default_factory=list)
    """Our failed messages by WhatsApp's error code, most first (the top ten)."""
    billable: dict[str, int] = field(default_factory=dict)
    """Our messages Meta charges for, per pricing category (marketing, utility, authentication ...)."""
    busiest: list[list[int]] = field(default_factory=lambda: [[0] * 24 for _ in range(7)])
    """Customers' messages by local weekday (Monday first) and hour: when people write."""

    @staticmethod
    def rate(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None


SHORT = {"inbound": "in", "outbound": "out"}


def _add(into: dict[str, int], counts: dict[str, int]) -> None:
    for name in COUNTS:
        into[name] = into.get(name, 0) + counts.get(SHORT.get(name, name), 0)


async def message_figures(who: PydanticObjectId | Scope, period: Period, interval: Interval, *,
                          account_id: PydanticObjectId | None = None, read: ReportHours | None = None
                          ) -> MessageFigures:
    """The period's buckets at ``interval`` and their totals, and the previous period's totals, from the
    hourly rollups (``read``: those the request already read for another panel)."""
    read = read or await read_hours(who, period, interval, account_id=account_id)
    sums: list[dict[str, int]] = [{} for _ in read.bounds]
    figures = MessageFigures(buckets=[])
    reasons: dict[str, dict[str, str]] = {}
    failed: dict[str, int] = {}
    for hour in read.hours:
        local = hour.at.astimezone(period.zone)
        figures.busiest[local.weekday()][local.hour] += hour.counts.get("in", 0)
        _add(sums[hour.bucket], hour.counts)
        _breakdown(figures, failed, hour.counts)
        for code, reason in hour.reasons.items():
            reasons.setdefault(code, reason)
    figures.buckets = [Bucket(start, end, **sums[i]) for i, (start, end) in enumerate(read.bounds)]
    figures.totals = {name: sum(getattr(b, name) for b in figures.buckets) for name in COUNTS}
    figures.previous = dict.fromkeys(COUNTS, 0)
    _add(figures.previous, read.previous)
    figures.failures = [Failure(code=None if code == "none" else int(code),
                                title=reasons.get(code, {}).get("title", ""),
                                words=reasons.get(code, {}).get("words", ""), count=count)
                        for code, count in sorted(failed.items(), key=lambda item: (-item[1], item[0]))[:TOP_FAILURES]]
    return figures


def _breakdown(figures: MessageFigures, failed: dict[str, int], counts: dict[str, int]) -> None:
    """By type, failures by code and billable messages by category, from one rollup's counters."""
    for key, count in counts.items():
        head, _, rest = key.partition(":")
        if head in ("in", "out") and rest.startswith("t:"):
            direction = "inbound" if head == "in" else "outbound"
            kinds = figures.by_type.setdefault(direction, {})
            kinds[rest[2:]] = kinds.get(rest[2:], 0) + count
        elif head == "fail":
            failed[rest] = failed.get(rest, 0) + count
        elif head == "billable":
            figures.billable[rest] = figures.billable.get(rest, 0) + count
