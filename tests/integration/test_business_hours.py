"""Business hours end to end: a customer's webhook, the real worker job, the one send path, Meta's sandbox.

Only Meta is simulated. "Now" is frozen through the service's clock (the worker runs in the app's
process and shares its Runtime); the 24-hour window and everything else run on the real clock.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from zoneinfo import ZoneInfo

from arq.jobs import Job, JobStatus

from app.domains.business_hours.models import BusinessHours
from app.domains.messages.models import Message
from app.queue import DEFAULT_QUEUE, open_pool
from tests.conftest import csrf_from, sign_in
from tests.integration.outbound_env import outbound, sandbox_server, wait_for  # noqa: F401 (fixtures)
from tests.support.command_capture import capture
from tests.support.inbound import envelope, new_wamid, signed, text_message

BERLIN = ZoneInfo("Europe/Berlin")
AWAY = "Thanks for writing! We're closed now and answer from 09:00."
GREETING = "Hi, welcome to Shop!"
NINE_TO_FIVE = {d: [{"start": "09:00", "end": "17:00"}] for d in ("mon", "tue", "wed", "thu", "fri")} | {
    "sat": [], "sun": []}
_phones = itertools.count(4915100000001)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


async def _world(outbound, **hours):  # noqa: F811
    env = await outbound()
    account = await env.add_number()
    clock = Clock(datetime(2026, 12, 1, 22, 0, tzinfo=BERLIN))  # a Tuesday night
    env.runtime.business_hours.clock = clock
    if hours:
        answer = await env.client.put("/api/v1/business-hours", headers=env.headers, json=hours)
        assert answer.status_code == 200, answer.text
    return env, account, clock


async def _customer_writes(env, account, phone: str, text: str = "Hello?", **extra) -> str:
    """A customer's message through our webhook endpoint; returns what the automatic-reply job did."""
    wamid = new_wamid()
    body, headers = signed(envelope(messages=[text_message(text, wamid=wamid, from_=phone, **extra)],
                                    phone_number_id=account.phone_number_id, waba_id=account.waba_id), "secret")
    answer = await env.client.post(f"/webhooks/whatsapp/{account.webhook_key}", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    message = await wait_for(lambda: Message.find_one(Message.wamid == wamid))
    pool = await open_pool(env.runtime.settings.redis_url)
    try:
        job = Job(f"auto-reply:{message.id}", pool, _queue_name=DEFAULT_QUEUE)
        if await job.status() == JobStatus.not_found:
            return "no job"
        return await job.result(timeout=30, poll_delay=0.05)
    finally:
        await pool.aclose()


async def _texts_to(env, account, phone: str) -> list[str]:
    return [s["body"]["text"]["body"] for s in await env.sent(account) if s["to"] == f"+{phone}" and s["type"] == "text"]


async def test_away_message_once_per_closed_night_and_never_while_open(outbound):  # noqa: F811
    env, account, clock = await _world(outbound, enabled=True, time_zone="Europe/Berlin", weekly=NINE_TO_FIVE,
                                       away_message=AWAY)
    phone = str(next(_phones))

    assert await _customer_writes(env, account, phone) == "away"  # Tuesday 22:00
    assert await wait_for(lambda: _texts_to(env, account, phone)) == [AWAY]
    stored = await Message.find_one(Message.direction == "outbound", Message.via == "automation")
    assert stored.content == {"body": AWAY} and stored.sent_by is None
    # An automatic reply is not a first response: the customer is still waiting for a person.
    summary = await env.client.get("/api/v1/analytics/summary", headers=env.headers)
    assert summary.json()["first_response"]["count"] == 0 and summary.json()["messages_out"] == 1

    clock.at = datetime(2026, 12, 2, 6, 30, tzinfo=BERLIN)  # the same night, before opening
    assert await _customer_writes(env, account, phone, "Anyone?") == "nothing to send"

    clock.at = datetime(2026, 12, 2, 12, 0, tzinfo=BERLIN)  # Wednesday noon: open
    assert await _customer_writes(env, account, phone, "Hello again") == "nothing to send"

    clock.at = datetime(2026, 12, 2, 22, 0, tzinfo=BERLIN)  # the next night
    assert await _customer_writes(env, account, phone, "Still there?") == "away"
    assert await wait_for(lambda: _async_len(_texts_to(env, account, phone), 2)) == [AWAY, AWAY]

    # Another customer the same night gets their own.
    other = str(next(_phones))
    assert await _customer_writes(env, account, other) == "away"
    assert await wait_for(lambda: _texts_to(env, account, other)) == [AWAY]
    # A STOP is consent, not a conversation: no reply to it.
    clock.at = datetime(2026, 12, 3, 22, 0, tzinfo=BERLIN)
    assert await _customer_writes(env, account, phone, "STOP") == "not answered: a STOP / START keyword"


async def _async_len(texts, n: int):
    found = await texts
    return found if len(found) >= n else None


async def test_inside_hours_nothing_and_a_holiday_is_closed(outbound):  # noqa: F811
    env, account, clock = await _world(outbound, enabled=True, time_zone="Europe/Berlin", weekly=NINE_TO_FIVE,
                                       holidays=[{"date": "2026-12-24", "name": "Christmas Eve"}], away_message=AWAY)
    phone = str(next(_phones))
    clock.at = datetime(2026, 12, 23, 11, 0, tzinfo=BERLIN)  # a Wednesday morning
    assert await _customer_writes(env, account, phone) == "nothing to send"
    clock.at = datetime(2026, 12, 24, 11, 0, tzinfo=BERLIN)  # Thursday, the holiday
    assert await _customer_writes(env, account, phone, "Open today?") == "away"
    assert await wait_for(lambda: _texts_to(env, account, phone)) == [AWAY]


async def test_greeting_once_to_a_new_conversation_then_the_away_message(outbound):  # noqa: F811
    env, account, clock = await _world(outbound, enabled=True, time_zone="Europe/Berlin", weekly=NINE_TO_FIVE,
                                       away_message=AWAY, greeting_message=GREETING)
    phone = str(next(_phones))
    assert await _customer_writes(env, account, phone) == "greeting + away"
    assert await wait_for(lambda: _async_len(_texts_to(env, account, phone), 2)) == [GREETING, AWAY]

    # Open hours, same conversation: no second greeting.
    clock.at = datetime(2026, 12, 2, 10, 0, tzinfo=BERLIN)
    assert await _customer_writes(env, account, phone, "Hi again") == "nothing to send"
    # A new customer while open: the greeting alone (it does not depend on the hours).
    newcomer = str(next(_phones))
    assert await _customer_writes(env, account, newcomer) == "greeting"
    assert await wait_for(lambda: _texts_to(env, account, newcomer)) == [GREETING]


async def test_greeting_without_business_hours_and_nothing_at_all_when_off(outbound):  # noqa: F811
    env, account, clock = await _world(outbound)
    phone = str(next(_phones))
    # Never configured: the webhook path queues no job at all.
    assert await _customer_writes(env, account, phone) == "no job"
    answer = await env.client.put("/api/v1/business-hours", headers=env.headers,
                                  json={"enabled": False, "away_message": AWAY, "greeting_message": GREETING})
    assert answer.status_code == 200
    newcomer = str(next(_phones))
    assert await _customer_writes(env, account, newcomer) == "greeting"  # at night, but hours are off
    assert await wait_for(lambda: _texts_to(env, account, newcomer)) == [GREETING]
    # Everything off again: no job (the cached answer was dropped by the change).
    answer = await env.client.put("/api/v1/business-hours", headers=env.headers, json={"greeting_message": ""})
    assert answer.status_code == 200
    assert await _customer_writes(env, account, str(next(_phones))) == "no job"
    assert await _texts_to(env, account, phone) == []


async def test_a_group_gets_nothing_and_a_second_run_of_the_job_sends_nothing(outbound):  # noqa: F811
    env, account, clock = await _world(outbound, enabled=True, time_zone="Europe/Berlin", weekly=NINE_TO_FIVE,
                                       away_message=AWAY, greeting_message=GREETING)
    member = str(next(_phones))
    group = "Y2FwaV9ncm91cDoxODA1NTU1MDE3MjoxMjAzNjMyMjI3NzE5NjMwNjcZD"
    assert (await _customer_writes(env, account, member, "hello group", group_id=group)).startswith("not answered")
    assert await _texts_to(env, account, member) == []

    phone = str(next(_phones))
    assert await _customer_writes(env, account, phone) == "greeting + away"
    inbound = await Message.find(Message.direction == "inbound").sort("-_id").first_or_none()
    pool = await open_pool(env.runtime.settings.redis_url)
    try:  # the same message's job again (a redelivery, a second worker): the replies exist, nothing is sent
        job = await pool.enqueue_job("answer_customer", str(inbound.workspace_id), str(inbound.id), _job_id="again")
        assert await job.result(timeout=30, poll_delay=0.05) == "nothing to send"
    finally:
        await pool.aclose()
    assert await wait_for(lambda: _async_len(_texts_to(env, account, phone), 2)) == [GREETING, AWAY]
    assert await Message.find(Message.via == "automation").count() == 2


async def test_api_shows_defaults_saves_merges_and_refuses_bad_input(outbound):  # noqa: F811
    env, account, clock = await _world(outbound)
    client, headers = env.client, env.headers
    shown = (await client.get("/api/v1/business-hours", headers=headers)).json()
    assert shown["enabled"] is False and shown["updated_at"] is None and shown["time_zone"] == "UTC"
    assert shown["weekly"]["mon"] == [{"start": "09:00", "end": "17:00"}] and shown["weekly"]["sun"] == []

    saved = await client.put("/api/v1/business-hours", headers=headers, json={
        "enabled": True, "time_zone": "Europe/Berlin", "weekly": {"sat": [{"start": "10:00", "end": "14:00"}]},
        "holidays": [{"date": "2026-12-25", "name": "Christmas"}], "away_message": AWAY})
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert body["weekly"]["sat"] == [{"start": "10:00", "end": "14:00"}]
    assert body["weekly"]["mon"] == [{"start": "09:00", "end": "17:00"}]  # days not named are kept
    assert body["open_now"] is False and body["opens"] == "Wed 09:00"  # Tuesday 22:00 in Berlin
    assert (await client.get("/api/v1/business-hours", headers=headers)).json()["holidays"] == [
        {"date": "2026-12-25", "name": "Christmas"}]

    for bad, field in ((({"time_zone": "Mars/Base"}), "time_zone"),
                       ({"weekly": {"mon": [{"start": "18:00", "end": "09:00"}]}}, "weekly.mon"),
                       ({"weekly": {"tue": [{"start": "09:00", "end": "13:00"}, {"start": "12:00", "end": "18:00"}]}},
                        "weekly.tue"),
                       ({"holidays": [{"date": "25/12/2026"}]}, "holidays.0")):
        answer = await client.put("/api/v1/business-hours", headers=headers, json=bad)
        assert answer.status_code == 422, (bad, answer.text)
        error = answer.json()
        assert error["error_code"] == "BUSINESS_HOURS_INVALID" and field in error["details"], error
        assert set(error) == {"success", "error", "error_code", "details"}
    for bad in ({}, {"weekly": {"mon": [{"start": 9}]}}, {"colour": "red"}, {"enabled": "maybe"}):
        answer = await client.put("/api/v1/business-hours", headers=headers, json=bad)
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.json()["error_code"] == "VALIDATION_ERROR"
    # Nothing of the refused changes was saved.
    stored = await BusinessHours.find_one({})
    assert stored.time_zone == "Europe/Berlin" and stored.weekly["mon"][0].start == "09:00"

    # Admins only: an agent's key is refused, and so is a signed-out visitor of the page.
    people = env.runtime.people
    agent = await people.create_user(env.workspace_id, "agent@example.com", "an agent password", "agent")
    _, agent_key = await people.create_api_key(env.workspace_id, "agent", "agent", agent.id)
    for method, json in (("GET", None), ("PUT", {"enabled": False})):
        refused = await client.request(method, "/api/v1/business-hours", json=json,
                                       headers={"Authorization": f"Bearer {agent_key}"})
        assert refused.status_code == 403 and refused.json()["error_code"] == "ADMIN_REQUIRED"
    page = await client.get("/admin/business-hours", follow_redirects=False)
    assert page.status_code in (302, 303) and page.headers["location"].startswith("/login")


async def test_admin_page_saves_shows_field_errors_and_the_inbox_says_closed(outbound):  # noqa: F811
    env, account, clock = await _world(outbound)
    client = env.client
    await sign_in(client, "admin@example.com", "a long test password")
    page = await client.get("/admin/business-hours")
    assert page.status_code == 200 and 'name="hours_mon" type="text" value="09:00-17:00"' in page.text
    form = {"_csrf_token": csrf_from(page.text), "enabled": "on", "time_zone": "Europe/Berlin",
            "hours_mon": "09:00-12:00, 13:00-17:00", "hours_tue": "09:00-17:00", "hours_wed": "09:00-17:00",
            "hours_thu": "09:00-17:00", "hours_fri": "09:00-15:00", "hours_sat": "", "hours_sun": "",
            "holidays": "2026-12-25 Christmas", "away_message": AWAY, "greeting_message": ""}

    bad = await client.post("/admin/business-hours", data={**form, "time_zone": "Berlin", "hours_wed": "17:00-09:00",
                                                            "holidays": "2026-12-25 Christmas\nnext friday"})
    assert bad.status_code == 422
    assert "is not an IANA time zone" in bad.text and "must end after it starts" in bad.text
    assert "Line 2:" in bad.text and 'value="17:00-09:00"' in bad.text  # what was typed is kept
    assert await BusinessHours.find_one({}) is None

    fragment = await client.post("/admin/business-hours", data=form,
                                 headers={"HX-Request": "true", "X-CSRFToken": form["_csrf_token"]})
    assert fragment.status_code == 200 and "Saved." in fragment.text and "<html" not in fragment.text
    stored = await BusinessHours.find_one({})
    assert stored.enabled and [i.end for i in stored.weekly["mon"]] == ["12:00", "17:00"]
    assert stored.holidays[0].name == "Christmas" and stored.away_message == AWAY
    assert "Closed now (opens Wed 09:00)" in fragment.text

    inbox = await client.get("/inbox")
    assert "Outside business hours (opens Wed 09:00)" in inbox.text
    clock.at = datetime(2026, 12, 2, 10, 0, tzinfo=BERLIN)
    assert "Outside business hours" not in (await client.get("/inbox")).text
    assert 'href="/admin/business-hours"' in inbox.text


async def test_the_webhook_path_reads_the_settings_once_then_only_its_cached_answer(outbound):  # noqa: F811
    """Replies off: a customer's message costs the hook no database operation once its answer is cached
    (the driver's own command log), and queues no job; an admin's save is heard, and read once again."""
    env, account, _ = await _world(outbound)
    database = env.runtime.settings.mongodb_database

    def settings_reads(seen) -> int:
        return sum(1 for c in seen if c.command.get(c.name) == BusinessHours.Settings.name)

    with capture(database) as seen:
        for _ in range(4):
            assert await _customer_writes(env, account, str(next(_phones))) == "no job"
    assert seen and settings_reads(seen) <= 1  # the first message may fill this process's cache
    answer = await env.client.put("/api/v1/business-hours", headers=env.headers, json={"time_zone": "Europe/Berlin"})
    assert answer.status_code == 200, answer.text  # saved, still no reply configured
    with capture(database) as seen:
        for _ in range(3):
            assert await _customer_writes(env, account, str(next(_phones))) == "no job"
    assert settings_reads(seen) == 1  # the change was heard: read once, then cached again

