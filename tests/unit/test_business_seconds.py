"""business_seconds: the seconds of a wait that fall inside business hours, worked out by hand.

Europe/Berlin is UTC+1 in winter (CET) and UTC+2 in summer (CEST); in 2026 the clocks go forward on
Sunday 29 March at 02:00 CET (01:00 UTC) and back on Sunday 25 October at 03:00 CEST (01:00 UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import Field

from app.domains.business_hours.rules import (
    Holiday,
    OpenInterval,
    Week,
    business_deadline,
    business_seconds,
    default_weekly,
    is_open,
)

HOUR = 3600.0
NINE_TO_FIVE = {d: [OpenInterval(start="09:00", end="17:00")] for d in ("mon", "tue", "wed", "thu", "fri")}
BERLIN_OFFICE = Week(time_zone="Europe/Berlin", weekly=NINE_TO_FIVE,
                     holidays=[Holiday(date="2026-12-25", name="Christmas")])
ALL_SUNDAY = Week(time_zone="Europe/Berlin", weekly={"sun": [OpenInterval(start="00:00", end="24:00")]})


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_across_a_night():
    # Tuesday 10 March 16:00 CET (15:00 UTC) to Wednesday 10:00 CET (09:00 UTC): 16–17 and 09–10.
    assert business_seconds(BERLIN_OFFICE, utc(2026, 3, 10, 15), utc(2026, 3, 11, 9)) == 2 * HOUR


def test_inside_one_interval_to_the_second():
    # Wednesday 11 March 10:00:00 to 10:20:30 CET.
    assert business_seconds(BERLIN_OFFICE, utc(2026, 3, 11, 9), utc(2026, 3, 11, 9, 20, 30)) == 1230.0


def test_a_weekend_counts_nothing():
    # Friday 13 March 16:30 CET to Monday 16 March 09:30 CET: half an hour each side.
    assert business_seconds(BERLIN_OFFICE, utc(2026, 3, 13, 15, 30), utc(2026, 3, 16, 8, 30)) == HOUR
    # Saturday noon to Sunday noon: closed throughout.
    assert business_seconds(BERLIN_OFFICE, utc(2026, 3, 14, 11), utc(2026, 3, 15, 11)) == 0.0


def test_a_holiday_is_closed_all_day():
    # Thursday 24 December 16:00 CET to Monday 28 December 10:00 CET; Friday the 25th is a holiday.
    assert business_seconds(BERLIN_OFFICE, utc(2026, 12, 24, 15), utc(2026, 12, 28, 9)) == 2 * HOUR
    # Without the holiday the Friday's 8 hours count too.
    plain = Week(time_zone="Europe/Berlin", weekly=NINE_TO_FIVE)
    assert business_seconds(plain, utc(2026, 12, 24, 15), utc(2026, 12, 28, 9)) == 10 * HOUR


def test_spring_forward_in_berlin():
    # Friday 27 March 16:00 CET (15:00 UTC) to Monday 30 March 10:00 CEST (08:00 UTC): 1 h + 1 h, though
    # the clock moved in between (65 hours in all).
    assert business_seconds(BERLIN_OFFICE, utc(2026, 3, 27, 15), utc(2026, 3, 30, 8)) == 2 * HOUR
    # Open all Sunday 29 March: from local midnight (23:00 UTC Saturday) to the next (22:00 UTC Sunday)
    # is 23 hours; the skipped hour 02:00–03:00 does not exist.
    assert business_seconds(ALL_SUNDAY, utc(2026, 3, 28, 20), utc(2026, 3, 30, 3)) == 23 * HOUR
    # Across the jump itself: 00:30 UTC (01:30 CET) to 01:30 UTC (03:30 CEST) is one hour.
    assert business_seconds(ALL_SUNDAY, utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 30)) == HOUR


def test_fall_back_in_berlin():
    # Sunday 25 October, open all day: local midnight (22:00 UTC Saturday) to the next (23:00 UTC Sunday).
    assert business_seconds(ALL_SUNDAY, utc(2026, 10, 24, 20), utc(2026, 10, 26, 3)) == 25 * HOUR
    # Weekday hours across the change: Friday 23 October 16:00 CEST (14:00 UTC) to Monday 26 October
    # 10:00 CET (09:00 UTC): 1 h + 1 h.
    assert business_seconds(BERLIN_OFFICE, utc(2026, 10, 23, 14), utc(2026, 10, 26, 9)) == 2 * HOUR
    # A wall-clock interval the clocks run through twice counts both times, as is_open says: Sunday
    # 01:00–02:30 is open from 01:00 CEST (23:00 UTC) to 02:30 CEST (00:30 UTC), and again from 02:00 CET
    # (01:00 UTC) to 02:30 CET (01:30 UTC): 1.5 h + 0.5 h.
    night = Week(time_zone="Europe/Berlin", weekly={"sun": [OpenInterval(start="01:00", end="02:30")]})
    assert business_seconds(night, utc(2026, 10, 24, 22), utc(2026, 10, 25, 3)) == 2 * HOUR
    assert is_open(night, utc(2026, 10, 25, 0, 15)) and not is_open(night, utc(2026, 10, 25, 0, 45))
    assert is_open(night, utc(2026, 10, 25, 1, 15))


def test_an_interval_ending_at_midnight_meets_the_next_day():
    # A night shift, UTC: Saturday 22:00–24:00 and Sunday 00:00–02:00; Saturday 7 March 23:00 to Sunday 01:00.
    shift = Week(time_zone="UTC", weekly={"sat": [OpenInterval(start="22:00", end="24:00")],
                                          "sun": [OpenInterval(start="00:00", end="02:00")]})
    assert business_seconds(shift, utc(2026, 3, 7, 23), utc(2026, 3, 8, 1)) == 2 * HOUR
    # Saturday 21:00 to Sunday 03:00: the whole shift, 4 hours.
    assert business_seconds(shift, utc(2026, 3, 7, 21), utc(2026, 3, 8, 3)) == 4 * HOUR
    # In Berlin, "24:00" on Sunday 29 March is the end of a 23-hour day (see spring forward).
    late = Week(time_zone="Europe/Berlin", weekly={"sun": [OpenInterval(start="20:00", end="24:00")]})
    assert business_seconds(late, utc(2026, 3, 29, 12), utc(2026, 3, 30, 12)) == 4 * HOUR


def test_no_wait_or_a_backwards_one_is_zero():
    at = utc(2026, 3, 11, 10)
    assert business_seconds(BERLIN_OFFICE, at, at) == 0.0
    assert business_seconds(BERLIN_OFFICE, at + timedelta(hours=1), at) == 0.0
    assert business_seconds(None, at + timedelta(hours=1), at) == 0.0


def test_off_or_never_saved_counts_every_second():
    start, end = utc(2026, 3, 13, 15, 30), utc(2026, 3, 16, 8, 30)  # the weekend above: 65 hours
    assert business_seconds(None, start, end) == 65 * HOUR
    assert business_seconds(Stored(enabled=False), start, end) == 65 * HOUR
    assert business_seconds(Stored(enabled=True), start, end) == HOUR


class Stored(Week):
    """The stored settings' shape (models.BusinessHours, a database document): a schedule that can be off."""

    enabled: bool
    time_zone: str = "Europe/Berlin"
    weekly: dict[str, list[OpenInterval]] = Field(default_factory=default_weekly)  # Monday to Friday, 9 to 5


