"""WhatsApp notices: Meta's account / number webhooks in words on the number's page, the admins' badge,
"Mark as seen", and the banner with "Resume sending" when Meta stopped a number's sends."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

from app.db import utcnow
from app.domains.accounts.models import SendingStopped, WhatsAppAccount
from tests.conftest import csrf_from, sign_in
from tests.support.admin import (  # noqa: F401 (fixtures)
    AGENT_EMAIL,
    AGENT_PASSWORD,
    APP_SECRET,
    AUTH,
    NUMBER,
    add_agent,
    admin_client,
    sandbox,
    sandbox_server,
)
from tests.support.inbound import signed

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
RESTRICTION = "Meta restricted this WhatsApp Business account from starting conversations and adding phone numbers"


def payload(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def change(field: str, value: dict, waba_id: str = NUMBER["waba_id"], time: int = 1743451903) -> dict:
    return {"object": "whatsapp_business_account",
            "entry": [{"id": waba_id, "time": time, "changes": [{"field": field, "value": value}]}]}


async def _number(client, **overrides) -> WhatsAppAccount:
    answer = await client.post("/api/v1/accounts", json={**NUMBER, **overrides}, headers=AUTH)
    assert answer.status_code == 201, answer.text
    return await WhatsAppAccount.get(answer.json()["id"])


async def _webhook(client, account: WhatsAppAccount, body: dict) -> None:
    """Posted as Meta does: signed with the number's app secret, to its webhook URL."""
    raw, headers = signed(body, APP_SECRET)
    answer = await client.post(f"/webhooks/whatsapp/{account.webhook_key}", content=raw, headers=headers)
    assert answer.status_code == 200, answer.text


async def _htmx_post(client, url: str, data: dict | None = None):
    token = csrf_from((await client.get("/admin/numbers")).text)
    return await client.post(url, data=data or {}, headers={"HX-Request": "true", "X-CSRFToken": token})


async def _badge(client) -> str:
    answer = await client.get("/admin/numbers/notices", headers={"HX-Request": "true"})
    assert answer.status_code == 200, answer.text
    return answer.text


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'")


async def _notices(client, account: WhatsAppAccount) -> str:
    """The number page's "WhatsApp notices" section, as text."""
    page = (await client.get(f"/admin/numbers/{account.id}")).text
    return _text(page.split('id="notices"', 1)[1].split("</section>", 1)[0])


async def test_a_restriction_shows_in_words_and_raises_the_admin_badge_until_seen(admin_client):
    account = await _number(admin_client)
    every_page = await admin_client.get("/inbox")
    assert 'hx-get="/admin/numbers/notices"' in every_page.text  # the badge loads on every page of an admin
    assert "WhatsApp notice" not in await _badge(admin_client)

    await _webhook(admin_client, account, payload("account_update_account_restriction.json"))

    page = await _notices(admin_client, account)
    assert "WhatsApp notices 1 new" in page
    assert f"Critical New {RESTRICTION} until 4 Jan 2022 21:08 UTC" in page
    assert "RESTRICTED_BIZ_INITIATED_MESSAGING" in page  # Meta's payload, kept and shown on demand
    badge = await _badge(admin_client)
    assert "1 WhatsApp notice" in badge and f'href="/admin/numbers/{account.id}#notices"' in badge
    assert "sev-critical" in badge

    # The same body again (Meta retries): still one notice.
    await _webhook(admin_client, account, payload("account_update_account_restriction.json"))
    assert "1 WhatsApp notice" in await _badge(admin_client)

    seen = await _htmx_post(admin_client, "/admin/numbers/notices/seen")
    assert seen.status_code == 200 and 'id="wa-notices"' in seen.text and "WhatsApp notice" not in seen.text
    assert "WhatsApp notice" not in await _badge(admin_client)
    page = await _notices(admin_client, account)
    assert f"Critical {RESTRICTION}" in page and "New" not in page and "new" not in page
    stored = await WhatsAppAccount.get(account.id)
    assert stored.health.account_events[0]["seen_at"] is not None


