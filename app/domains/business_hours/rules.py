"""Business hours as pure functions: validate a week, ``is_open`` at an instant, ``next_open`` after it.

Hours are wall-clock times in the workspace's IANA time zone: "09:00-17:00" means nine to five on
the local clock, winter and summer alike. An interval never crosses midnight (the end is after the
start, "24:00" is the end of the day): a night shift is two intervals, "22:00-24:00" on one day and
"00:00-02:00" on the next, and the two meet without a gap. A holiday closes its local date all day.

DST: a local time is open when its wall-clock time is in an interval of its local weekday. An opening
time the clocks skip (02:30 on a spring-forward night) opens at the first instant after it (03:00);
an opening time that happens twice (fall back) opens at its first occurrence.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, Field

from app.errors import ValidationFailed

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Keys of the weekly hours, in ``date.weekday()`` order."""
DAY_NAMES = {"mon": "Monday", "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday", "fri": "Friday",
             "sat": "Saturday", "sun": "Sunday"}
MAX_INTERVALS_PER_DAY = 6
MAX_HOLIDAYS = 400
MAX_TEXT = 4096  # WhatsApp's limit on a text message's body
LOOK_AHEAD_DAYS = 400  # next_open searches this far (a year of holidays, and then some)
COMMON_TIME_ZONES = (
    "UTC", "Europe/London", "Europe/Lisbon", "Europe/Madrid", "Europe/Paris", "Europe/Berlin", "Europe/Rome",
    "Europe/Amsterdam", "Europe/Warsaw", "Europe/Athens", "Europe/Istanbul", "Europe/Moscow", "Asia/Jerusalem",
    "Africa/Cairo", "Africa/Lagos", "Africa/Johannesburg", "Africa/Nairobi", "Asia/Dubai", "Asia/Karachi",
    "Asia/Kolkata", "Asia/Dhaka", "Asia/Jakarta", "Asia/Bangkok", "Asia/Singapore", "Asia/Manila",
    "Asia/Shanghai", "Asia/Tokyo", "Asia/Seoul", "Australia/Perth", "Australia/Sydney", "Pacific/Auckland",
    "America/Sao_Paulo", "America/Argentina/Buenos_Aires", "America/Bogota", "America/Lima",
    "America/Mexico_City", "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
)
_TIME = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")


class OpenInterval(BaseModel):
    """One opening of a day, local wall-clock "HH:MM" (end may be "24:00")."""

    start: str = Field(examples=["09:00"])
    end: str = Field(examples=["17:00"])


class Holiday(BaseModel):
    """A local date closed all day."""

    date: str = Field(examples=["2026-12-25"], description="YYYY-MM-DD, in the workspace's time zone")
    name: str = Field("", examples=["Christmas"])


class Schedule(Protocol):
    """What the rules read: the stored settings (models.BusinessHours) or a ``Week``."""

    time_zone: str
    weekly: dict[str, list[OpenInterval]]
    holidays: list[Holiday]


class Week(BaseModel):
    """A validated schedule on its own (the unit tests', and what ``validate_hours`` returns)."""

    time_zone: str = "UTC"
    weekly: dict[str, list[OpenInterval]] = Field(default_factory=dict)
    holidays: list[Holiday] = Field(default_factory=list)


def default_weekly() -> dict[str, list[OpenInterval]]:
    """Monday to Friday, nine to five."""
    return {day: [OpenInterval(start="09:00", end="17:00")] if day not in ("sat", "sun") else [] for day in DAYS}


# --- parsing and validation -----------------------------------------------------------------------

def minutes(value: str, *, end: bool = False) -> int:
    """"HH:MM" as minutes after midnight; "24:00" only as an end. ValueError with words otherwise."""
    match = _TIME.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"“{value}” is not a time like 09:00")
    total = int(match.group(1)) * 60 + int(match.group(2))
    if total > 24 * 60 or (total == 24 * 60 and not end):
        raise ValueError(f"“{value}” is not a time of day (00:00 to 23:59; 24:00 only as an end)")
    return total


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones()) - {"localtime", "posixrules", "Factory"}  # not places


def zone(name: str) -> ZoneInfo:
    """The IANA zone; ValueError with words when it is not one. Only names of the time zone database
    are taken: ZoneInfo alone would also try any path below it (a directory, a very long name: OSError)."""
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise ValueError("Pick a time zone, like Europe/Berlin.")
    if name not in _known_zones():
        raise ValueError(f"“{name[:60]}” is not an IANA time zone (like Europe/Berlin or America/New_York).")
    return ZoneInfo(name)


