"""Issue 19, the responses panel: how long customers waited for a person, worked out by hand.

Yesterday (UTC workspace), through webhooks: customers' messages, and answers typed in the WhatsApp Business app
on the same number (its echoes carry Meta's timestamps, so every wait is known to the second):

  Ann  10:00:00 writes, 10:01:00 writes again (the clock does not restart), 10:05:00 answered   first 300
       10:06:00 answered again (nobody was waiting: not a response)
       10:20:00 writes, 10:22:00 answered                                                      reply 120
  Ben  11:00:00 writes, 11:10:00 answered                                                      first 600
       resolved by an agent; 12:00:00 writes (reopens it), 12:01:30 answered                   first  90

First responses [300, 600, 90]: median 300, 90th percentile (nearest rank) 600. Every answer [300, 120, 600, 90]:
median (120 + 300) / 2 = 210, 90th percentile 600. Per hour: 10:00 first [300] and answers [300, 120]; 11:00
[600]; 12:00 [90].
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.db import utcnow
from app.domains.contacts.models import Contact
from app.domains.conversations.models import Conversation
from app.domains.messages.models import Message
from tests.conftest import sign_in
from tests.support.inbound import (
    DISPLAY,
    PHONE_NUMBER_ID,
    WABA_ID,
    deliver,
    envelope,
    make_setup,
    new_wamid,
    text_message,
)
from workers.tasks import keep_inbox_minutes


def echo(to: str, body: str, at: datetime) -> dict:
    """What Meta sends when someone answers in the WhatsApp Business app on the same number."""
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": DISPLAY, "phone_number_id": PHONE_NUMBER_ID},
             "message_echoes": [{"from": DISPLAY, "to": to, "id": new_wamid(), "timestamp": str(int(at.timestamp())),
                                 "type": "text", "text": {"body": body}}]}
    return {"object": "whatsapp_business_account",
            "entry": [{"id": WABA_ID, "changes": [{"value": value, "field": "smb_message_echoes"}]}]}


async def writes(runtime, setup, phone: str, at: datetime, text: str = "Hello") -> Conversation:
    await deliver(runtime, setup, envelope(messages=[text_message(text, from_=phone, timestamp=int(at.timestamp()))]))
    contact = await Contact.find_one(Contact.wa_id == phone)
    return await Conversation.find_one(Conversation.contact_id == contact.id)


async def answered(runtime, setup, phone: str, at: datetime) -> None:
    await deliver(runtime, setup, echo(phone, "Thanks, on it", at))


@pytest.fixture
async def shop(client_factory):
    client = await client_factory(settings={"api_rate_limit_per_minute": 10000})
    setup = await make_setup(client.app.state.runtime)
    return client, setup, client.app.state.runtime


async def report(client, setup, **params) -> dict:
    answer = await client.get("/api/v1/analytics/responses", headers=setup.auth, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def ann_and_ben(client, setup, runtime) -> None:
    """The day of the module's docstring, yesterday."""
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)

    def at(h: int, m: int, s: int = 0) -> datetime:
        return day + timedelta(hours=h, minutes=m, seconds=s)

    ann, ben = "4915100000011", "4915100000012"
    await writes(runtime, setup, ann, at(10, 0))
    await writes(runtime, setup, ann, at(10, 1))
    await answered(runtime, setup, ann, at(10, 5))
    await answered(runtime, setup, ann, at(10, 6))
    await writes(runtime, setup, ann, at(10, 20))
    await answered(runtime, setup, ann, at(10, 22))
    conversation = await writes(runtime, setup, ben, at(11, 0))
    await answered(runtime, setup, ben, at(11, 10))
    resolved = await client.patch(f"/api/v1/conversations/{conversation.id}", headers=setup.auth,
                                  json={"status": "resolved"})
    assert resolved.status_code == 200
    await writes(runtime, setup, ben, at(12, 0))
    await answered(runtime, setup, ben, at(12, 1, 30))


