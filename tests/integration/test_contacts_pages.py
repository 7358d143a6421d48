"""Issue 16 item 1: the contacts page and a contact's page, as an agent or admin uses them (classic
forms and htmx fragments): search, conditions, sorts, keyset "load more", saved segments, bulk
actions, and on one contact typed attributes, email, consent history, notes and "message them"."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from app.domains.catalog.models import ContactAttribute
from app.domains.contacts.models import Contact, GroupInfo
from app.domains.conversations.models import Conversation
from app.domains.workspaces.models import User
from tests.conftest import csrf_from, sign_in
from tests.support.admin import (  # noqa: F401 (fixtures)
    AGENT_EMAIL,
    AGENT_PASSWORD,
    AUTH,
    NUMBER,
    add_agent,
    admin_client,
    sandbox,
    sandbox_server,
)

HX = {"HX-Request": "true"}


async def _workspace():
    return (await User.find_one(User.email == "admin@example.com")).workspace_id


async def _contact(client, phone: str, **fields) -> str:
    answer = await client.post("/api/v1/contacts", json={"phone": phone, **fields}, headers=AUTH)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


async def _post(client, url: str, data: dict | list, *, page: str = "/contacts", htmx: bool = True):
    token = csrf_from((await client.get(page)).text)
    pairs = list(data.items()) if isinstance(data, dict) else list(data)
    headers = {**HX, "X-CSRFToken": token} if htmx else {}
    return await client.post(url, content=urlencode([*pairs, ("_csrf_token", token)]), follow_redirects=False,
                             headers={**headers, "Content-Type": "application/x-www-form-urlencoded"})


def _names(html: str) -> list[str]:
    return re.findall(r'<td><a href="/contacts/[0-9a-f]{24}">([^<]+)</a></td>', html)


async def test_the_list_searches_filters_by_conditions_and_never_shows_groups(admin_client):
    await _contact(admin_client, "+14155550101", name="Ana Vip", tags=["vip"])
    await _contact(admin_client, "+14155550102", name="Bo Regular")
    await Contact(workspace_id=await _workspace(), key="group:G1", kind="group", identities=[],
                  group=GroupInfo(group_id="G1", subject="Bakery orders")).insert()
    page = await admin_client.get("/contacts")
    assert page.status_code == 200
    assert sorted(_names(page.text)) == ["Ana Vip", "Bo Regular"]  # the group is not a contact to list
    assert "Bakery orders" not in page.text
    searched = await admin_client.get("/contacts", params={"q": "0102"}, headers=HX)
    assert _names(searched.text) == ["Bo Regular"]
    tagged = await admin_client.get("/contacts", params=[("field", "tag"), ("op", "has"), ("value", "vip")], headers=HX)
    assert _names(tagged.text) == ["Ana Vip"] and "<strong>1</strong> contact" in tagged.text
    untagged = await admin_client.get("/contacts", params=[("field", "tag"), ("op", "has_not"), ("value", "vip")])
    assert _names(untagged.text) == ["Bo Regular"]


async def test_condition_rows_follow_the_field_and_a_bad_value_is_said_not_a_500(admin_client):
    ws = await _workspace()
    await ContactAttribute(workspace_id=ws, key="orders", name="Orders", type="number").insert()
    await _contact(admin_client, "+14155550111", name="Many", attributes={"orders": "12"})
    await _contact(admin_client, "+14155550112", name="Few", attributes={"orders": "2"})
    added = await admin_client.get("/contacts", params={"add_row": "1"}, headers=HX)
    assert 'name="field"' in added.text and "Orders" in added.text
    chosen = await admin_client.get("/contacts", params=[("field", "attributes.orders"), ("op", ""), ("value", "")],
                                    headers=HX)
    assert ">more than<" in chosen.text and 'type="number"' in chosen.text  # the number's operators and input
    more = await admin_client.get("/contacts", params=[("field", "attributes.orders"), ("op", "gt"), ("value", "5")],
                                  headers=HX)
    assert _names(more.text) == ["Many"]
    bad = await admin_client.get("/contacts", params=[("field", "attributes.orders"), ("op", "gt"), ("value", "lots")],
                                 headers=HX)
    assert bad.status_code == 200 and 'role="alert"' in bad.text and _names(bad.text) == []


async def test_load_more_walks_every_contact_once_in_each_sort(admin_client):
    ws = await _workspace()
    for n in range(63):
        await Contact(workspace_id=ws, key=f"wa:1415555{n:04d}", identities=[f"wa:1415555{n:04d}"],
                      wa_id=f"1415555{n:04d}", phone=f"+1415555{n:04d}", name=f"Person {n:02d}").insert()
    for sort in ("created", "name", "updated", "last_inbound"):
        first = await admin_client.get("/contacts", params={"sort": sort})
        seen = _names(first.text)
        assert len(seen) == 50
        more_url = re.search(r'hx-get="(/contacts/rows\?[^"]+)"', first.text).group(1).replace("&amp;", "&")
        rest = await admin_client.get(more_url)
        seen += re.findall(r'<a href="/contacts/[0-9a-f]{24}">([^<]+)</a>', rest.text)
        assert sorted(seen) == [f"Person {n:02d}" for n in range(63)], sort
        assert "Load more" not in rest.text
    by_name = _names((await admin_client.get("/contacts", params={"sort": "name"})).text)
    assert by_name[:3] == ["Person 00", "Person 01", "Person 02"]


async def test_conditions_saved_as_a_segment_list_its_contacts_with_a_count(admin_client):
    await _contact(admin_client, "+14155550121", name="In Spain", tags=["es"])
    await _contact(admin_client, "+14155550122", name="Elsewhere")
    saved = await _post(admin_client, "/contacts/segments", [("segment_name", "Spain"), ("field", "tag"),
                                                              ("op", "has"), ("value", "es")], htmx=False)
    assert saved.status_code == 303, saved.text
    segment_url = saved.headers["location"]
    listed = await admin_client.get(segment_url)
    assert _names(listed.text) == ["In Spain"]
    assert re.search(r'>Spain</a>\s*<span class="count"[^>]*>1</span>', listed.text)
    again = await _post(admin_client, "/contacts/segments", [("segment_name", "Spain"), ("field", "tag"),
                                                              ("op", "has"), ("value", "es")])
    assert 'role="alert"' in again.text  # the name is taken: said on the page


async def test_bulk_tags_the_ticked_contacts_or_everything_matching(admin_client):
    a = await _contact(admin_client, "+14155550131", name="A", tags=["lead"])
    b = await _contact(admin_client, "+14155550132", name="B", tags=["lead"])
    await _contact(admin_client, "+14155550133", name="C")
    ticked = await _post(admin_client, "/contacts/bulk", [("action", "add_tags"), ("value", "spring"), ("scope", "selected"),
                                                          ("ids", a), ("ids", b)])
    assert ticked.status_code == 200 and 'role="status"' in ticked.text
    assert {c.name for c in await Contact.find({"tags": "spring"}).to_list()} == {"A", "B"}
    matching = await _post(admin_client, "/contacts/bulk", [("action", "remove_tags"), ("value", "lead"), ("scope", "all"),
                                                            ("field", "tag"), ("op", "has"), ("value", "lead")])
    assert matching.status_code == 200
    assert await Contact.find({"tags": "lead"}).count() == 0
    assert await Contact.find({"tags": "spring"}).count() == 2  # only what was asked changed


async def test_agents_use_the_list_but_cannot_erase_in_bulk(admin_client):
    victim = await _contact(admin_client, "+14155550141", name="Keep me")
    await add_agent(admin_client)
    await admin_client.post("/logout", data={"_csrf_token": csrf_from((await admin_client.get("/inbox")).text)})
    await sign_in(admin_client, AGENT_EMAIL, AGENT_PASSWORD)
    page = await admin_client.get("/contacts")
    assert page.status_code == 200 and "Keep me" in page.text and 'value="delete"' not in page.text
    refused = await _post(admin_client, "/contacts/bulk", [("action", "delete"), ("scope", "selected"), ("ids", victim)])
    assert refused.status_code == 403
    assert await Contact.get(victim) is not None


async def test_a_contacts_page_edits_typed_attributes_email_consent_and_notes(admin_client):
    ws = await _workspace()
    await ContactAttribute(workspace_id=ws, key="renewal", name="Renewal", type="date").insert()
    await ContactAttribute(workspace_id=ws, key="plan", name="Plan", type="list", options=["basic", "pro"]).insert()
    contact_id = await _contact(admin_client, "+14155550151", name="Dana")
    url = f"/contacts/{contact_id}"
    page = await admin_client.get(url)
    assert page.status_code == 200 and "+14155550151" in page.text and 'type="date"' in page.text
    refused = await _post(admin_client, url, {"name": "Dana", "email": "dana@example.com", "tags": "",
                                              "attr.renewal": "next tuesday", "attr.plan": "pro"}, page=url)
    assert refused.status_code == 422 and 'role="alert"' in refused.text
    stored = await Contact.get(contact_id)
    assert "renewal" not in stored.attributes and stored.email is None  # nothing half-saved
    saved = await _post(admin_client, url, {"name": "Dana", "email": "Dana@Example.com", "tags": "vip",
                                            "attr.renewal": "2027-01-31", "attr.plan": "pro"}, page=url)
    assert saved.status_code == 200 and "Saved." in saved.text
    stored = await Contact.get(contact_id)
    assert stored.email == "dana@example.com" and stored.attributes["plan"] == "pro" and stored.tags == ["vip"]
    assert stored.attributes["renewal"].strftime("%Y-%m-%d") == "2027-01-31"
    assert 'value="2027-01-31"' in saved.text
    opted = await _post(admin_client, f"{url}/consent", {"opted_out": "1"}, page=url)
    assert "opted out" in opted.text and "Opted out</strong> by an agent" in opted.text
    stored = await Contact.get(contact_id)
    assert stored.opted_out_marketing and stored.consent[-1].source == "agent"
    noted = await _post(admin_client, f"{url}/notes", {"note": "Prefers mornings"}, page=url)
    assert "Prefers mornings" in noted.text
    note_id = (await Contact.get(contact_id)).notes[0].id
    await _post(admin_client, f"{url}/notes/{note_id}/delete", {}, page=url)
    assert (await Contact.get(contact_id)).notes == []


async def test_message_opens_or_starts_the_conversation_on_the_chosen_number(admin_client):
    created = await admin_client.post("/api/v1/accounts", json={**NUMBER, "mps": 80}, headers=AUTH)
    assert created.status_code == 201, created.text
    account_id = created.json()["id"]
    contact_id = await _contact(admin_client, "+14155550161", name="Eve")
    url = f"/contacts/{contact_id}"
    first = await _post(admin_client, f"{url}/message", {"account_id": account_id}, page=url, htmx=False)
    assert first.status_code == 303 and first.headers["location"].startswith("/inbox?c=")
    second = await _post(admin_client, f"{url}/message", {"account_id": account_id}, page=url, htmx=False)
    assert second.headers["location"] == first.headers["location"]  # the same conversation, not a new one
    conversations = await Conversation.find({"contact_id": (await Contact.get(contact_id)).id}).to_list()
    assert len(conversations) == 1 and not conversations[0].window_open()
    inbox = await admin_client.get(first.headers["location"])
    assert inbox.status_code == 200 and "template" in inbox.text.lower()
    shown = await admin_client.get(url)
    assert f'/inbox?c={conversations[0].id}' in shown.text and "template only" in shown.text
    wrong = await _post(admin_client, f"{url}/message", {"account_id": "0" * 24}, page=url)
    assert wrong.status_code == 422 and 'role="alert"' in wrong.text
