"""Meta's account and number webhooks in words (app/domains/notifications/words.py), on the real payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.domains.notifications.notices import notices_of
from app.domains.notifications.words import describe, limit_words, tier_code

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def value_of(name: str) -> tuple[str, dict]:
    change = json.loads((FIXTURES / name).read_text())["entry"][0]["changes"][0]
    return change["field"], change["value"]


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("account_update_*.json")))
def test_every_real_account_update_is_described(name):
    field, value = value_of(name)
    notice = describe(field, value, now=NOW)
    assert notice.known and notice.severity in ("info", "warning", "critical")
    assert "account_update" not in notice.text and value["event"] not in notice.text  # words, not Meta's codes


@pytest.mark.parametrize(("name", "severity", "text"), [
    ("account_update_account_restriction.json", "critical",
     "Meta restricted this WhatsApp Business account from starting conversations and adding phone numbers "
     "until 4 Jan 2022 21:08 UTC (now over)"),
    ("account_update_account_violation.json", "warning",
     "Meta reported a policy violation on this WhatsApp Business account: ADULT"),
    ("account_update_account_disabled.json", "info",
     "Meta reinstated this WhatsApp Business account (it was disabled on April 17, 2025)"),
    ("account_update_account_deleted.json", "critical",
     "The WhatsApp Business account was deleted: its numbers can no longer send"),
    ("account_update_partner_app_uninstalled.json", "warning",
     "An app's access to this WhatsApp Business account was removed (app 869361281603019)"),
    ("account_update_pricing_tiering_update.json", "info",
     "Volume pricing tier for UTILITY messages in India: 25,000,001–50,000,000 messages a month, from 2025-11"),
])
def test_real_payloads_in_words(name, severity, text):
    notice = describe(*value_of(name), now=NOW)
    assert (notice.severity, notice.text) == (severity, text)


def test_bans_restrictions_limits_quality_and_alerts():
    ban = describe("account_update", {"event": "DISABLED_UPDATE",
                                      "ban_info": {"waba_ban_state": "SCHEDULE_FOR_DISABLE", "waba_ban_date": "May 1"}})
    assert (ban.severity, ban.text) == (
        "critical", "Meta will ban (disable) this WhatsApp Business account on May 1 unless the violation is resolved")
    two_ends = describe("account_update", {"event": "ACCOUNT_RESTRICTION", "restriction_info": [
        {"restriction_type": "RESTRICTED_CUSTOMER_INITIATED_MESSAGING", "expiration": 1893456000},
        {"restriction_type": "RESTRICTED_SOMETHING_NEW", "expiration": 1893542400}]}, violation="SCAM", now=NOW)
    assert two_ends.text == ("Meta restricted this WhatsApp Business account from replying to customers until "
                             "1 Jan 2030 00:00 UTC and RESTRICTED_SOMETHING_NEW until 2 Jan 2030 00:00 UTC "
                             "(policy violation: SCAM)")
    up = describe("phone_number_quality_update", {"event": "UPGRADE", "current_limit": "TIER_10K"},
                  previous_limit="TIER_2K")
    assert (up.severity, up.text) == ("info", "Messaging limit raised to 10K customers/24h (was 2K customers/24h)")
    down = describe("business_capability_update", {"max_daily_conversation_per_phone": 250}, previous_limit="TIER_2K")
    assert (down.severity, down.text) == ("warning", "Messaging limit lowered to 250 customers/24h (was 2K customers/24h)")
    flagged = describe("phone_number_quality_update", {"event": "FLAGGED", "current_limit": "TIER_10K"})
    assert (flagged.severity, flagged.text) == ("warning", "Quality rating dropped to LOW (RED): Meta flagged this number")
    # Meta's dashboard "Test" sends the alert's keys at the top level.
    oba = describe("account_alerts", {"entity_type": "WABA", "entity_id": 123456, "alert_severity": "INFORMATIONAL",
                                      "alert_status": "NONE", "alert_type": "OBA_APPROVED",
                                      "alert_description": "Sample alert description"})
    assert (oba.severity, oba.detail) == ("info", "Sample alert description") and "Official Business Account" in oba.text


def test_unknown_fields_and_events_show_metas_raw_type():
    assert describe("business_status_update", {"event": "SOMETHING"}).text == "Meta sent business_status_update: SOMETHING"
    unknown = describe("account_update", {"event": "BRAND_NEW_EVENT"})
    assert (unknown.known, unknown.severity, unknown.text) == (False, "info", "Meta sent account_update: BRAND_NEW_EVENT")
    reshaped = describe("account_update", {"event": "ACCOUNT_RESTRICTION", "restriction_info": "a string now"})
    assert (reshaped.known, reshaped.severity) == (False, "critical")


def test_tiers():
    assert [tier_code(v) for v in (2000, "10000", -1, "TIER_2K", None)] == [
        "TIER_2K", "TIER_10K", "TIER_UNLIMITED", "TIER_2K", None]
    assert limit_words("TIER_UNLIMITED") == "unlimited customers/24h" and limit_words(5000) == "5,000 customers/24h"


def test_notices_newest_first_and_a_restriction_names_the_violation_before_it():
    at = datetime(2026, 1, 1, tzinfo=UTC)
    events = [
        {"key": "a", "field": "account_update", "severity": "warning", "seen_at": at, "at": at,
         "value": {"event": "ACCOUNT_VIOLATION", "violation_info": {"violation_type": "SCAM"}}},
        {"key": "b", "field": "account_update", "severity": "critical", "seen_at": None, "at": at,
         "value": {"event": "ACCOUNT_RESTRICTION", "restriction_info": [
             {"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING", "expiration": 1893456000}]}},
        {"key": "c", "field": "phone_number_name_update", "at": at,  # stored before notices: never counted
         "value": {"decision": "APPROVED", "requested_verified_name": "Shop"}},
    ]
    listed = notices_of(events, now=NOW)
    assert [n.key for n in listed] == ["c", "b", "a"]
    assert [n.unseen for n in listed] == [False, True, False]
    assert listed[1].text.endswith("until 1 Jan 2030 00:00 UTC (policy violation: SCAM)")
    assert listed[0].text == 'Display name "Shop" approved'