def _tz(name: str) -> ZoneInfo:
    """A stored zone for the clock: one a later time zone database no longer knows reads as UTC (never
    an error in the inbox or the worker)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return ZoneInfo("UTC")


def validate_hours(values: dict[str, Any]) -> dict[str, Any]:
    """Check and normalise settings given as plain values (the API's JSON, the form's fields).

    ``values``: enabled, time_zone, weekly {day: [{start, end}]}, holidays [{date, name}], away_message,
    greeting_message. Returns them normalised (intervals sorted, times as HH:MM, holidays sorted and
    unique). Raises ValidationFailed with one message per field: "time_zone", "weekly.mon",
    "holidays.2", "away_message" ...
    """
    errors: dict[str, str] = {}
    out: dict[str, Any] = {"enabled": bool(values.get("enabled", False))}
    try:
        zone(values.get("time_zone", ""))
        out["time_zone"] = values["time_zone"]
    except ValueError as exc:
        errors["time_zone"] = str(exc)
    weekly_in = values.get("weekly") or {}
    unknown = [str(day) for day in weekly_in if day not in DAYS]
    if unknown:
        errors["weekly"] = f"Unknown day {', '.join(unknown)}: use {', '.join(DAYS)}."
    weekly: dict[str, list[OpenInterval]] = {}
    for day in DAYS:
        try:
            weekly[day] = _day(list(weekly_in.get(day) or []))
        except ValueError as exc:
            errors[f"weekly.{day}"] = f"{DAY_NAMES[day]}: {exc}"
    out["weekly"] = weekly
    holidays_in = list(values.get("holidays") or [])
    if len(holidays_in) > MAX_HOLIDAYS:
        errors["holidays"] = f"At most {MAX_HOLIDAYS} holidays."
    holidays: dict[str, Holiday] = {}
    for index, raw in enumerate(holidays_in[:MAX_HOLIDAYS]):
        item = raw if isinstance(raw, Holiday) else Holiday.model_validate(raw)
        try:
            day = date.fromisoformat(item.date.strip())
        except ValueError:
            errors[f"holidays.{index}"] = f"“{item.date}” is not a date like 2026-12-25."
            continue
        if len(item.name) > 100 or not _is_text(item.name):
            errors[f"holidays.{index}"] = "A holiday's name is text of at most 100 characters."
            continue
        holidays[day.isoformat()] = Holiday(date=day.isoformat(), name=item.name.strip())
    out["holidays"] = [holidays[key] for key in sorted(holidays)]
    for field, words in (("away_message", "The away message"), ("greeting_message", "The greeting")):
        text = str(values.get(field) or "").strip()
        if len(text) > MAX_TEXT:
            errors[field] = f"{words} has at most {MAX_TEXT} characters (WhatsApp's limit)."
        elif not _is_text(text):
            errors[field] = f"{words} holds characters that are not text."
        out[field] = text
    if errors:
        raise ValidationFailed("Some business hours settings need a fix.", error_code="BUSINESS_HOURS_INVALID",
                               details=errors)
    return out


def _is_text(value: str) -> bool:
    """Storable as UTF-8 (a lone surrogate from a JSON escape is not)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _day(raw: list[Any]) -> list[OpenInterval]:
    if len(raw) > MAX_INTERVALS_PER_DAY:
        raise ValueError(f"at most {MAX_INTERVALS_PER_DAY} intervals a day")
    spans: list[tuple[int, int]] = []
    for item in raw:
        interval = item if isinstance(item, OpenInterval) else OpenInterval.model_validate(item)
        start, end = minutes(interval.start), minutes(interval.end, end=True)
        if start >= end:
            raise ValueError(f"{interval.start}–{interval.end} must end after it starts (an interval cannot cross "
                             "midnight: end this day at 24:00 and go on from 00:00 the next)")
        spans.append((start, end))
    spans.sort()
    for (s1, e1), (s2, e2) in zip(spans, spans[1:], strict=False):
        if s2 < e1:
            raise ValueError(f"{_hhmm(s1)}–{_hhmm(e1)} and {_hhmm(s2)}–{_hhmm(e2)} overlap")
    return [OpenInterval(start=_hhmm(s), end=_hhmm(e)) for s, e in spans]


def _hhmm(total: int) -> str:
    return f"{total // 60:02d}:{total % 60:02d}"


def day_text(intervals: list[OpenInterval]) -> str:
    """A day's intervals as the admin form shows them: "09:00-12:00, 13:00-17:00" ("" = closed)."""
    return ", ".join(f"{i.start}-{i.end}" for i in intervals)


