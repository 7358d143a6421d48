"""Typed contact attributes: each type's accepted inputs (text from forms and CSV, JSON from the API)
become BSON-native values, refused ones say which attribute wanted what, and stored values show
back as people typed them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from beanie import PydanticObjectId

from app.domains.catalog.models import ContactAttribute
from app.domains.contacts.attribute_values import AttributeValueError, coerce_attribute, show_attribute


def attr(type_: str, options: list[str] | None = None, name: str = "Field") -> ContactAttribute:
    return ContactAttribute.model_construct(workspace_id=PydanticObjectId(), key="field", name=name, type=type_,
                                            options=options or [])


def coerce(type_: str | None, raw, **kw):
    return coerce_attribute(attr(type_, **kw) if type_ else None, raw, key="field")


@pytest.mark.parametrize("type_", ["text", "number", "date", "datetime", "boolean", "list", None])
@pytest.mark.parametrize("raw", [None, "", "   "])
def test_blank_means_unset_for_every_type(type_, raw):
    assert coerce(type_, raw, **({"options": ["A"]} if type_ == "list" else {})) is None


@pytest.mark.parametrize("raw,stored", [("pro", "pro"), ("  spaced  ", "spaced"), (42, "42"), (2.5, "2.5"),
                                        ("x" * 500, "x" * 500)])
def test_text_accepts(raw, stored):
    assert coerce("text", raw) == stored
    assert coerce(None, raw) == stored  # no definition: text


@pytest.mark.parametrize("raw", ["x" * 501, True, {"a": 1}, ["a"]])
def test_text_refuses(raw):
    with pytest.raises(AttributeValueError):
        coerce("text", raw)


@pytest.mark.parametrize("raw,stored", [("12", 12), ("-3", -3), ("+7", 7), ("2.5", 2.5), ("1e3", 1000.0),
                                        (" 8 ", 8), (5, 5), (0.25, 0.25), (".5", 0.5)])
def test_number_accepts(raw, stored):
    value = coerce("number", raw)
    assert value == stored and type(value) is type(stored)


@pytest.mark.parametrize("raw", ["twelve", "1,5", "12abc", "nan", "inf", float("nan"), True, "9" * 30, [1]])
def test_number_refuses(raw):
    with pytest.raises(AttributeValueError) as refused:
        coerce("number", raw)
    assert "a number" in refused.value.message and refused.value.expected == "number"


def test_number_refusal_names_the_attribute():
    with pytest.raises(AttributeValueError) as refused:
        coerce_attribute(attr("number", name="Orders"), "many", key="orders")
    assert refused.value.message.startswith("Orders must be a number") and refused.value.key == "orders"
    error = refused.value.as_validation_error()
    assert error.error_code == "ATTRIBUTE_INVALID" and error.status_code == 422 and "orders" in error.details


@pytest.mark.parametrize("raw", ["2025-03-01", " 2025-03-01 ", "2025-03-01T23:30:00", date(2025, 3, 1),
                                 datetime(2025, 3, 1, 23, 30, tzinfo=UTC)])
def test_date_accepts(raw):
    assert coerce("date", raw) == datetime(2025, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize("raw", ["01/03/2025", "2025-02-30", "March 1", "20250301", 20250301, True, "2025-3-1"])
def test_date_refuses(raw):
    with pytest.raises(AttributeValueError) as refused:
        coerce("date", raw)
    assert "YYYY-MM-DD" in refused.value.message


@pytest.mark.parametrize("raw,stored", [
    ("2025-03-01T14:30:00Z", datetime(2025, 3, 1, 14, 30, tzinfo=UTC)),
    ("2025-03-01T14:30:00+02:00", datetime(2025, 3, 1, 12, 30, tzinfo=UTC)),
    ("2025-03-01T14:30", datetime(2025, 3, 1, 14, 30, tzinfo=UTC)),  # naive is UTC
    ("2025-03-01 14:30:00.123456", datetime(2025, 3, 1, 14, 30, 0, 123000, tzinfo=UTC)),  # Mongo's milliseconds
    ("2025-03-01", datetime(2025, 3, 1, tzinfo=UTC)),
    (datetime(2025, 3, 1, 9, tzinfo=timezone(timedelta(hours=-5))), datetime(2025, 3, 1, 14, tzinfo=UTC)),
])
def test_datetime_accepts(raw, stored):
    value = coerce("datetime", raw)
    assert value == stored and value.tzinfo is not None


@pytest.mark.parametrize("raw", ["yesterday", "2025-03-01T25:00", "14:30", 1700000000, False])
def test_datetime_refuses(raw):
    with pytest.raises(AttributeValueError):
        coerce("datetime", raw)


@pytest.mark.parametrize("raw,stored", [("true", True), ("Yes", True), ("1", True), ("FALSE", False), ("no", False),
                                        ("0", False), (True, True), (False, False), (1, True), (0, False)])
def test_boolean_accepts(raw, stored):
    assert coerce("boolean", raw) is stored


@pytest.mark.parametrize("raw", ["maybe", "2", 2, "tru", [True]])
def test_boolean_refuses(raw):
    with pytest.raises(AttributeValueError) as refused:
        coerce("boolean", raw)
    assert "yes or no" in refused.value.message


def test_list_takes_the_option_as_defined_whatever_the_case():
    assert coerce("list", "gold", options=["Silver", "Gold"]) == "Gold"
    assert coerce("list", " SILVER ", options=["Silver", "Gold"]) == "Silver"
    assert coerce("list", 3, options=["1", "2", "3"]) == "3"
    with pytest.raises(AttributeValueError) as refused:
        coerce("list", "Bronze", options=["Silver", "Gold"])
    assert "Silver, Gold" in refused.value.message


def test_values_show_as_people_read_them():
    assert show_attribute(attr("date"), datetime(2025, 3, 1)) == "2025-03-01"  # naive from Mongo = UTC
    assert show_attribute(attr("datetime"), datetime(2025, 3, 1, 14, 30)) == "2025-03-01T14:30:00Z"
    assert show_attribute(attr("datetime"), datetime(2025, 3, 1, 14, 30, 0, 5000)) == "2025-03-01T14:30:00.005Z"
    assert show_attribute(attr("boolean"), True) == "yes" and show_attribute(None, False) == "no"
    assert show_attribute(attr("number"), 3.0) == "3" and show_attribute(attr("number"), 2.5) == "2.5"
    assert show_attribute(attr("number"), 12) == "12" and show_attribute(None, None) == ""
    assert show_attribute(None, "plain") == "plain"
    assert show_attribute(None, datetime(2025, 3, 1, tzinfo=UTC)) == "2025-03-01"  # an undefined date


def test_a_shown_value_is_accepted_back_unchanged():
    """What the page and the CSV export show is what an edit or an import takes back (a round trip)."""
    for type_, value in (("date", datetime(2025, 3, 1, tzinfo=UTC)), ("datetime", datetime(2025, 3, 1, 14, 30,
                                                                                            tzinfo=UTC)),
                         ("boolean", False), ("number", 2.5), ("number", 7), ("text", "pro")):
        assert coerce(type_, show_attribute(attr(type_), value)) == value
