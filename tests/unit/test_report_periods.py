"""Report periods: presets and custom ranges of the workspace's local days, the period compared with, and buckets
whose bounds are the exact UTC instants of local midnights (DST days last 23 or 25 hours). Expected values are
worked out by hand from the zones' rules."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from app.domains.reports.periods import local_midnight, period_of, zone_of
from app.errors import ValidationFailed

BERLIN = ZoneInfo("Europe/Berlin")
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
TODAY = date(2026, 3, 31)


def test_presets_are_whole_local_days_ending_today():
    week = period_of("last_7_days", None, None, BERLIN, TODAY)
    assert (week.first, week.last, week.days) == (date(2026, 3, 25), date(2026, 3, 31), 7)
    # Berlin is UTC+1 until 29 March 02:00, then UTC+2: the week starts at 23:00 UTC, ends at 22:00 UTC.
    assert week.start == datetime(2026, 3, 24, 23, 0, tzinfo=UTC)
    assert week.end == datetime(2026, 3, 31, 22, 0, tzinfo=UTC)
    assert week.label == "Last 7 days"
    assert period_of(None, None, None, BERLIN, TODAY).days == 30  # the default
    yesterday = period_of("yesterday", None, None, BERLIN, TODAY)
    assert yesterday.first == yesterday.last == date(2026, 3, 30)
    month = period_of("last_month", None, None, BERLIN, TODAY)
    assert (month.first, month.last) == (date(2026, 2, 1), date(2026, 2, 28))
    this = period_of("this_month", None, None, BERLIN, TODAY)
    assert (this.first, this.last) == (date(2026, 3, 1), TODAY)


def test_the_previous_period_is_as_long_just_before_and_a_month_is_compared_with_the_month_before():
    week = period_of("last_7_days", None, None, BERLIN, TODAY).previous()
    assert (week.first, week.last) == (date(2026, 3, 18), date(2026, 3, 24))
    march = period_of("this_month", None, None, BERLIN, TODAY).previous()
    assert (march.first, march.last) == (date(2026, 2, 1), date(2026, 2, 28))
    february = period_of("last_month", None, None, BERLIN, TODAY).previous()
    assert (february.first, february.last) == (date(2026, 1, 1), date(2026, 1, 31))
    custom = period_of(None, date(2026, 1, 10), date(2026, 1, 12), BERLIN, TODAY).previous()
    assert (custom.first, custom.last) == (date(2026, 1, 7), date(2026, 1, 9))


def test_a_dst_day_has_23_hours_and_its_day_bucket_says_so():
    change = period_of(None, date(2026, 3, 29), date(2026, 3, 29), BERLIN, TODAY)
    (start, end), = change.buckets("day")
    assert (start, end) == (datetime(2026, 3, 28, 23, 0, tzinfo=UTC), datetime(2026, 3, 29, 22, 0, tzinfo=UTC))
    assert len(change.buckets("hour")) == 23
    autumn = period_of(None, date(2026, 10, 25), date(2026, 10, 25), BERLIN, TODAY)
    assert len(autumn.buckets("hour")) == 25
    assert autumn.label == "25 Oct 2026"


def test_days_and_weeks_cover_the_period_exactly_weeks_from_monday():
    period = period_of(None, date(2026, 3, 26), date(2026, 4, 8), BERLIN, TODAY)  # Thursday .. Wednesday
    days = period.buckets("day")
    assert len(days) == 14 and days[0][0] == period.start and days[-1][1] == period.end
    assert all(a[1] == b[0] for a, b in zip(days, days[1:], strict=False))
    weeks = period.buckets("week")
    # Thu 26 - Sun 29 March, Mon 30 March - Sun 5 April, Mon 6 - Wed 8 April.
    assert [(local.astimezone(BERLIN).date()) for local, _ in weeks] == [date(2026, 3, 26), date(2026, 3, 30),
                                                                          date(2026, 4, 6)]
    assert weeks[-1][1] == period.end


def test_a_zone_whose_clocks_skipped_midnight_starts_its_day_at_the_first_hour_that_existed():
    # Sao Paulo moved its clocks from 00:00 to 01:00 on 4 November 2018 (UTC-3 to UTC-2).
    assert local_midnight(date(2018, 11, 4), SAO_PAULO) == datetime(2018, 11, 4, 3, 0, tzinfo=UTC)
    assert local_midnight(date(2018, 11, 5), SAO_PAULO) == datetime(2018, 11, 5, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(("preset", "first", "last", "field"), [
    ("next_year", None, None, "range"),
    (None, date(2026, 3, 2), None, "to"),
    (None, None, date(2026, 3, 2), "from"),
    (None, date(2026, 3, 2), date(2026, 3, 1), "to"),
    (None, date(2025, 1, 1), date(2026, 3, 1), "from"),
])
def test_bad_ranges_are_refused_naming_the_field(preset, first, last, field):
    with pytest.raises(ValidationFailed) as refused:
        period_of(preset, first, last, BERLIN, TODAY)
    assert refused.value.status_code == 400 and refused.value.error_code == "PERIOD_INVALID"
    assert field in refused.value.details


def test_hourly_buckets_are_refused_for_long_ranges_and_an_unknown_zone_is_utc():
    with pytest.raises(ValidationFailed) as refused:
        period_of(None, date(2025, 12, 1), TODAY, BERLIN, TODAY).buckets("hour")  # 121 days
    assert refused.value.error_code == "INTERVAL_TOO_FINE"
    assert len(period_of("last_90_days", None, None, BERLIN, TODAY).buckets("hour")) == 90 * 24 - 1  # one DST day
    assert len(period_of("last_90_days", None, None, BERLIN, TODAY).buckets("week")) == 14
    assert zone_of("Mars/Olympus") == ZoneInfo("UTC") and zone_of(None) == ZoneInfo("UTC")
