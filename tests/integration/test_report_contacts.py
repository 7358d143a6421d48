"""Issue 19, the contacts panel, worked out by hand. Today, in a UTC workspace:

  Ann writes (new contact), sends STOP (opt-out by keyword), then START (opt-in by keyword)
  Ben writes (new contact); his conversation is resolved; he writes again (returning)
  Cat is created through the API (new contact), then opted out by the API
  Dan writes (new contact) and is erased: he counts no more

New 3 (Ann, Ben, Cat), returning 1 (Ben), opted out 2 (keyword 1, api 1), opted in 1 (keyword).
"""

from __future__ import annotations

import pytest

from app.domains.contacts.models import Contact
from app.domains.conversations.models import Conversation
from tests.conftest import sign_in
from tests.support.inbound import deliver, envelope, make_setup, text_message

ANN, BEN, DAN = "4915100000031", "4915100000032", "4915100000034"


@pytest.fixture
async def shop(client_factory):
    client = await client_factory(settings={"api_rate_limit_per_minute": 10000})
    setup = await make_setup(client.app.state.runtime)
    return client, setup, client.app.state.runtime


async def writes(runtime, setup, phone: str, text: str = "Hello") -> None:
    await deliver(runtime, setup, envelope(messages=[text_message(text, from_=phone)]))


async def report(client, headers, **params):
    return await client.get("/api/v1/analytics/contacts", headers=headers, params=params)


async def test_new_returning_and_consent_worked_out_by_hand(shop):
    client, setup, runtime = shop
    before = (await report(client, setup.auth, range="today")).json()["totals"]
    await writes(runtime, setup, ANN)
    await writes(runtime, setup, ANN, "STOP")
    await writes(runtime, setup, ANN, "START")
    await writes(runtime, setup, BEN)
    ben = await Contact.find_one(Contact.wa_id == BEN)
    conversation = await Conversation.find_one(Conversation.contact_id == ben.id)
    assert (await client.patch(f"/api/v1/conversations/{conversation.id}", headers=setup.auth,
                               json={"status": "resolved"})).status_code == 200
    await writes(runtime, setup, BEN, "Me again")
    cat = await client.post("/api/v1/contacts", headers=setup.auth, json={"phone": "+4915100000033", "name": "Cat"})
    assert cat.status_code == 201, cat.text
    assert (await client.patch(f"/api/v1/contacts/{cat.json()['id']}", headers=setup.auth,
                               json={"opted_out_marketing": True})).status_code == 200
    await writes(runtime, setup, DAN)
    dan = await Contact.find_one(Contact.wa_id == DAN)
    assert (await report(client, setup.auth, range="today")).json()["totals"]["new"] == before["new"] + 4
    assert (await client.delete(f"/api/v1/contacts/{dan.id}", headers=setup.auth)).status_code in (200, 204)

    answer = await report(client, setup.auth, range="today", interval="hour")
    assert answer.status_code == 200, answer.text
    figures = answer.json()
    assert figures["totals"] == {"new": before["new"] + 3, "returning": 1, "opt_out": 2, "opt_in": 1}
    assert figures["previous"] == {"new": 0, "returning": 0, "opt_out": 0, "opt_in": 0}
    assert figures["by_source"] == {"opt_out": {"keyword": 1, "api": 1}, "opt_in": {"keyword": 1}}
    assert sum(b["new"] for b in figures["buckets"]) == before["new"] + 3

    # The summary, asked in days, carries the same totals as each report; asked in instants, not.
    summary = (await client.get("/api/v1/analytics/summary", headers=setup.auth, params={"range": "today"})).json()
    assert summary["contacts"] == figures["totals"] and summary["counted"]["complete"] is True
    talks = (await client.get("/api/v1/analytics/conversations", headers=setup.auth, params={"range": "today"})).json()
    answers = (await client.get("/api/v1/analytics/responses", headers=setup.auth, params={"range": "today"})).json()
    assert summary["conversations"]["totals"] == talks["totals"] and summary["responses"] == answers["totals"]
    assert summary["conversations"]["totals"]["reopened"] == 1 and summary["conversations"]["open_now"] == talks["open_now"]
    instants = (await client.get("/api/v1/analytics/summary", headers=setup.auth)).json()
    assert instants["contacts"] is None and instants["conversations"] is None and instants["messages_in"] >= 5  # Dan's went with him

    # The page shows the panel and its table; the CSV has each bucket.
    assert (await sign_in(client, setup.email, setup.password)).status_code in (302, 303)
    page = await client.get("/reports", params={"range": "today"})
    assert f'data-figure="contacts-new">{before["new"] + 3}<' in page.text
    assert 'data-figure="contacts-returning">1<' in page.text and 'id="r-consent-sources"' in page.text
    exported = await client.get("/reports/contacts.csv", params={"range": "today"})
    lines = exported.text.strip().splitlines()
    assert lines[0] == "start,end,new,returning,opt_out,opt_in"
    assert lines[1].split(",")[2:] == [str(before["new"] + 3), "1", "2", "1"]


async def test_an_agent_is_refused_the_contacts_report_and_does_not_see_the_panel(shop):
    client, setup, runtime = shop
    ws = setup.account.workspace_id
    agent = await runtime.people.create_user(ws, "eve@example.com", "agent password", "agent", "Eve Agent")
    _, key = await runtime.people.create_api_key(ws, "eve's", "agent", agent.id)
    refused = await report(client, {"Authorization": f"Bearer {key}"}, range="today")
    assert refused.status_code == 403 and refused.json()["error_code"] == "REPORT_NOT_ALLOWED"
    assert (await sign_in(client, "eve@example.com", "agent password")).status_code in (302, 303)
    page = await client.get("/reports", params={"range": "today"})
    assert page.status_code == 200 and 'id="r-contacts"' not in page.text
    csv = await client.get("/reports/contacts.csv", params={"range": "today"})
    assert csv.status_code == 403, (csv.status_code, csv.headers, csv.text[:300])
