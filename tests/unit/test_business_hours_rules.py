"""Business hours as pure functions: validation, is_open, next_open (DST included), the closed period's key."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from app.domains.business_hours.rules import (
    Holiday,
    OpenInterval,
    Week,
    form_error,
    is_open,
    next_open,
    opens_label,
    period_key,
    validate_hours,
    values_from_form,
)
from app.errors import ValidationFailed

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def week(time_zone: str = "Europe/Berlin", holidays: tuple[str, ...] = (), **days: str) -> Week:
    """``mon="09:00-17:00"``; days not named are closed."""
    weekly = {day: [OpenInterval(start=s, end=e) for s, e in (span.split("-") for span in text.split(","))]
              for day, text in days.items()}
    return Week(time_zone=time_zone, weekly=weekly, holidays=[Holiday(date=d) for d in holidays])


NINE_TO_FIVE = {d: "09:00-17:00" for d in ("mon", "tue", "wed", "thu", "fri")}


def test_open_inside_hours_closed_outside_on_the_local_clock():
    hours = week(**NINE_TO_FIVE)
    # Thursday 3 December 2026 (CET, UTC+1)
    assert is_open(hours, datetime(2026, 12, 3, 9, 0, tzinfo=BERLIN))
    assert is_open(hours, datetime(2026, 12, 3, 8, 0, tzinfo=UTC))  # 09:00 in Berlin
    assert not is_open(hours, datetime(2026, 12, 3, 8, 59, tzinfo=BERLIN))
    assert not is_open(hours, datetime(2026, 12, 3, 17, 0, tzinfo=BERLIN))  # the end is not open
    assert not is_open(hours, datetime(2026, 12, 3, 22, 0, tzinfo=BERLIN))
    assert not is_open(hours, datetime(2026, 12, 5, 12, 0, tzinfo=BERLIN))  # Saturday
    assert not is_open(hours, datetime(2026, 12, 3, 7, 0))  # naive = UTC: 08:00 in Berlin


def test_next_open_same_day_next_day_after_weekend_and_when_open():
    hours = week(**NINE_TO_FIVE)
    thursday_night = datetime(2026, 12, 3, 22, 0, tzinfo=BERLIN)
    assert next_open(hours, thursday_night) == datetime(2026, 12, 4, 9, 0, tzinfo=BERLIN)
    assert next_open(hours, datetime(2026, 12, 3, 7, 0, tzinfo=BERLIN)) == datetime(2026, 12, 3, 9, 0, tzinfo=BERLIN)
    friday_night = datetime(2026, 12, 4, 18, 0, tzinfo=BERLIN)
    assert next_open(hours, friday_night) == datetime(2026, 12, 7, 9, 0, tzinfo=BERLIN)
    noon = datetime(2026, 12, 3, 12, 0, tzinfo=BERLIN)
    assert next_open(hours, noon) == noon
    assert opens_label(hours, friday_night) == "Mon 09:00"


def test_lunch_break_and_a_night_shift_split_at_midnight():
    hours = week(mon="09:00-12:00,13:00-17:00,22:00-24:00", tue="00:00-02:00")
    assert not is_open(hours, datetime(2026, 11, 30, 12, 30, tzinfo=BERLIN))
    assert next_open(hours, datetime(2026, 11, 30, 12, 30, tzinfo=BERLIN)) == datetime(2026, 11, 30, 13, 0, tzinfo=BERLIN)
    assert is_open(hours, datetime(2026, 11, 30, 23, 59, tzinfo=BERLIN))
    assert is_open(hours, datetime(2026, 12, 1, 0, 0, tzinfo=BERLIN))
    assert is_open(hours, datetime(2026, 12, 1, 1, 59, tzinfo=BERLIN))
    assert not is_open(hours, datetime(2026, 12, 1, 2, 0, tzinfo=BERLIN))
    assert next_open(hours, datetime(2026, 12, 1, 2, 0, tzinfo=BERLIN)) == datetime(2026, 12, 7, 9, 0, tzinfo=BERLIN)


def test_holidays_close_the_whole_local_day():
    hours = week(holidays=("2026-12-24", "2026-12-25"), **NINE_TO_FIVE)
    assert not is_open(hours, datetime(2026, 12, 24, 12, 0, tzinfo=BERLIN))
    assert next_open(hours, datetime(2026, 12, 23, 18, 0, tzinfo=BERLIN)) == datetime(2026, 12, 28, 9, 0, tzinfo=BERLIN)
    assert opens_label(hours, datetime(2026, 12, 23, 18, 0, tzinfo=BERLIN)) == "Mon 09:00"
    # The holiday is Berlin's date: 23:30 UTC on the 23rd is already the 24th there.
    assert not is_open(week(holidays=("2026-12-24",), wed="00:00-24:00", thu="00:00-24:00"),
                       datetime(2026, 12, 23, 23, 30, tzinfo=UTC))


def test_never_open_has_no_next_opening_and_keys_the_period_by_day():
    hours = week()
    at = datetime(2026, 12, 3, 22, 0, tzinfo=BERLIN)
    assert not is_open(hours, at) and next_open(hours, at) is None
    assert period_key(hours, at) == "day:2026-12-03" and opens_label(hours, at) == ""


def test_hours_stay_on_the_wall_clock_across_dst():
    hours = week(**NINE_TO_FIVE)
    # Europe: summer time starts Sunday 29 March 2026; 09:00 is 08:00 UTC before, 07:00 UTC after.
    assert is_open(hours, datetime(2026, 3, 27, 8, 0, tzinfo=UTC))
    assert not is_open(hours, datetime(2026, 3, 30, 6, 59, tzinfo=UTC))
    assert is_open(hours, datetime(2026, 3, 30, 7, 0, tzinfo=UTC))
    friday = datetime(2026, 3, 27, 18, 0, tzinfo=BERLIN)
    assert next_open(hours, friday).astimezone(UTC) == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    # New York falls back on Sunday 1 November 2026: 09:00 is 13:00 UTC before, 14:00 UTC after.
    ny = week(time_zone="America/New_York", **NINE_TO_FIVE)
    assert next_open(ny, datetime(2026, 10, 30, 18, 0, tzinfo=NEW_YORK)).astimezone(UTC) == \
        datetime(2026, 11, 2, 14, 0, tzinfo=UTC)


def test_an_opening_the_clocks_skip_opens_when_they_land():
    # 02:30 does not exist in Berlin on 29 March 2026 (02:00 CET -> 03:00 CEST, at 01:00 UTC).
    hours = week(sun="02:30-06:00")
    opens = next_open(hours, datetime(2026, 3, 29, 0, 0, tzinfo=UTC))
    assert opens.astimezone(UTC) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert is_open(hours, opens) and not is_open(hours, datetime(2026, 3, 29, 0, 59, tzinfo=UTC))
    # Fall back (25 October 2026: 02:00-02:59 happens twice): a 02:30 opening is its first occurrence.
    back = week(sun="02:30-06:00")
    assert next_open(back, datetime(2026, 10, 24, 22, 0, tzinfo=UTC)).astimezone(UTC) == \
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_one_closed_period_one_key_the_next_night_another():
    hours = week(**NINE_TO_FIVE)
    ten_pm = datetime(2026, 12, 1, 22, 0, tzinfo=BERLIN)
    three_am = datetime(2026, 12, 2, 3, 0, tzinfo=BERLIN)
    next_night = datetime(2026, 12, 2, 22, 0, tzinfo=BERLIN)
    assert period_key(hours, ten_pm) == period_key(hours, three_am) == "2026-12-02T08:00Z"
    assert period_key(hours, next_night) == "2026-12-03T08:00Z"


def _valid(**changes) -> dict:
    values = {"enabled": True, "time_zone": "Europe/Berlin",
              "weekly": {"mon": [{"start": "13:00", "end": "17:00"}, {"start": "9:00", "end": "12:00"}]},
              "holidays": [{"date": "2026-12-25", "name": " Christmas "}, {"date": "2026-01-01"}],
              "away_message": " We're closed. ", "greeting_message": ""}
    values.update(changes)
    return values


def test_validation_normalises():
    out = validate_hours(_valid())
    assert [i.model_dump() for i in out["weekly"]["mon"]] == [{"start": "09:00", "end": "12:00"},
                                                              {"start": "13:00", "end": "17:00"}]
    assert out["weekly"]["sun"] == []
    assert [h.date for h in out["holidays"]] == ["2026-01-01", "2026-12-25"] and out["holidays"][1].name == "Christmas"
    assert out["away_message"] == "We're closed."


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"time_zone": "Mars/Olympus"}, "time_zone", "not an IANA time zone"),
    ({"time_zone": ""}, "time_zone", "Pick a time zone"),
    ({"weekly": {"tue": [{"start": "17:00", "end": "09:00"}]}}, "weekly.tue", "must end after it starts"),
    ({"weekly": {"tue": [{"start": "22:00", "end": "02:00"}]}}, "weekly.tue", "cannot cross midnight"),
    ({"weekly": {"wed": [{"start": "09:00", "end": "13:00"}, {"start": "12:00", "end": "17:00"}]}}, "weekly.wed",
     "overlap"),
    ({"weekly": {"thu": [{"start": "9am", "end": "17:00"}]}}, "weekly.thu", "not a time like 09:00"),
    ({"weekly": {"fri": [{"start": "24:00", "end": "24:00"}]}}, "weekly.fri", "24:00 only as an end"),
    ({"weekly": {"funday": []}}, "weekly", "Unknown day funday"),
    ({"holidays": [{"date": "2026-02-30"}]}, "holidays.0", "not a date"),
    ({"away_message": "x" * 4097}, "away_message", "4096"),
    ({"greeting_message": "hi \udc80"}, "greeting_message", "not text"),
    ({"time_zone": "America"}, "time_zone", "not an IANA time zone"),  # a directory of the database
    ({"time_zone": "x" * 5000}, "time_zone", "not an IANA time zone"),
])
def test_validation_names_the_field(changes, field, words):
    with pytest.raises(ValidationFailed) as caught:
        validate_hours(_valid(**changes))
    assert caught.value.status_code == 422 and caught.value.error_code == "BUSINESS_HOURS_INVALID"
    assert words in caught.value.details[field], caught.value.details


def test_the_forms_fields_and_errors():
    values = values_from_form({"enabled": "on", "time_zone": "Europe/Berlin", "hours_mon": "09:00-12:00, 13:00–17:00",
                               "hours_tue": "", "holidays": "2026-12-25 Christmas Day\n\n2026-12-26",
                               "away_message": "Closed", "greeting_message": "Hi"})
    assert values["weekly"]["mon"] == [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}]
    assert values["weekly"]["tue"] == [] and values["enabled"] is True
    assert values["holidays"] == [{"date": "2026-12-25", "name": "Christmas Day"}, {"date": "2026-12-26", "name": ""}]
    with pytest.raises(ValidationFailed) as caught:
        validate_hours(values_from_form({"time_zone": "Nowhere", "hours_wed": "nine to five",
                                         "holidays": "2026-12-25\nsoon"}))
    mapped = form_error(caught.value).details
    assert set(mapped) == {"time_zone", "hours_wed", "holidays"}
    assert mapped["holidays"].startswith("Line 2:")


def test_a_stored_zone_the_database_no_longer_knows_reads_as_utc():
    hours = week(time_zone="Atlantis/Capital", **NINE_TO_FIVE)
    assert is_open(hours, datetime(2026, 12, 3, 9, 30, tzinfo=UTC))
    assert next_open(hours, datetime(2026, 12, 3, 18, 0, tzinfo=UTC)) == datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
