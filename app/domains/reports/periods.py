"""The date ranges reports cover: presets and custom ranges of whole days in the workspace's time zone, the
period they are compared with, and their hour / day / week buckets.

Days are the workspace's local days: a bucket runs from one local midnight to the next, so a day of a DST change
lasts 23 or 25 hours, and each bucket's bounds are exact UTC instants (what the stored times are compared with).
Weeks start on Monday (ISO 8601). The previous period is the same number of days just before, except for
calendar months, compared with the month before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.errors import ValidationFailed

Interval = Literal["hour", "day", "week"]
PRESETS = {"today": "Today", "yesterday": "Yesterday", "last_7_days": "Last 7 days", "last_30_days": "Last 30 days",
           "last_90_days": "Last 90 days", "this_month": "This month", "last_month": "Last month"}
MAX_DAYS = 366
MAX_BUCKETS = 24 * 93
"""Hour buckets are offered for ranges up to about three months (2,232 points)."""


@dataclass(frozen=True)
class Period:
    first: date
    """The first local day, included."""
    last: date
    """The last local day, included."""
    zone: ZoneInfo
    preset: str = "custom"

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def start(self) -> datetime:
        """The first day's local midnight, in UTC."""
        return local_midnight(self.first, self.zone)

    @property
    def end(self) -> datetime:
        """The local midnight after the last day, in UTC (excluded)."""
        return local_midnight(self.last + timedelta(days=1), self.zone)

    @property
    def label(self) -> str:
        if self.preset in PRESETS:
            return PRESETS[self.preset]
        return f"{self.first:%d %b %Y}" if self.first == self.last else f"{self.first:%d %b %Y} – {self.last:%d %b %Y}"

    def previous(self) -> Period:
        """What this period is compared with."""
        if self.preset in ("this_month", "last_month"):
            last = self.first - timedelta(days=1)
            return Period(last.replace(day=1), last, self.zone, "custom")
        return Period(self.first - timedelta(days=self.days), self.first - timedelta(days=1), self.zone, "custom")

    def buckets(self, interval: Interval) -> list[tuple[datetime, datetime]]:
        """[start, end) of each bucket in UTC, in order, covering the period exactly."""
        if interval == "hour":
            if self.days * 24 > MAX_BUCKETS:
                raise ValidationFailed("Hourly figures cover at most 93 days: choose day or week.",
                                       error_code="INTERVAL_TOO_FINE", details={"interval": interval}, status_code=400)
            hours = []
            moment = self.start
            while moment < self.end:  # UTC hours: a local day of a DST change has 23 or 25 of them
                hours.append((moment, moment + timedelta(hours=1)))
                moment += timedelta(hours=1)
            return hours
        if interval == "day":
            return [(local_midnight(day, self.zone), local_midnight(day + timedelta(days=1), self.zone))
                    for day in (self.first + timedelta(days=i) for i in range(self.days))]
        weeks = []
        day = self.first
        while day <= self.last:
            monday_after = day + timedelta(days=7 - day.weekday())
            upto = min(monday_after, self.last + timedelta(days=1))
            weeks.append((local_midnight(day, self.zone), local_midnight(upto, self.zone)))
            day = upto
        return weeks


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """``day``'s first instant in ``zone``, in UTC (a zone whose clocks skip midnight: the first time that exists)."""
    moment = datetime.combine(day, time(0), zone)
    # Round-trip through UTC: a skipped local time (a DST gap at midnight) comes back as the one after it.
    utc = moment.astimezone(UTC)
    if utc.astimezone(zone).date() != day:
        utc = datetime.combine(day, time(1), zone).astimezone(UTC)
    return utc


def zone_of(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def period_of(preset: str | None, first: date | None, last: date | None, zone: ZoneInfo, today: date) -> Period:
    """The period a request names: a preset, or ``first`` .. ``last`` (local days, both included); 400 with
    ``error_code`` PERIOD_INVALID naming the field otherwise. No preset and no dates: the last 30 days."""
    if first is not None or last is not None:
        if first is None or last is None:
            missing = "from" if first is None else "to"
            raise _invalid(missing, "give both `from` and `to` (or a preset)")
        if last < first:
            raise _invalid("to", "`to` is before `from`")
        if (last - first).days + 1 > MAX_DAYS:
            raise _invalid("from", f"at most {MAX_DAYS} days at a time")
        return Period(first, last, zone, "custom")
    preset = preset or "last_30_days"
    if preset == "today":
        return Period(today, today, zone, preset)
    if preset == "yesterday":
        day = today - timedelta(days=1)
        return Period(day, day, zone, preset)
    if preset in ("last_7_days", "last_30_days", "last_90_days"):
        days = int(preset.split("_")[1])
        return Period(today - timedelta(days=days - 1), today, zone, preset)
    if preset == "this_month":
        return Period(today.replace(day=1), today, zone, preset)
    if preset == "last_month":
        last_day = today.replace(day=1) - timedelta(days=1)
        return Period(last_day.replace(day=1), last_day, zone, preset)
    raise _invalid("range", f"one of {', '.join(PRESETS)}, or `from` and `to`")


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message[0].upper() + message[1:] + ".", error_code="PERIOD_INVALID",
                            details={field: message}, status_code=400)