def test_naive_instants_are_utc():
    assert business_seconds(BERLIN_OFFICE, datetime(2026, 3, 10, 15), datetime(2026, 3, 11, 9)) == 2 * HOUR


@pytest.mark.parametrize("start", [utc(2026, 3, 26, 7, 13), utc(2026, 10, 22, 21, 59), utc(2026, 12, 23, 0, 1)])
def test_agrees_with_is_open_minute_by_minute(start):
    """Over four days around each change (and Christmas), counted the slow way: is_open per minute."""
    schedule = Week(time_zone="Europe/Berlin", holidays=[Holiday(date="2026-12-25")], weekly={
        **NINE_TO_FIVE, "sat": [OpenInterval(start="22:00", end="24:00")],
        "sun": [OpenInterval(start="00:00", end="03:30"), OpenInterval(start="12:00", end="13:00")]})
    end = start + timedelta(days=4)
    slow = sum(60.0 for m in range(4 * 24 * 60) if is_open(schedule, start + timedelta(minutes=m)))
    assert business_seconds(schedule, start, end) == slow


def test_a_deadline_in_business_time_is_where_that_much_open_time_has_passed():
    """30 business minutes from Friday 21:00 in Berlin (closed): Monday 09:30 local; from Monday 16:50: Tuesday
    09:20 (10 minutes before five, 20 after nine); hours off: 30 plain minutes."""
    friday_night = utc(2026, 3, 13, 20, 0)  # 21:00 in Berlin (UTC+1)
    assert business_deadline(BERLIN_OFFICE, friday_night, 1800) == utc(2026, 3, 16, 8, 30)
    assert business_deadline(BERLIN_OFFICE, utc(2026, 3, 16, 15, 50), 1800) == utc(2026, 3, 17, 8, 20)
    assert business_deadline(None, friday_night, 1800) == friday_night + timedelta(minutes=30)
    assert business_deadline(BERLIN_OFFICE, friday_night, 0) == friday_night
    for start in (friday_night, utc(2026, 3, 27, 16, 59, 59), utc(2026, 12, 24, 8, 0)):
        deadline = business_deadline(BERLIN_OFFICE, start, 2 * HOUR)
        assert business_seconds(BERLIN_OFFICE, start, deadline) == 2 * HOUR  # the inverse, to the second
    never_open = Week(time_zone="UTC", weekly={})
    assert business_deadline(never_open, friday_night, 60) == friday_night + timedelta(days=60)