def values_from_form(form: dict[str, str]) -> dict[str, Any]:
    """The admin form's fields as ``validate_hours`` values.

    hours_<day>: "09:00-12:00, 13:00-17:00" (empty: closed); holidays: one a line, "2026-12-25 Christmas".
    """
    weekly: dict[str, list[dict[str, str]]] = {}
    for day in DAYS:
        chunks = [c.strip() for c in form.get(f"hours_{day}", "").replace(";", ",").split(",") if c.strip()]
        weekly[day] = []
        for chunk in chunks:
            start, _, end = chunk.replace("–", "-").partition("-")
            weekly[day].append({"start": start.strip(), "end": end.strip()})
    holidays = []
    for line in form.get("holidays", "").splitlines():
        if line.strip():
            when, _, name = line.strip().partition(" ")
            holidays.append({"date": when, "name": name.strip()})
    return {"enabled": form.get("enabled") in ("on", "true", "1"), "time_zone": form.get("time_zone", ""),
            "weekly": weekly, "holidays": holidays, "away_message": form.get("away_message", ""),
            "greeting_message": form.get("greeting_message", "")}


def form_error(error: ValidationFailed) -> ValidationFailed:
    """The same error with its details named after the form's fields (hours_mon, holidays: line 3 ...)."""
    details: dict[str, str] = {}
    for key, message in error.details.items():
        if key.startswith("weekly."):
            details[f"hours_{key.split('.', 1)[1]}"] = str(message)
        elif key.startswith("holidays."):
            line = int(key.split(".", 1)[1]) + 1
            details.setdefault("holidays", f"Line {line}: {message}")
        elif key == "weekly":
            details["hours"] = str(message)
        else:
            details[key] = str(message)
    return ValidationFailed(error.message, error_code=error.error_code, details=details)


# --- the clock ---------------------------------------------------------------------------------------

def _closed_on(settings: Schedule, day: date) -> bool:
    return any(h.date == day.isoformat() for h in settings.holidays)


def _spans(settings: Schedule, day: date) -> list[tuple[int, int]]:
    if _closed_on(settings, day):
        return []
    return [(minutes(i.start), minutes(i.end, end=True)) for i in settings.weekly.get(DAYS[day.weekday()], [])]


def is_open(settings: Schedule, at: datetime) -> bool:
    """Whether ``at`` (aware) falls in the opening hours, on the workspace's local clock."""
    local = _aware(at).astimezone(_tz(settings.time_zone))
    now = local.hour * 60 + local.minute
    return any(start <= now < end for start, end in _spans(settings, local.date()))


def next_open(settings: Schedule, at: datetime) -> datetime | None:
    """``at`` itself when open then, else the first instant after it when it opens (aware, in the
    workspace's zone); None when it never opens in the next LOOK_AHEAD_DAYS days."""
    at = _aware(at)
    if is_open(settings, at):
        return at.astimezone(_tz(settings.time_zone))
    tz = _tz(settings.time_zone)
    first = at.astimezone(tz).date()
    for offset in range(LOOK_AHEAD_DAYS):
        day = first + timedelta(days=offset)
        for start, _ in sorted(_spans(settings, day)):
            opens = _opening(day, start, tz)
            if opens > at:
                return opens
    return None


