"""Issue 19, the messages panel's API: messages per local day / hour / week of the workspace's time zone, how ours
fared, and the period compared with, from hand-made messages whose expected counts are worked out by hand.

The workspace's zone is Europe/Berlin (UTC+1 until Sunday 29 March 2026 02:00, UTC+2 after). Three local days,
Saturday 28 to Monday 30 March 2026 (the 29th lasts 23 hours):

  28 Mar 23:30 CET   (22:30 UTC 28th)  customer          -> the 28th
  29 Mar 00:30 CET   (23:30 UTC 28th)  customer          -> the 29th (a UTC day would say the 28th)
  29 Mar 12:00 CEST                    ours, read        -> the 29th: delivered and read
  29 Mar 23:30 CEST  (21:30 UTC 29th)  ours, delivered   -> the 29th
  30 Mar 00:10 CEST  (22:10 UTC 29th)  ours, failed      -> the 30th
  30 Mar 10:00 CEST                    our reaction, and an internal note: not messages here
  27 Mar 10:00 CET / 26 Mar 10:00 CET  ours (sent) / a customer's: the three days before (the 25th to 27th)

Totals: 2 in, 3 out, 2 delivered, 1 read, 1 failed: rates 0.6667, 0.3333, 0.3333. Before: 1 in, 1 out. All texts;
the failure is 131026; the delivered one is a billable marketing message (the others are not priced).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from app.domains.contacts.services import ContactService
from app.domains.conversations.services import ConversationService
from app.domains.messages.models import MessageStatus
from app.domains.templates.models import MessageTemplate
from app.domains.webhooks.models import TemplateStatusEvent
from tests.support.api_world import build_world, message

BERLIN = ZoneInfo("Europe/Berlin")
DAYS = {"from": "2026-03-28", "to": "2026-03-30"}
HOURS = {"enabled": True, "time_zone": "Europe/Berlin",
         "weekly": {d: [{"start": "09:00", "end": "17:00"}] for d in ("mon", "tue", "wed", "thu", "fri")}
         | {"sat": [], "sun": []}}


def berlin(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=BERLIN)


@pytest.fixture
async def shop(client_factory):
    client = await client_factory(settings={"api_rate_limit_per_minute": 10000})
    world = await build_world(client.app.state.runtime)
    assert (await client.put("/api/v1/business-hours", headers=world.auth, json=HOURS)).status_code == 200
    contact, _ = await ContactService().upsert(world.workspace_id, wa_id="4915200000001")
    conversation, _ = await ConversationService().open_for(world.workspace_id, world.account.id, contact.id)
    await message(world, conversation, "inbound", berlin(2026, 3, 28, 23, 30))
    await message(world, conversation, "inbound", berlin(2026, 3, 29, 0, 30))
    await message(world, conversation, "outbound", berlin(2026, 3, 29, 12), status=MessageStatus.READ,
                  reached=("sent", "delivered", "read"))
    await message(world, conversation, "outbound", berlin(2026, 3, 29, 23, 30), status=MessageStatus.DELIVERED,
                  pricing={"billable": True, "model": "PMP", "type": "regular", "category": "marketing"})
    await message(world, conversation, "outbound", berlin(2026, 3, 30, 0, 10), status=MessageStatus.FAILED,
                  error_code=131026)
    reaction = await message(world, conversation, "outbound", berlin(2026, 3, 30, 10))
    await reaction.set({"type": "reaction", "content": {"emoji": "👍"}})
    await message(world, conversation, "internal", berlin(2026, 3, 30, 10, 5), status=MessageStatus.DELIVERED)
    await message(world, conversation, "outbound", berlin(2026, 3, 27, 10))
    await message(world, conversation, "inbound", berlin(2026, 3, 26, 10))
    return client, world


async def report(client, world, **params) -> dict:
    answer = await client.get("/api/v1/analytics/messages", headers=world.auth, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_local_days_with_how_our_messages_fared_and_the_days_before(shop):
    client, world = shop
    days = await report(client, world, **DAYS)
    assert days["period"] == {"first_day": "2026-03-28", "last_day": "2026-03-30", "time_zone": "Europe/Berlin",
                              "preset": "custom", "label": "28 Mar 2026 – 30 Mar 2026"}
    counted = [(b["start"], b["end"], b["inbound"], b["outbound"], b["delivered"], b["read"], b["failed"])
               for b in days["buckets"]]
    assert counted == [
        ("2026-03-27T23:00:00Z", "2026-03-28T23:00:00Z", 1, 0, 0, 0, 0),
        ("2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", 1, 2, 2, 1, 0),  # 23 hours
        ("2026-03-29T22:00:00Z", "2026-03-30T22:00:00Z", 0, 1, 0, 0, 1),
    ]
    assert days["totals"] == {"inbound": 2, "outbound": 3, "delivered": 2, "read": 1, "failed": 1,
                              "delivered_rate": 0.6667, "read_rate": 0.3333, "failed_rate": 0.3333}
    assert days["previous"] == {"inbound": 1, "outbound": 1, "delivered": 0, "read": 0, "failed": 0,
                                "delivered_rate": 0.0, "read_rate": 0.0, "failed_rate": 0.0}
    assert days["by_type"] == {"inbound": {"text": 2}, "outbound": {"text": 3}}
    assert days["failures"] == [{"code": 131026, "title": "Error 131026", "words": "", "count": 1}]
    assert days["billable"] == {"marketing": 1}
    # When customers write, in Berlin's time: Saturday 23:00-24:00 and Sunday 00:00-01:00.
    busiest = days["busiest_hours"]
    assert len(busiest) == 7 and {len(row) for row in busiest} == {24}
    assert busiest[5][23] == 1 and busiest[6][0] == 1 and sum(map(sum, busiest)) == 2
    # The aliases of the spec, and the same figures.
    assert (await report(client, world, start_date="2026-03-28", end_date="2026-03-30"))["totals"] == days["totals"]


async def test_hours_and_weeks_cover_the_same_messages(shop):
    client, world = shop
    hours = await report(client, world, interval="hour", **DAYS)
    assert len(hours["buckets"]) == 24 + 23 + 24
    busy = {b["start"]: (b["inbound"], b["outbound"]) for b in hours["buckets"] if b["inbound"] or b["outbound"]}
    assert busy == {"2026-03-28T22:00:00Z": (1, 0), "2026-03-28T23:00:00Z": (1, 0), "2026-03-29T10:00:00Z": (0, 1),
                    "2026-03-29T21:00:00Z": (0, 1), "2026-03-29T22:00:00Z": (0, 1)}
    weeks = await report(client, world, interval="week", **DAYS)
    assert [(b["start"], b["inbound"], b["outbound"]) for b in weeks["buckets"]] == [
        ("2026-03-27T23:00:00Z", 2, 2), ("2026-03-29T22:00:00Z", 0, 1)]  # Sat-Sun, then Monday
    assert weeks["totals"] == hours["totals"]


async def test_a_number_filter_an_agent_and_bad_input(shop):
    client, world = shop
    other = await report(client, world, account_id="6b12d0c703ad15ea8f962084", **DAYS)
    assert other["totals"]["inbound"] == 0 and other["totals"]["delivered_rate"] is None
    mine = await report(client, world, account_id=str(world.account.id), **DAYS)
    assert mine["totals"]["outbound"] == 3
    # An agent sees the numbers they see; another workspace's messages on the same days count nowhere here.
    agent = await client.get("/api/v1/analytics/messages", headers=world.agent_auth, params=DAYS)
    assert agent.status_code == 200 and agent.json()["totals"] == mine["totals"]
    neighbour = await build_world(client.app.state.runtime, "Neighbour")
    contact, _ = await ContactService().upsert(neighbour.workspace_id, wa_id="4915200000009")
    theirs, _ = await ConversationService().open_for(neighbour.workspace_id, neighbour.account.id, contact.id)
    await message(neighbour, theirs, "inbound", berlin(2026, 3, 29, 12))
    assert (await report(client, world, **DAYS))["totals"] == mine["totals"]
    for params in ({"from": "2026-03-28"}, {"range": "forever"}, {"interval": "minute", **DAYS},
                   {"from": "28/03/2026", "to": "2026-03-30"}, {"account_id": "nope", **DAYS},
                   {"from": "2025-01-01", "to": "2026-03-30", "interval": "hour"}):
        refused = await client.get("/api/v1/analytics/messages", headers=world.auth, params=params)
        assert refused.status_code == 400, (params, refused.text)
        assert refused.json()["error_code"] in ("PERIOD_INVALID", "VALIDATION_ERROR", "BAD_REQUEST",
                                                "INTERVAL_TOO_FINE"), refused.json()


async def test_templates_sent_how_they_fared_and_their_review(shop):
    client, world = shop
    template = await MessageTemplate.get(world.extra_ids["templates"])
    convo = world.conversations[0]
    read = await message(world, convo, "outbound", berlin(2026, 3, 29, 9), status=MessageStatus.READ)
    failed = await message(world, convo, "outbound", berlin(2026, 3, 29, 9, 30), status=MessageStatus.FAILED,
                           error_code=131049)
    for sent in (read, failed):
        await sent.set({"type": "template", "content": {"name": template.name, "language": {"code": "en_US"}}})
    await TemplateStatusEvent(workspace_id=world.workspace_id, waba_id=world.account.waba_id,
                              field="message_template_status_update", meta_template_id=template.meta_id,
                              name=template.name, language="en_US", event="APPROVED", reason="NONE",
                              occurred_at=berlin(2026, 3, 28, 8), created_at=berlin(2026, 3, 28, 8)).insert()
    answer = await client.get("/api/v1/analytics/templates", headers=world.auth, params=DAYS)
    assert answer.status_code == 200, answer.text
    rows = answer.json()["templates"]
    assert [(r["name"], r["sent"], r["delivered"], r["read"], r["failed"], r["status"]) for r in rows] == [
        (template.name, 2, 1, 1, 1, "APPROVED")]
    assert [(c["status"], c["at"]) for c in rows[0]["changes"]] == [("APPROVED", "2026-03-28T07:00:00Z")]