async def test_waits_worked_out_by_hand(shop):
    client, setup, runtime = shop
    await ann_and_ben(client, setup, runtime)

    figures = await report(client, setup, range="yesterday", interval="hour")
    first = {"count": 3, "median_seconds": 300.0, "p90_seconds": 600.0}
    every = {"count": 4, "median_seconds": 210.0, "p90_seconds": 600.0}
    # Business hours off: business time is every second, so it agrees.
    assert figures["totals"] == {"first": first, "reply": every, "first_business": first, "reply_business": every}
    assert figures["previous"]["reply"] == {"count": 0, "median_seconds": None, "p90_seconds": None}
    # 4 answers over 3 conversations answered (Ann's, Ben's, Ben's reopened one).
    assert figures["answers_per_conversation"] == 1.33 and figures["previous_answers_per_conversation"] is None
    hours = {b["start"][11:16]: (b["first"]["median_seconds"], b["reply"]["count"]) for b in figures["buckets"]
             if b["reply"]["count"]}
    assert hours == {"10:00": (300.0, 2), "11:00": (600.0, 1), "12:00": (90.0, 1)}

    # The page says it in words, and the CSV has each bucket's seconds.
    assert (await sign_in(client, setup.email, setup.password)).status_code in (302, 303)
    page = await client.get("/reports", params={"range": "yesterday"})
    assert 'data-figure="first-median">5 min<' in page.text
    assert 'data-figure="reply-median">3 min 30 s<' in page.text
    assert 'data-figure="answers-per-conversation">1.3<' in page.text
    assert "90 % within 10 min; was –" in page.text
    exported = await client.get("/reports/responses.csv", params={"range": "yesterday"})
    lines = exported.text.strip().splitlines()
    assert lines[0] == ("start,end,first_answers,first_median_seconds,first_p90_seconds,reply_answers,"
                        "reply_median_seconds,reply_p90_seconds,first_business_answers,first_business_median_seconds,"
                        "first_business_p90_seconds,reply_business_answers,reply_business_median_seconds,"
                        "reply_business_p90_seconds")
    assert lines[1].split(",")[2:] == ["3", "300.0", "600.0", "4", "210.0", "600.0"] * 2