def _opening(day: date, start: int, tz: ZoneInfo) -> datetime:
    """The first instant whose local wall-clock time on ``day`` is at or after ``start`` minutes."""
    wall = datetime.combine(day, time(start // 60, start % 60), tzinfo=tz)  # fold=0: a repeated time's first
    if wall.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall.replace(tzinfo=None):
        return wall
    # Skipped by the clocks (spring forward): the gap ends between the two readings of the time; find it
    # by the minute (gaps begin and end on whole minutes).
    probe = wall.replace(fold=1).astimezone(UTC)
    latest = wall.astimezone(UTC)
    while probe < latest:
        local = probe.astimezone(tz)
        if local.date() == day and local.hour * 60 + local.minute >= start:
            break
        probe += timedelta(minutes=1)
    return probe.astimezone(tz)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def period_key(settings: Schedule, at: datetime) -> str:
    """Names the closed period ``at`` falls in, for "one away message per conversation per closed period":
    the moment it ends (its next opening); with no opening ahead, the local date (once a day)."""
    opens = next_open(settings, at)
    if opens is not None:
        return opens.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
    return "day:" + _aware(at).astimezone(_tz(settings.time_zone)).date().isoformat()


def opens_label(settings: Schedule, at: datetime) -> str:
    """"Mon 09:00" (within a week), "Mon 5 Jan 09:00" (later), "" (never)."""
    opens = next_open(settings, at)
    if opens is None:
        return ""
    local_now = _aware(at).astimezone(_tz(settings.time_zone))
    if (opens.date() - local_now.date()).days < 7:
        return opens.strftime("%a %H:%M")
    return f"{opens.strftime('%a')} {opens.day} {opens.strftime('%b %H:%M')}"


# --- business time (SLA figures) ----------------------------------------------------------------------

def business_seconds(settings: Schedule | None, start: datetime, end: datetime) -> float:
    """The seconds between two instants (naive ones read as UTC) that fall inside the opening hours, on the
    workspace's local clock exactly as ``is_open`` reads it: an instant counts when its local wall-clock
    time is in an interval of its local weekday, and its local date is no holiday. So a day from 00:00 to
    24:00 holds 23 hours on a spring-forward day and 25 on a fall-back day, and a wall-clock hour the
    clocks repeat counts both times it is open. ``end`` before or at ``start``: 0. Business hours off
    (``enabled`` false) or never saved (None): every second counts.

    Walked per stretch of one UTC offset (a day at a time, a change found by bisection): within it the
    local clock runs with UTC, so each local day's intervals are plain intersections.
    """
    start, end = _aware(start).astimezone(UTC), _aware(end).astimezone(UTC)
    if end <= start:
        return 0.0
    if settings is None or not getattr(settings, "enabled", True):
        return (end - start).total_seconds()
    tz = _tz(settings.time_zone)
    holidays = {h.date for h in settings.holidays}
    weekly = {DAYS.index(day): [(minutes(i.start), minutes(i.end, end=True)) for i in intervals]
              for day, intervals in settings.weekly.items() if day in DAYS}
    total = 0.0
    for piece_start, piece_end, offset in _same_offset(start, end, tz):
        local_start = piece_start.replace(tzinfo=None) + offset  # the local wall clock, naive
        local_end = piece_end.replace(tzinfo=None) + offset
        day = local_start.date()
        while (midnight := datetime.combine(day, time())) < local_end:
            if day.isoformat() not in holidays:
                for opens, closes in weekly.get(day.weekday(), ()):
                    stretch = (min(local_end, midnight + timedelta(minutes=closes))
                               - max(local_start, midnight + timedelta(minutes=opens)))
                    total += max(0.0, stretch.total_seconds())
            day += timedelta(days=1)
    return total


def business_deadline(settings: Schedule | None, start: datetime, seconds: float,
                      horizon: timedelta = timedelta(days=60)) -> datetime:
    """The first instant by which ``seconds`` of business time have passed since ``start`` (the inverse of
    ``business_seconds``: a "30 business minutes" clock started on Friday evening runs out on Monday
    morning). Found a day at a time, then to the second by bisection; never later than ``horizon`` (a
    schedule with no opening hours at all)."""
    start = _aware(start).astimezone(UTC)
    if seconds <= 0:
        return start
    if settings is None or not getattr(settings, "enabled", True):
        return start + timedelta(seconds=seconds)
    low, done = start, 0.0
    while low - start < horizon:
        high = low + timedelta(days=1)
        day = business_seconds(settings, low, high)
        if done + day >= seconds:
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                part = business_seconds(settings, low, middle)
                if done + part >= seconds:
                    high = middle
                else:
                    low, done = middle, done + part
            whole = high.replace(microsecond=0)  # on a whole second, as the clock shows it
            return whole if done + business_seconds(settings, low, whole) >= seconds else whole + timedelta(seconds=1)
        low, done = high, done + day
    return start + horizon


def _same_offset(start: datetime, end: datetime, tz: ZoneInfo) -> list[tuple[datetime, datetime, timedelta]]:
    """[start, end) (UTC) cut where ``tz``'s UTC offset changes: (from, to, offset) pieces. The offset is
    looked at a day apart (no zone changes it twice within a day); a change, always on a whole second, is
    found by bisection to the second."""
    def offset(at: datetime) -> timedelta:
        return at.astimezone(tz).utcoffset() or timedelta(0)

    pieces: list[tuple[datetime, datetime, timedelta]] = []
    piece_start, current, at = start, offset(start), start
    while at < end:
        ahead = min(end, at + timedelta(days=1))
        if offset(ahead) == current:
            at = ahead
            continue
        low, high = at, ahead  # the change is in (low, high]
        while high - low > timedelta(seconds=1):
            middle = low + (high - low) / 2
            low, high = (middle, high) if offset(middle) == current else (low, middle)
        high = high.replace(microsecond=0)  # the whole second it changed at (high is less than 1 s past it)
        pieces.append((piece_start, high, current))
        piece_start, current, at = high, offset(high), high
    if piece_start < end:
        pieces.append((piece_start, end, current))
    return pieces
