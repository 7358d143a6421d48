"""Issue 19: the message figures come from hourly rollups that stay exact as messages change.

What a user would notice if the rollups drifted: a read receipt that arrives the next day not counted, or counted in
the wrong day; an erased customer's messages still counted; two people opening the report at once doubling a day;
India's days cut at a UTC half hour; a change of the workspace's time zone leaving the old days behind. And what an
operator would notice: once the worker's cron has run, opening the report reads no message at all.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.db import utcnow
from app.domains.contacts.services import ContactService
from app.domains.conversations.services import ConversationService
from app.domains.messages.models import Message, MessageStatus
from app.domains.messages.status import advance_status
from app.domains.reports import rollups
from tests.support.api_world import build_world, message
from tests.support.command_capture import capture
from workers.tasks import refresh_reports

KOLKATA = ZoneInfo("Asia/Kolkata")  # UTC+5:30: local hours start at :30 UTC
UTC_ = ZoneInfo("UTC")


def hours_in(zone: str) -> dict:
    return {"enabled": True, "time_zone": zone,
            "weekly": {d: [{"start": "09:00", "end": "17:00"}] for d in ("mon", "tue", "wed", "thu", "fri")}
            | {"sat": [], "sun": []}}


@pytest.fixture
async def india(client_factory):
    client = await client_factory(settings={"api_rate_limit_per_minute": 10000})
    world = await build_world(client.app.state.runtime)
    assert (await client.put("/api/v1/business-hours", headers=world.auth, json=hours_in("Asia/Kolkata"))).status_code == 200
    contact, _ = await ContactService().upsert(world.workspace_id, wa_id="919800000001")
    conversation, _ = await ConversationService().open_for(world.workspace_id, world.account.id, contact.id)
    return client, world, conversation


async def report(client, world, **params) -> dict:
    answer = await client.get("/api/v1/analytics/messages", headers=world.auth, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def days_of(figures: dict) -> list[tuple]:
    return [(b["start"], b["inbound"], b["outbound"], b["delivered"], b["read"]) for b in figures["buckets"]]


async def fresh(doc: Message) -> Message:
    """Written now, as every write path does (the fixtures back-date ``updated_at`` to the message's time)."""
    await doc.set({"updated_at": utcnow()})
    return doc


DEC = {"from": "2026-12-01", "to": "2026-12-02"}


async def test_local_days_of_a_half_hour_zone_and_hours_starting_at_half_past(india):
    client, world, conversation = india
    await message(world, conversation, "inbound", datetime(2026, 12, 1, 18, 29, tzinfo=UTC_))  # 23:59 IST, the 1st
    await message(world, conversation, "inbound", datetime(2026, 12, 1, 18, 31, tzinfo=UTC_))  # 00:01 IST, the 2nd
    figures = await report(client, world, **DEC)
    assert days_of(figures) == [("2026-11-30T18:30:00Z", 1, 0, 0, 0), ("2026-12-01T18:30:00Z", 1, 0, 0, 0)]
    hours = await report(client, world, interval="hour", **DEC)
    busy = [b["start"] for b in hours["buckets"] if b["inbound"]]
    assert busy == ["2026-12-01T17:30:00Z", "2026-12-01T18:30:00Z"]


async def test_a_receipt_that_comes_the_next_day_counts_in_the_day_the_message_was_sent(india):
    client, world, conversation = india
    ours = await message(world, conversation, "outbound", datetime(2026, 12, 1, 6, tzinfo=UTC_),
                         status=MessageStatus.SENT)
    assert days_of(await report(client, world, **DEC))[0] == ("2026-11-30T18:30:00Z", 0, 1, 0, 0)
    # The next day the phone comes online: delivered, then read (the real status path).
    assert await advance_status(ours, MessageStatus.DELIVERED)
    assert await advance_status(ours, MessageStatus.READ)
    after = await report(client, world, **DEC)
    assert days_of(after) == [("2026-11-30T18:30:00Z", 0, 1, 1, 1), ("2026-12-01T18:30:00Z", 0, 0, 0, 0)]
    # A new message after the first report: counted too, once.
    await fresh(await message(world, conversation, "inbound", datetime(2026, 12, 2, 6, tzinfo=UTC_)))
    again = await report(client, world, **DEC)
    assert again["totals"]["inbound"] == 1 and again["totals"]["outbound"] == 1


async def test_two_reports_at_once_and_the_cron_count_each_message_once(india):
    client, world, conversation = india
    for minute in range(5):
        await message(world, conversation, "inbound", datetime(2026, 12, 1, 6, minute, tzinfo=UTC_))
    first, second = await asyncio.gather(report(client, world, **DEC), report(client, world, **DEC))
    await refresh_reports({"runtime": client.app.state.runtime})
    for _ in range(2):
        await fresh(await message(world, conversation, "inbound", datetime(2026, 12, 1, 7, tzinfo=UTC_)))
    await asyncio.gather(refresh_reports({"runtime": client.app.state.runtime}), report(client, world, **DEC))
    third = await report(client, world, **DEC)
    # Two at once: one refreshed while the other read what was there (nothing, or all five): never ten.
    assert {first["totals"]["inbound"], second["totals"]["inbound"]} <= {0, 5}
    assert third["totals"]["inbound"] == 7


async def test_after_the_cron_the_report_reads_no_message_but_asks_what_changed(india):
    client, world, conversation = india
    await message(world, conversation, "inbound", datetime(2026, 12, 1, 6, tzinfo=UTC_))
    assert await refresh_reports({"runtime": client.app.state.runtime}) >= 1
    database = client.app.state.runtime.settings.mongodb_database
    with capture(database) as seen:
        figures = await report(client, world, **DEC)
    assert figures["totals"]["inbound"] == 1
    read = {c.command.get(c.name) for c in seen if c.name in ("find", "aggregate", "getMore")}
    assert "report_hours" in read
    # Of the messages, only what changed since the cron (the updated_at index; nothing here).
    asked = [c.command for c in seen if c.command.get(c.name) == "messages"]
    assert asked and all(c["filter"].keys() == {"workspace_id", "updated_at"} for c in asked), asked


async def test_an_erased_customer_leaves_the_figures(india):
    client, world, conversation = india
    await message(world, conversation, "inbound", datetime(2026, 12, 1, 6, tzinfo=UTC_))
    other, _ = await ContactService().upsert(world.workspace_id, wa_id="919800000002")
    theirs, _ = await ConversationService().open_for(world.workspace_id, world.account.id, other.id)
    await message(world, theirs, "inbound", datetime(2026, 12, 1, 6, 30, tzinfo=UTC_))
    assert (await report(client, world, **DEC))["totals"]["inbound"] == 2
    erased = await client.delete(f"/api/v1/contacts/{other.id}", headers=world.auth)
    assert erased.status_code == 200, erased.text
    assert (await report(client, world, **DEC))["totals"]["inbound"] == 1


async def test_a_new_time_zone_recuts_the_days(india):
    client, world, conversation = india
    await message(world, conversation, "inbound", datetime(2026, 12, 1, 18, 45, tzinfo=UTC_))  # 00:15 IST the 2nd
    assert [b["inbound"] for b in (await report(client, world, **DEC))["buckets"]] == [0, 1]
    assert (await client.put("/api/v1/business-hours", headers=world.auth, json=hours_in("UTC"))).status_code == 200
    utc_days = await report(client, world, **DEC)
    assert [(b["start"], b["inbound"]) for b in utc_days["buckets"]] == [("2026-12-01T00:00:00Z", 1),
                                                                          ("2026-12-02T00:00:00Z", 0)]


async def test_the_first_count_of_the_past_goes_newest_week_first_and_carries_on(india):
    client, world, conversation = india
    now = utcnow()
    for weeks in range(5):  # one message a week, for five weeks
        await message(world, conversation, "inbound", now - timedelta(weeks=weeks, hours=1))
    # A report with a budget of no time at all still counts one week: the newest.
    first = await rollups.refresh(world.workspace_id, KOLKATA, budget=0)
    assert not first.complete and 0 < first.progress < 0.5
    assert now - timedelta(weeks=1, hours=2) < first.back_to <= now
    counted = await rollups.hours(world.workspace_id, now - timedelta(weeks=6), now + timedelta(hours=1), None)
    assert counted and all(h["hour"].replace(tzinfo=UTC_) >= first.back_to for h in counted)
    newest_week = sum(h["counts"].get("in", 0) for h in counted)  # ours, and the world's own recent ones
    # The next refresh (the cron's, no budget) finishes; the report then has the four older ones too.
    assert (await rollups.refresh(world.workspace_id, KOLKATA)).complete
    figures = await report(client, world, range="last_90_days")
    assert figures["totals"]["inbound"] == newest_week + 4


async def test_the_api_says_when_its_figures_are_partial_during_a_first_count(india, monkeypatch):
    client, world, conversation = india
    now = utcnow()
    for weeks in range(3):
        await message(world, conversation, "inbound", now - timedelta(weeks=weeks, hours=1))
    from app.domains.reports import hours

    monkeypatch.setattr(hours, "REFRESH_BUDGET", 0)  # the page's time for a first count: here, one week
    progress = 0.0
    for weeks, path in enumerate(("messages", "conversations", "responses", "agents", "templates"), start=1):
        answer = await client.get(f"/api/v1/analytics/{path}", headers=world.auth, params={"range": "last_30_days"})
        assert answer.status_code == 200, answer.text
        counted = answer.json()["counted"]  # each answer counts one more week, newest first
        assert counted["complete"] is False and progress < counted["progress"] < 1, (path, counted)
        progress = counted["progress"]
        complete_from = datetime.fromisoformat(counted["complete_from"].replace("Z", "+00:00"))
        assert now - timedelta(weeks=weeks, hours=2) < complete_from <= now - timedelta(weeks=weeks - 1)
    await refresh_reports({"runtime": client.app.state.runtime})  # the cron finishes the count
    figures = await report(client, world, range="last_30_days")
    assert figures["counted"] == {"complete": True, "complete_from": None, "progress": None}
    assert figures["totals"]["inbound"] >= 3
