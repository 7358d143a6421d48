"""The analytics summary's first-response time in business time, from hand-made messages.

The workspace's business hours: Europe/Berlin, Monday to Friday 09:00–17:00, Good Friday (3 April 2026)
closed. Berlin is UTC+1 until Sunday 29 March 2026, UTC+2 after. Four customer turns, worked out by hand:

  A  Tue 10 Mar 16:00 CET  -> Wed 11 Mar 10:00 CET     all hours 18 h = 64 800 s    business 2 h = 7 200 s
  B  Fri 27 Mar 16:30 CET  -> Mon 30 Mar 09:30 CEST    all hours 64 h = 230 400 s   business 1 h = 3 600 s
     (across the weekend and the spring-forward night)
  C  Thu 2 Apr 16:45 CEST  -> Mon 6 Apr 09:15 CEST     all hours 88.5 h = 318 600 s business 30 min = 1 800 s
     (across Good Friday and the weekend)
  D  Wed 11 Mar 11:00 CET, again 11:05, an automatic reply at 11:00:05 (not an answer)
                           -> answered 11:20 CET       all hours 20 min = 1 200 s   business 1 200 s

All hours: average (64 800 + 230 400 + 318 600 + 1 200) / 4 = 153 750, median (64 800 + 230 400) / 2 = 147 600.
Business:  average (7 200 + 3 600 + 1 800 + 1 200) / 4 = 3 450,        median (1 800 + 3 600) / 2 = 2 700.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from app.domains.contacts.services import ContactService
from app.domains.conversations.services import ConversationService
from tests.support.api_world import World, build_world, message

BERLIN = ZoneInfo("Europe/Berlin")
RANGE = {"from": "2026-03-01T00:00:00Z", "to": "2026-04-30T00:00:00Z"}
HOURS = {"enabled": True, "time_zone": "Europe/Berlin",
         "weekly": {d: [{"start": "09:00", "end": "17:00"}] for d in ("mon", "tue", "wed", "thu", "fri")}
         | {"sat": [], "sun": []},
         "holidays": [{"date": "2026-04-03", "name": "Good Friday"}]}


def berlin(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=BERLIN)


async def turn(world: World, phone: str, asked: list[datetime], answered: datetime, *,
               automatic: datetime | None = None) -> None:
    contact, _ = await ContactService().upsert(world.workspace_id, wa_id=phone)
    conversation, _ = await ConversationService().open_for(world.workspace_id, world.account.id, contact.id)
    for at in asked:
        await message(world, conversation, "inbound", at)
    if automatic is not None:
        await message(world, conversation, "outbound", automatic, via="automation", text="We're on it")
    await message(world, conversation, "outbound", answered, text="Here's your answer")


@pytest.fixture
async def shop(client_factory):
    client = await client_factory(settings={"api_rate_limit_per_minute": 10000})
    world = await build_world(client.app.state.runtime)
    await turn(world, "4915200000001", [berlin(2026, 3, 10, 16)], berlin(2026, 3, 11, 10))
    await turn(world, "4915200000002", [berlin(2026, 3, 27, 16, 30)], berlin(2026, 3, 30, 9, 30))
    await turn(world, "4915200000003", [berlin(2026, 4, 2, 16, 45)], berlin(2026, 4, 6, 9, 15))
    await turn(world, "4915200000004", [berlin(2026, 3, 11, 11), berlin(2026, 3, 11, 11, 5)],
               berlin(2026, 3, 11, 11, 20), automatic=berlin(2026, 3, 11, 11, 0, 5))
    return client, world


async def summary(client, world: World) -> dict:
    answer = await client.get("/api/v1/analytics/summary", headers=world.auth, params=RANGE)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_first_response_in_business_time_beside_all_hours(shop):
    client, world = shop
    # Business hours never saved: every second counts, so both figures agree.
    before = await summary(client, world)
    assert before["first_response"] == {"count": 4, "average_seconds": 153750.0, "median_seconds": 147600.0}
    assert before["first_response_business"] == {**before["first_response"], "business_hours": False}

    saved = await client.put("/api/v1/business-hours", headers=world.auth, json=HOURS)
    assert saved.status_code == 200, saved.text
    after = await summary(client, world)
    assert after["first_response"] == before["first_response"]
    assert after["first_response_business"] == {"count": 4, "average_seconds": 3450.0, "median_seconds": 2700.0,
                                                "business_hours": True}
    # An agent sees the figures of the numbers they see, in the same business time.
    agent = (await client.get("/api/v1/analytics/summary", headers=world.agent_auth, params=RANGE)).json()
    assert agent["first_response_business"] == after["first_response_business"]

    # Switched off: every second counts again.
    off = await client.put("/api/v1/business-hours", headers=world.auth, json={"enabled": False})
    assert off.status_code == 200, off.text
    assert (await summary(client, world))["first_response_business"] == {**before["first_response"],
                                                                          "business_hours": False}


async def test_the_answer_shape_is_documented(shop):
    client, _ = shop
    schema = (await client.get("/schema/openapi.json")).json()["components"]["schemas"]
    summary_shape = schema["AnalyticsSummary"]["properties"]
    assert "first_response_business" in summary_shape and "business time" in str(summary_shape)
    assert "business_hours" in schema["BusinessFirstResponse"]["properties"]


async def test_local_days_of_the_workspace_instead_of_instants(shop):
    """10 and 11 March in Berlin (UTC+1): from 9 March 23:00 UTC to 11 March 23:00 UTC; turns A and D fall in it."""
    client, world = shop
    assert (await client.put("/api/v1/business-hours", headers=world.auth, json=HOURS)).status_code == 200
    answer = await client.get("/api/v1/analytics/summary", headers=world.auth,
                              params={"start_date": "2026-03-10", "end_date": "2026-03-11"})
    assert answer.status_code == 200, answer.text
    days = answer.json()
    assert (days["start"], days["end"]) == ("2026-03-09T23:00:00Z", "2026-03-11T23:00:00Z")
    assert days["period"] == {"first_day": "2026-03-10", "last_day": "2026-03-11", "time_zone": "Europe/Berlin",
                              "preset": "custom", "label": "10 Mar 2026 – 11 Mar 2026"}
    assert days["first_response"] == {"count": 2, "average_seconds": 33000.0, "median_seconds": 33000.0}
    preset = await client.get("/api/v1/analytics/summary", headers=world.auth, params={"range": "last_7_days"})
    assert preset.status_code == 200 and preset.json()["period"]["label"] == "Last 7 days"

    for params, field in (({"start_date": "2026-03-10"}, "to"), ({"range": "next_year"}, "range"),
                          ({"range": "today", **RANGE}, "from"), ({"start_date": "2026-03-10", "end_date": "2026-03-01"},
                                                                   "to"),
                          ({"start_date": "2025-01-01", "end_date": "2026-03-01"}, "from")):
        refused = await client.get("/api/v1/analytics/summary", headers=world.auth, params=params)
        assert refused.status_code == 400, (params, refused.text)
        assert refused.json()["error_code"] == "PERIOD_INVALID" and field in refused.json()["details"], refused.json()
    not_a_date = await client.get("/api/v1/analytics/summary", headers=world.auth, params={"start_date": "March"})
    assert not_a_date.status_code == 400