async def test_violation_then_restriction_and_limits_newest_first(admin_client):
    account = await _number(admin_client)
    violation = payload("account_update_account_violation.json")
    violation["entry"][0]["changes"][0]["value"]["violation_info"]["violation_type"] = "SCAM"
    await _webhook(admin_client, account, violation)
    await _webhook(admin_client, account, payload("account_update_account_restriction.json"))
    await _webhook(admin_client, account, change("phone_number_quality_update", {
        "display_phone_number": "15550100001", "event": "UPGRADE", "old_limit": "TIER_2K", "current_limit": "TIER_10K"}))
    await _webhook(admin_client, account, change("phone_number_quality_update", {
        "display_phone_number": "15550100001", "event": "FLAGGED", "current_limit": "TIER_10K"}))
    await _webhook(admin_client, account, payload("account_update_pricing_tiering_update.json"))
    await _webhook(admin_client, account, change("account_update", {"event": "SOMETHING_META_ADDED_LATER", "x": 1}))

    notices = await _notices(admin_client, account)
    expected = [
        "Info Meta sent account_update: SOMETHING_META_ADDED_LATER",
        "Info Volume pricing tier for UTILITY messages in India: 25,000,001–50,000,000 messages a month, from 2025-11",
        "Warning New Quality rating dropped to LOW (RED): Meta flagged this number",
        "Info Messaging limit raised to 10K customers/24h (was 2K customers/24h)",
        f"Critical New {RESTRICTION} until 4 Jan 2022 21:08 UTC (now over) (policy violation: SCAM)",
        "Warning New Meta reported a policy violation on this WhatsApp Business account: SCAM",
    ]
    positions = [notices.find(line) for line in expected]
    assert -1 not in positions, [line for line, at in zip(expected, positions, strict=True) if at == -1]
    assert positions == sorted(positions)  # newest first
    stored = await WhatsAppAccount.get(account.id)
    assert (stored.health.messaging_limit_tier, stored.health.quality_rating) == ("TIER_10K", "RED")
    badge = await _badge(admin_client)
    assert "3 WhatsApp notices" in badge  # warnings and critical ones; news (info) is not counted

    # "Mark as seen" on the number's page: its list and the badge (out of band) follow.
    seen = await _htmx_post(admin_client, f"/admin/numbers/{account.id}/notices/seen")
    assert seen.status_code == 200
    assert 'id="notices"' in seen.text and 'hx-swap-oob="true"' in seen.text and "WhatsApp notice<" not in seen.text
    assert " New " not in _text(seen.text)
    assert "WhatsApp notice" not in await _badge(admin_client)


async def test_a_wabas_event_counts_once_for_all_its_numbers(admin_client):
    first = await _number(admin_client)
    second = await _number(admin_client, name="Sales", phone_number_id="106540352242923",
                           display_phone_number="+1 555-010-0002")
    await _webhook(admin_client, first, payload("account_update_account_disabled.json"))  # a reinstatement: news
    await _webhook(admin_client, first, change("account_update", {
        "event": "DISABLED_UPDATE", "ban_info": {"waba_ban_state": "DISABLE", "waba_ban_date": "June 2, 2026"}}))
    for account in (first, second):
        page = await _notices(admin_client, account)
        assert ("Critical New Meta banned (disabled) this WhatsApp Business account on June 2, 2026: "
                "its numbers can no longer send") in page
        assert "Info Meta reinstated this WhatsApp Business account (it was disabled on April 17, 2025)" in page
    badge = await _badge(admin_client)
    assert "1 WhatsApp notice" in badge and 'href="/admin/numbers"' in badge  # on two numbers: the list
    seen = await _htmx_post(admin_client, f"/admin/numbers/{second.id}/notices/seen")
    assert seen.status_code == 200
    assert "WhatsApp notice" not in await _badge(admin_client)  # seen on one number: seen on both
    assert " New " not in await _notices(admin_client, first)