async def test_business_time_counts_only_the_minutes_the_business_was_open(shop):
    """Open every day 10:03 to 11:05 (UTC). Business time of each wait of the docstring's day:

      Ann  10:00 -> 10:05   first  120 (from 10:03)      10:20 -> 10:22  reply 120
      Ben  11:00 -> 11:10   first  300 (until 11:05)     12:00 -> 12:01:30  first 0 (closed)

    First [0, 120, 300]: median 120, 90th percentile 300. Every answer [0, 120, 120, 300]: median 120, p90 300.
    """
    client, setup, runtime = shop
    hours = {"enabled": True, "time_zone": "UTC",
             "weekly": {d: [{"start": "10:03", "end": "11:05"}] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}
    assert (await client.put("/api/v1/business-hours", headers=setup.auth, json=hours)).status_code == 200
    await ann_and_ben(client, setup, runtime)
    figures = await report(client, setup, range="yesterday")
    assert figures["totals"]["first"] == {"count": 3, "median_seconds": 300.0, "p90_seconds": 600.0}  # all hours
    assert figures["totals"]["first_business"] == {"count": 3, "median_seconds": 120.0, "p90_seconds": 300.0}
    assert figures["totals"]["reply_business"] == {"count": 4, "median_seconds": 120.0, "p90_seconds": 300.0}
    assert (await sign_in(client, setup.email, setup.password)).status_code in (302, 303)
    page = await client.get("/reports", params={"range": "yesterday"})
    assert 'data-figure="first_business-median">2 min<' in page.text


async def test_a_workflow_does_not_answer_an_agent_does_and_a_reaction_does_not(shop):
    client, setup, runtime = shop
    now = utcnow()
    cat = await writes(runtime, setup, "4915100000013", now - timedelta(seconds=120))
    # A workflow's message (as a business-hours reply would be) leaves the customer waiting ...
    await runtime.outbox.send(setup.account.workspace_id, cat, _text("We got your message"), via="automation")
    # ... until a person answers in the Business app, 60 s after she wrote.
    await answered(runtime, setup, "4915100000013", now - timedelta(seconds=60))
    dan = await writes(runtime, setup, "4915100000014", now - timedelta(seconds=30))
    theirs = await Message.find_one(Message.conversation_id == dan.id, Message.direction == "inbound")
    reacted = await client.post(f"/api/v1/messages/{theirs.id}/reactions", headers=setup.auth, json={"emoji": "👍"})
    assert reacted.status_code in (200, 201, 202), reacted.text
    sent = await client.post(f"/api/v1/conversations/{dan.id}/messages", headers=setup.auth,
                             json={"type": "text", "content": {"body": "Hello Dan"}})
    assert sent.status_code == 202, sent.text
    figures = await report(client, setup, range="today")
    assert figures["totals"]["first"]["count"] == 2
    waits = sorted([figures["totals"]["first"]["median_seconds"], figures["totals"]["first"]["p90_seconds"]])
    assert waits[1] == 60.0  # Cat's: the workflow's message did not count
    assert 30 <= 2 * figures["totals"]["first"]["median_seconds"] - 60 <= 45  # Dan's: about 30 s, by the API


def _text(body: str):
    from app.domains.outbox.service import Draft

    return Draft("text", {"body": body})


async def test_the_agents_leaderboard_and_an_agent_sees_their_own_row(shop):
    client, setup, runtime = shop
    ws = setup.account.workspace_id
    ann = await runtime.people.create_user(ws, "ann@example.com", "agent password", "agent", "Ann Agent")
    _, ann_key = await runtime.people.create_api_key(ws, "ann's", "agent", ann.id)
    as_ann = {"Authorization": f"Bearer {ann_key}"}
    now = utcnow()
    eve = await writes(runtime, setup, "4915100000021", now - timedelta(seconds=100))
    finn = await writes(runtime, setup, "4915100000022", now - timedelta(seconds=50))
    for conversation, headers in ((eve, as_ann), (finn, setup.auth)):
        sent = await client.post(f"/api/v1/conversations/{conversation.id}/messages", headers=headers,
                                 json={"type": "text", "content": {"body": "Hello"}})
        assert sent.status_code == 202, sent.text
    assert (await client.patch(f"/api/v1/conversations/{eve.id}", headers=as_ann,
                               json={"status": "resolved"})).status_code == 200

    board = (await client.get("/api/v1/analytics/agents", headers=setup.auth, params={"range": "today"})).json()
    rows = {r["name"]: r for r in board["agents"]}
    assert [r["name"] for r in board["agents"]][0] == "Ann Agent"  # most resolved first
    assert rows["Ann Agent"]["messages_sent"] == 1 and rows["Ann Agent"]["resolved"] == 1
    assert rows["Ann Agent"]["answers"]["count"] == 1 and 100 <= rows["Ann Agent"]["answers"]["median_seconds"] < 130
    assert rows["Ann Agent"]["resolution"]["count"] == 1
    owner = next(r for name, r in rows.items() if name != "Ann Agent" and r["messages_sent"])
    assert owner["answers"]["count"] == 1 and owner["resolved"] == 0
    # Ann, an agent, sees her own row only.
    hers = (await client.get("/api/v1/analytics/agents", headers=as_ann, params={"range": "today"})).json()
    assert [r["name"] for r in hers["agents"]] == ["Ann Agent"]
    # The page's leaderboard: a row per person, with a bar beside the figures.
    assert (await sign_in(client, setup.email, setup.password)).status_code in (302, 303)
    page = await client.get("/reports", params={"range": "today"})
    table = page.text.split('id="r-agents-table"', 1)[1].split("</table>", 1)[0]
    assert "Ann Agent" in table and '<meter class="bar" min="0" max="1" value="1"' in table


async def test_time_in_the_inbox_counts_each_minute_with_a_tab_open_once(shop):
    """Two tabs beating in the same minute count it once; the worker keeps the minutes; an agent sees theirs."""
    client, setup, runtime = shop
    ws = setup.account.workspace_id
    zoe = await runtime.people.create_user(ws, "zoe@example.com", "agent password", "agent", "Zoe Agent")
    _, zoe_key = await runtime.people.create_api_key(ws, "zoe's", "agent", zoe.id)
    for _ in range(3):  # her tabs' heartbeats, all within this minute (or at worst two, at a turn of the minute)
        await runtime.presence.beat(ws, zoe.id)
    assert await keep_inbox_minutes({"runtime": runtime}) >= 1
    assert await keep_inbox_minutes({"runtime": runtime}) >= 1  # kept again: still once
    hers = (await client.get("/api/v1/analytics/agents", headers={"Authorization": f"Bearer {zoe_key}"},
                             params={"range": "today"})).json()["agents"]
    assert [r["name"] for r in hers] == ["Zoe Agent"] and hers[0]["inbox_seconds"] in (60, 120)
    board = (await client.get("/api/v1/analytics/agents", headers=setup.auth, params={"range": "today"})).json()
    assert all(r["inbox_seconds"] == 0 for r in board["agents"] if r["name"] != "Zoe Agent")
    yesterday = (await client.get("/api/v1/analytics/agents", headers=setup.auth,
                                  params={"range": "yesterday"})).json()["agents"]
    assert all(r["inbox_seconds"] == 0 for r in yesterday)
    assert (await sign_in(client, setup.email, setup.password)).status_code in (302, 303)
    page = await client.get("/reports", params={"range": "today"})
    assert 'data-figure="inbox-time">1 min<' in page.text or 'data-figure="inbox-time">2 min<' in page.text
