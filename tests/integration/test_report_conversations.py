"""Issue 19, the conversations panel: conversations customers started, resolved and reopened, worked out by hand
from what happens through the product's own paths (webhooks, the API, the snooze cron, a broadcast-like send).

Today, in the workspace's zone (UTC):
  Ann writes (webhook)                       -> new 1
  Ben writes (webhook)                       -> new 2
  Ann's is resolved (API)                    -> resolved 1
  Ann writes again (webhook)                 -> reopened 1 (the customer), and a line in her thread
  Ann writes once more (already open)        -> nothing
  Ben's is resolved, then reopened (API)     -> resolved 2, reopened 2
  Ben's is snoozed and the snooze runs out   -> reopened 3
  We start a conversation with Cat (API send of a template to a new number): not new (outreach)
Now: Ann's and Ben's are open; none pending. Yesterday: nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from app.db import utcnow
from app.domains.contacts.models import Contact
from app.domains.conversations.actions import ConversationActions
from app.domains.conversations.models import Conversation
from app.domains.messages.models import Message
from app.domains.templates.models import MessageTemplate
from tests.conftest import sign_in
from tests.support.inbound import deliver, envelope, make_setup, text_message


async def write(runtime, setup, phone: str, text: str) -> Conversation:
    await deliver(runtime, setup, envelope(messages=[text_message(text, from_=phone)]))
    contact = await Contact.find_one(Contact.wa_id == phone)
    return await Conversation.find_one(Conversation.contact_id == contact.id)


@pytest.fixture
async def day(client_factory):
    client = await client_factory(settings={"api_rate_limit_per_minute": 10000})
    runtime = client.app.state.runtime
    setup = await make_setup(runtime)
    auth = setup.auth

    async def status(conversation: Conversation, value: str) -> None:
        answer = await client.patch(f"/api/v1/conversations/{conversation.id}", headers=auth, json={"status": value})
        assert answer.status_code == 200, answer.text

    ann = await write(runtime, setup, "4915100000001", "Hello")
    ben = await write(runtime, setup, "4915100000002", "Hi there")
    await status(ann, "resolved")
    assert (await write(runtime, setup, "4915100000001", "Me again")).id == ann.id
    await write(runtime, setup, "4915100000001", "And once more")
    await status(ben, "resolved")
    await status(ben, "open")
    snoozed = await client.patch(f"/api/v1/conversations/{ben.id}", headers=auth,
                                 json={"snoozed_until": (utcnow() + timedelta(minutes=5)).isoformat()})
    assert snoozed.status_code == 200, snoozed.text
    assert await ConversationActions(runtime.live).wake_snoozed(utcnow() + timedelta(minutes=6)) == 1
    return client, setup, ann, ben


async def report(client, setup, **params) -> dict:
    answer = await client.get("/api/v1/analytics/conversations", headers=setup.auth, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_new_resolved_and_reopened_today_and_open_now(day):
    client, setup, ann, ben = day
    figures = await report(client, setup, range="today")
    assert figures["totals"] == {"new": 2, "resolved": 2, "reopened": 3}
    assert figures["previous"] == {"new": 0, "resolved": 0, "reopened": 0}
    assert figures["open_now"] == 2 and figures["pending_now"] == 0
    hours = await report(client, setup, range="today", interval="hour")
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    busy = [b for b in hours["buckets"] if any(b[k] for k in ("new", "resolved", "reopened"))]
    # All of it happened within the last minute or so: this hour (or, at a turn of the hour, the one before).
    assert {datetime.fromisoformat(b["start"].replace("Z", "+00:00")) for b in busy} <= {now, now - timedelta(hours=1)}
    assert sum(b["reopened"] for b in busy) == 3
    # The customer's return is a line of her thread, saying so.
    lines = await Message.find(Message.conversation_id == ann.id, Message.type == "event").to_list()
    reopened = [m.content for m in lines if m.content.get("kind") == "reopened"]
    assert reopened and reopened[0]["text"] == "The customer wrote again; the conversation is open again"


async def test_a_conversation_we_start_is_not_new(day):
    client, setup, _, _ = day
    await MessageTemplate(workspace_id=setup.account.workspace_id, waba_id=setup.account.waba_id, meta_id="771",
                          name="order_update", language="en_US", category="UTILITY", status="APPROVED",
                          components=[{"type": "BODY", "text": "Your order is ready"}]).insert()
    sent = await client.post("/api/v1/messages", headers=setup.auth, json={
        "to": "4915100000003", "account_id": str(setup.account.id), "type": "template",
        "content": {"name": "order_update", "language": {"code": "en_US"}}})
    assert sent.status_code == 202, sent.text
    assert await Conversation.find(Conversation.workspace_id == setup.account.workspace_id).count() == 3
    assert (await report(client, setup, range="today"))["totals"]["new"] == 2


async def test_the_panel_on_the_page_and_its_csv(day):
    client, setup, _, _ = day
    assert (await sign_in(client, setup.email, setup.password)).status_code in (302, 303)
    page = await client.get("/reports", params={"range": "today"})
    assert page.status_code == 200
    assert 'data-figure="conversations-new">2<' in page.text
    assert 'data-figure="conversations-resolved">2<' in page.text
    assert 'data-figure="conversations-reopened">3<' in page.text
    assert 'data-figure="open-now">2<' in page.text
    exported = await client.get("/reports/conversations.csv", params={"range": "today"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    lines = exported.text.strip().splitlines()
    assert lines[0] == "start,end,new,resolved,reopened,open_at_end,pending_at_end"
    assert lines[1].endswith(",2,2,3,,")  # no backlog count was taken (the worker's, every quarter hour)


async def test_time_to_resolution_and_who_resolved(day):
    client, setup, ann, ben = day
    # Ann's (reopened by her message a moment ago) is resolved by a workflow: no person.
    runtime = client.app.state.runtime
    fresh = await Conversation.get(ann.id)
    await ConversationActions(runtime.live).set_status(fresh, "resolved", by=None)
    figures = await report(client, setup, range="today")
    assert figures["totals"]["resolved"] == 3
    assert figures["resolved_by"] == {"person": 2, "automation": 1}
    # Each was open for seconds (all of it happened in this test): counted from its start or its reopening.
    assert figures["resolution"]["count"] == 3 and figures["resolution"]["p90_seconds"] < 60
    stored = await Message.find(Message.conversation_id == ann.id, Message.type == "event").to_list()
    last = [m.content for m in stored if m.content.get("kind") == "resolved"][-1]
    assert last["by_person"] is False and last["open_seconds"] < 60
    reopened_at = (await Conversation.get(ann.id)).opened_at
    assert reopened_at is not None  # her message reopened it: the clock started again there