async def test_account_alerts_keep_metas_words_and_severity(admin_client):
    account = await _number(admin_client)
    description = ("Limits cannot be increased for your business Shop. Use WhatsApp Business platform actively for "
                   "several days and follow our messaging policies.")
    await _webhook(admin_client, account, change("account_alerts", {
        "entity_type": "BUSINESS", "entity_id": "506914307656634",
        "alert_info": {"alert_severity": "WARNING", "alert_status": "ACTIVE",
                       "alert_type": "INCREASED_CAPABILITIES_ELIGIBILITY_DEFERRED", "alert_description": description}}))
    await _webhook(admin_client, account, change("account_alerts", {
        "entity_type": "PHONE_NUMBER", "entity_id": "106540352242922",
        "alert_info": {"alert_severity": "CRITICAL", "alert_status": "ACTIVE", "alert_type": "NEW_KIND_OF_ALERT",
                       "alert_description": "Something Meta says"}}))
    page = await _notices(admin_client, account)
    assert "Warning New Meta has not decided yet whether to raise the messaging limit " + description in page
    assert "Critical New Meta alert: NEW_KIND_OF_ALERT Something Meta says" in page
    assert "2 WhatsApp notices" in await _badge(admin_client)


async def test_stopped_sends_show_a_banner_and_resume_sending(admin_client):
    account = await _number(admin_client)
    stopped = SendingStopped(code=368, title="Temporarily blocked for policies violations",
                             detail="The message failed to send because there were too many messages sent from "
                                    "this phone number in a short period of time.", at=utcnow())
    await WhatsAppAccount.find_one(WhatsAppAccount.id == account.id).update(
        {"$set": {"health.sending_stopped": stopped.model_dump()}})

    page = (await admin_client.get(f"/admin/numbers/{account.id}")).text
    banner = _text(page.split('id="sending-stopped"', 1)[1].split("</section>", 1)[0])
    assert "Meta stopped this number's sends" in banner
    assert "Temporarily blocked for policies violations (code 368): The message failed to send" in banner
    assert f'action="/admin/numbers/{account.id}/resume"' in page and "Resume sending" in banner
    badge = await _badge(admin_client)
    assert "Sending stopped: Support line" in badge and f'href="/admin/numbers/{account.id}"' in badge

    form = await admin_client.post(f"/admin/numbers/{account.id}/resume", data={})  # no CSRF token: refused
    assert form.status_code == 403
    resumed = await _htmx_post(admin_client, f"/admin/numbers/{account.id}/resume")
    assert resumed.status_code == 200, resumed.text
    assert "Sending resumed" in resumed.text and "Resume sending" not in resumed.text
    assert 'id="wa-notices"' in resumed.text and "Sending stopped" not in resumed.text  # badge, out of band
    assert (await WhatsAppAccount.get(account.id)).health.sending_stopped is None
    again = await _htmx_post(admin_client, f"/admin/numbers/{account.id}/resume")
    assert again.status_code == 200 and "already resumed" in again.text


async def test_agents_see_no_badge_and_cannot_read_or_clear_notices(admin_client):
    account = await _number(admin_client)
    await _webhook(admin_client, account, payload("account_update_account_restriction.json"))
    await add_agent(admin_client)
    await admin_client.post("/logout", data={"_csrf_token": csrf_from((await admin_client.get("/inbox")).text)})
    await sign_in(admin_client, AGENT_EMAIL, AGENT_PASSWORD)
    inbox = await admin_client.get("/inbox")
    assert "wa-notices" not in inbox.text
    token = csrf_from(inbox.text)
    assert (await admin_client.get("/admin/numbers/notices")).status_code == 403
    for url in ("/admin/numbers/notices/seen", f"/admin/numbers/{account.id}/notices/seen",
                f"/admin/numbers/{account.id}/resume"):
        assert (await admin_client.post(url, data={"_csrf_token": token})).status_code == 403, url
    stored = await WhatsAppAccount.get(account.id)
    assert stored.health.account_events[0]["seen_at"] is None


async def test_unreadable_parts_still_give_a_notice_and_keep_the_payload(admin_client):
    account = await _number(admin_client)
    odd = copy.deepcopy(payload("account_update_account_restriction.json"))
    odd["entry"][0]["changes"][0]["value"]["restriction_info"] = "not a list any more"
    await _webhook(admin_client, account, odd)
    page = await _notices(admin_client, account)
    assert "Critical New Meta restricted this WhatsApp Business account" in page
    assert "not a list any more" in page
