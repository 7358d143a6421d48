"""Issue 19: a report narrowed to one team, one agent or one label: the conversations in it now, with all their
messages. Today, in a UTC workspace:

  Ann writes: her conversation goes to team Sales.
  Ben writes: team Support, assigned to Eve, labelled "refund".
  Cat writes: nothing set.

All: 3 new, 3 from customers. Sales 1, Support 1, Eve 1, refund 1. Then Ann's conversation moves to Support (after
the figures were counted: the move recounts its hours) and Ben's label is taken off: Sales 0, Support 2, refund 0.
"""

from __future__ import annotations

import pytest

from app.domains.contacts.models import Contact
from app.domains.conversations.models import Conversation
from tests.conftest import sign_in
from tests.support.inbound import deliver, envelope, make_setup, text_message


@pytest.fixture
async def shop(client_factory):
    client = await client_factory(settings={"api_rate_limit_per_minute": 10000})
    setup = await make_setup(client.app.state.runtime)
    return client, setup, client.app.state.runtime


async def conversation_of(runtime, setup, phone: str) -> Conversation:
    await deliver(runtime, setup, envelope(messages=[text_message("Hello", from_=phone)]))
    contact = await Contact.find_one(Contact.wa_id == phone)
    return await Conversation.find_one(Conversation.contact_id == contact.id)


async def figures(client, setup, path: str = "conversations", **params) -> dict:
    answer = await client.get(f"/api/v1/analytics/{path}", headers=setup.auth, params={"range": "today", **params})
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_a_team_an_agent_a_label_and_a_move_between_teams(shop):
    client, setup, runtime = shop
    auth = setup.auth
    sales = (await client.post("/api/v1/teams", headers=auth, json={"name": "Sales"})).json()["id"]
    support = (await client.post("/api/v1/teams", headers=auth, json={"name": "Support"})).json()["id"]
    refund = (await client.post("/api/v1/labels", headers=auth, json={"name": "refund"})).json()["id"]
    eve = await runtime.people.create_user(setup.account.workspace_id, "eve@example.com", "agent password", "agent", "Eve")
    ann = await conversation_of(runtime, setup, "4915100000041")
    ben = await conversation_of(runtime, setup, "4915100000042")
    await conversation_of(runtime, setup, "4915100000043")
    for conversation, change in ((ann, {"team_id": sales}),
                                 (ben, {"team_id": support, "assignee_id": str(eve.id), "labels": [refund]})):
        patched = await client.patch(f"/api/v1/conversations/{conversation.id}", headers=auth, json=change)
        assert patched.status_code == 200, patched.text

    everyone = await figures(client, setup)
    assert everyone["totals"]["new"] >= 3
    by = {name: await figures(client, setup, **params) for name, params in (
        ("sales", {"team_id": sales}), ("support", {"team_id": support}), ("eve", {"agent_id": str(eve.id)}),
        ("refund", {"label": refund}))}
    assert {name: f["totals"]["new"] for name, f in by.items()} == {"sales": 1, "support": 1, "eve": 1, "refund": 1}
    assert by["support"]["open_now"] == 1 and everyone["open_now"] >= 3
    messages = await figures(client, setup, "messages", team_id=support)
    assert messages["totals"]["inbound"] == 1

    # Ann's conversation moves to Support, and Ben's label comes off: the figures follow, already counted or not.
    assert (await client.patch(f"/api/v1/conversations/{ann.id}", headers=auth, json={"team_id": support})).status_code == 200
    assert (await client.patch(f"/api/v1/conversations/{ben.id}", headers=auth, json={"labels": []})).status_code == 200
    assert (await figures(client, setup, team_id=sales))["totals"]["new"] == 0
    assert (await figures(client, setup, team_id=support))["totals"]["new"] == 2
    assert (await figures(client, setup, "messages", team_id=support))["totals"]["inbound"] == 2
    assert (await figures(client, setup, label=refund))["totals"]["new"] == 0


async def test_filters_one_at_a_time_and_only_this_workspaces(shop):
    client, setup, runtime = shop
    team = (await client.post("/api/v1/teams", headers=setup.auth, json={"name": "Sales"})).json()["id"]
    label = (await client.post("/api/v1/labels", headers=setup.auth, json={"name": "vip"})).json()["id"]
    for params, field in (({"team_id": team, "label": label}, "filter"), ({"team_id": "6b1353d16ca318d360937326"}, "team_id"),
                          ({"agent_id": "nobody"}, "agent_id")):
        refused = await client.get("/api/v1/analytics/responses", headers=setup.auth, params={"range": "today", **params})
        assert refused.status_code == 400 and refused.json()["error_code"] == "FILTER_INVALID", refused.text
        assert field in refused.json()["details"]


async def test_the_page_offers_the_filters_and_says_which_is_shown(shop):
    client, setup, runtime = shop
    team = (await client.post("/api/v1/teams", headers=setup.auth, json={"name": "Sales"})).json()["id"]
    ann = await conversation_of(runtime, setup, "4915100000044")
    assert (await client.patch(f"/api/v1/conversations/{ann.id}", headers=setup.auth,
                               json={"team_id": team})).status_code == 200
    assert (await sign_in(client, setup.email, setup.password)).status_code in (302, 303)
    page = await client.get("/reports", params={"range": "today"})
    assert '<optgroup label="Teams"><option value="team:' + team + '">Sales</option>' in page.text
    narrowed = await client.get("/reports", params={"range": "today", "only": f"team:{team}"})
    assert 'id="r-only-note"' in narrowed.text and "<strong>Sales</strong>" in narrowed.text
    assert 'data-figure="conversations-new">1<' in narrowed.text
    assert f"only=team%3A{team}" in narrowed.text  # the CSV links keep it
    exported = await client.get("/reports/all-conversations.csv", params={"range": "today", "only": f"team:{team}"})
    assert exported.text.strip().splitlines()[1:] and all(str(ann.id) in line for line in exported.text.strip().splitlines()[1:])
    bad = await client.get("/reports", params={"range": "today", "only": "team:nope"})
    assert bad.status_code == 200 and "No such team" in bad.text
