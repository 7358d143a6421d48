"""One person, whatever identifiers WhatsApp sends (2026 shapes): phone (wa_id), business-scoped user id
(BSUID, ``user_id``), parent BSUID, username; identity changes; opt-outs by any of them; and the
rule that two stored contacts are never merged silently."""

from __future__ import annotations

import time

import pytest

from app.domains.contacts.models import Contact
from app.domains.conversations.models import Conversation
from app.domains.messages.models import Message
from app.domains.webhooks.models import WebhookEvent
from tests.support.inbound import deliver, envelope, ingest_pending, make_setup, new_wamid

NOW = int(time.time())
PHONE = "16505551234"
BSUID = "US.13491208655302741918"
PARENT = "US.ENT.11815799212886844830"


@pytest.fixture
async def env(client_factory):
    client = await client_factory()
    runtime = client.app.state.runtime
    return client, runtime, await make_setup(runtime)


def message(body: str, *, wa_id: str | None = PHONE, user_id: str | None = BSUID, **extra) -> dict:
    item = {"id": new_wamid(), "timestamp": str(NOW), "type": "text", "text": {"body": body}, **extra}
    if wa_id:
        item["from"] = wa_id
    if user_id:
        item["from_user_id"] = user_id
    return item


def person(*, wa_id: str | None = PHONE, user_id: str | None = BSUID, username: str | None = None,
           name: str = "Dana", parent: str | None = None) -> dict:
    contact: dict = {"profile": {"name": name}}
    if username:
        contact["profile"]["username"] = username
    if wa_id:
        contact["wa_id"] = wa_id
    if user_id:
        contact["user_id"] = user_id
    if parent:
        contact["parent_user_id"] = parent
    return contact


async def say(runtime, setup, body: str, **who) -> None:
    wa_id, user_id = who.get("wa_id", PHONE), who.get("user_id", BSUID)
    payload = envelope(messages=[message(body, wa_id=wa_id, user_id=user_id)], contacts=[person(**who)])
    assert await deliver(runtime, setup, payload) == ["ingested"]


async def test_phone_then_user_id_only_is_one_contact_and_one_conversation(env):
    _, runtime, setup = env
    await say(runtime, setup, "hi, with my number", parent=PARENT)
    await say(runtime, setup, "now as @dana only", wa_id=None, username="dana")
    contacts = await Contact.find_all().to_list()
    assert len(contacts) == 1
    contact = contacts[0]
    assert (contact.wa_id, contact.user_id, contact.parent_user_id, contact.username) == (PHONE, BSUID, PARENT, "dana")
    assert await Conversation.count() == 1
    assert [m.content["body"] for m in await Message.find_all().sort("_id").to_list()] == [
        "hi, with my number", "now as @dana only"]


async def test_user_id_first_then_phone_links_the_phone_to_the_same_contact(env):
    _, runtime, setup = env
    await say(runtime, setup, "username only", wa_id=None, username="dana")
    contact = await Contact.find_one({})
    assert contact.wa_id is None and contact.display_name == "Dana"
    await say(runtime, setup, "shared my number")
    contacts = await Contact.find_all().to_list()
    assert len(contacts) == 1 and contacts[0].phone == "+16505551234" and contacts[0].user_id == BSUID
    # Any identifier finds the contact's conversations through the API.
    client, _, _ = env
    headers = {"Authorization": f"Bearer {setup.api_key}"}
    for query in (f"wa_id={PHONE}", f"wa_id=%2B{PHONE}"):
        listed = (await client.get(f"/api/v1/conversations?{query}", headers=headers)).json()["data"]
        assert len(listed) == 1 and listed[0]["contact"]["user_id"] == BSUID
        assert listed[0]["contact"]["username"] == "dana"


async def test_the_details_panel_shows_username_user_id_and_identity_notes(env):
    from tests.conftest import sign_in

    client, runtime, setup = env
    await say(runtime, setup, "no number", wa_id=None, username="dana")
    await say(runtime, setup, "another number", wa_id=None, user_id="US.42", username="dana2", name="Dana")
    conversation = await Conversation.find_one({})
    assert (await sign_in(client, setup.email, setup.password)).status_code in (302, 303)
    html = (await client.get(f"/inbox/c/{conversation.id}", headers={"HX-Request": "true"})).text
    assert "@dana" in html and BSUID in html and "kept private" in html
    # A contradiction shows as a note in the panel: another contact for the same person is linked there.
    await say(runtime, setup, "both", wa_id=PHONE)
    created = await client.post("/api/v1/contacts", json={"phone": "+16505550001"},
                                headers={"Authorization": f"Bearer {setup.api_key}"})
    assert created.status_code == 201
    await say(runtime, setup, "mine too", wa_id="16505550001")
    html = (await client.get(f"/inbox/c/{conversation.id}", headers={"HX-Request": "true"})).text
    assert 'class="identity-note"' in html and "Not merged" in html


async def test_the_contacts_api_shape_carries_user_id_and_username(env):
    client, runtime, setup = env
    await say(runtime, setup, "hello", username="dana", parent=PARENT)
    contact = await Contact.find_one({})
    body = (await client.get(f"/api/v1/contacts/{contact.id}",
                             headers={"Authorization": f"Bearer {setup.api_key}"})).json()
    assert (body["user_id"], body["parent_user_id"], body["username"], body["kind"]) == (BSUID, PARENT, "dana",
                                                                                         "person")
    found = (await client.get(f"/api/v1/contacts?q={BSUID}",
                              headers={"Authorization": f"Bearer {setup.api_key}"})).json()["data"]
    assert [c["id"] for c in found] == [str(contact.id)]


async def test_opt_out_by_user_id_reaches_the_phone_contact(env):
    _, runtime, setup = env
    await say(runtime, setup, "hello")
    value = {"messaging_product": "whatsapp", "metadata": {"phone_number_id": setup.account.phone_number_id},
             "contacts": [{"profile": {"name": "Dana"}, "user_id": BSUID}],
             "user_preferences": [{"user_id": BSUID, "category": "marketing_messages", "value": "stop",
                                   "timestamp": NOW}]}
    await deliver(runtime, setup, {"object": "whatsapp_business_account", "entry": [
        {"id": setup.account.waba_id, "changes": [{"field": "user_preferences", "value": value}]}]})
    contacts = await Contact.find_all().to_list()
    assert len(contacts) == 1 and contacts[0].opted_out_marketing is True


async def test_same_user_id_with_another_phone_is_a_noted_number_change_not_a_new_person(env):
    _, runtime, setup = env
    await say(runtime, setup, "old number")
    await say(runtime, setup, "new number", wa_id="16505559999")
    contacts = await Contact.find_all().to_list()
    assert len(contacts) == 1
    contact = contacts[0]
    assert contact.phone == "+16505559999" and contact.previous_wa_ids == [PHONE]
    assert [n.kind for n in contact.identity_notes] == ["number_changed"]
    assert "+16505559999" in contact.identity_notes[0].text and "+16505551234" in contact.identity_notes[0].text
    # The old number writing again (someone else now, with their own user id) is a new person.
    await say(runtime, setup, "I got this number", user_id="US.999", name="Eve")
    assert await Contact.count() == 2


async def test_identifiers_on_two_stored_contacts_are_linked_and_shown_never_merged(env):
    client, runtime, setup = env
    headers = {"Authorization": f"Bearer {setup.api_key}"}
    await say(runtime, setup, "as a username user", wa_id=None, username="dana")
    created = await client.post("/api/v1/contacts", json={"phone": f"+{PHONE}", "name": "Dana (CRM)"},
                                headers=headers)
    assert created.status_code == 201, created.text
    await say(runtime, setup, "now with my number")
    contacts = {c.key: c for c in await Contact.find_all().to_list()}
    assert len(contacts) == 2  # not merged
    by_user, by_phone = contacts[f"user:{BSUID}"], contacts[f"wa:{PHONE}"]
    # The message went to the thread of the user id's contact, which keeps its identity.
    last = await Message.find_all().sort("-_id").first_or_none()
    assert last.contact_id == by_user.id
    assert [(n.kind, n.other_contact_id) for n in by_user.identity_notes] == [("linked", by_phone.id)]
    assert [(n.kind, n.other_contact_id) for n in by_phone.identity_notes] == [("linked", by_user.id)]
    body = (await client.get(f"/api/v1/contacts/{by_phone.id}", headers=headers)).json()
    assert body["identity_notes"][0]["other_contact_id"] == str(by_user.id)
    # Again: noted once, not once per message.
    await say(runtime, setup, "again")
    assert len((await Contact.get(by_user.id)).identity_notes) == 1


async def test_user_changed_number_moves_the_contact_and_its_thread_once(env):
    _, runtime, setup = env
    await say(runtime, setup, "before")
    system = {"from": PHONE, "from_user_id": BSUID, "id": new_wamid(), "timestamp": str(NOW), "type": "system",
              "system": {"body": f"User Dana changed from {PHONE} to 16505550000", "type": "user_changed_number",
                         "wa_id": "16505550000", "user_id": "US.5550000"}}
    payload = {"object": "whatsapp_business_account", "entry": [{"id": setup.account.waba_id, "changes": [
        {"field": "messages", "value": {"messaging_product": "whatsapp",
                                        "metadata": {"phone_number_id": setup.account.phone_number_id},
                                        "messages": [system]}}]}]}
    await deliver(runtime, setup, payload)
    await say(runtime, setup, "after", wa_id="16505550000", user_id="US.5550000")
    contacts = await Contact.find_all().to_list()
    assert len(contacts) == 1
    contact = contacts[0]
    assert (contact.wa_id, contact.user_id) == ("16505550000", "US.5550000")
    assert (contact.previous_wa_ids, contact.previous_user_ids) == ([PHONE], [BSUID])
    assert await Conversation.count() == 1 and await Message.count() == 3
    # The notice redelivered: nothing changes, no contact for the old identifiers appears.
    events = await WebhookEvent.find_all().to_list()
    notice = next(e for e in events if b"user_changed_number" in bytes(e.body))
    await WebhookEvent.get_motor_collection().update_one({"_id": notice.id}, {"$set": {"ingested_at": None}})
    await ingest_pending(runtime)
    assert await Contact.count() == 1
    assert len((await Contact.get(contact.id)).identity_notes) == 1


async def test_user_changed_user_id_alone(env):
    _, runtime, setup = env
    await say(runtime, setup, "before", wa_id=None)
    system = {"from_user_id": BSUID, "id": new_wamid(), "timestamp": str(NOW), "type": "system",
              "system": {"body": "User changed", "type": "user_changed_user_id", "user_id": "US.777"}}
    payload = {"object": "whatsapp_business_account", "entry": [{"id": setup.account.waba_id, "changes": [
        {"field": "messages", "value": {"messaging_product": "whatsapp",
                                        "metadata": {"phone_number_id": setup.account.phone_number_id},
                                        "messages": [system]}}]}]}
    await deliver(runtime, setup, payload)
    await say(runtime, setup, "after", wa_id=None, user_id="US.777")
    contacts = await Contact.find_all().to_list()
    assert len(contacts) == 1 and contacts[0].user_id == "US.777" and contacts[0].previous_user_ids == [BSUID]


async def test_unknown_change_kinds_and_fields_are_kept_noted_and_counted(env):
    from app.metrics import WEBHOOK_UNKNOWN

    _, runtime, setup = env
    before = WEBHOOK_UNKNOWN.labels(where="field", name="brand_new_field")._value.get()
    fields_before = WEBHOOK_UNKNOWN.labels(where="message", name="novel")._value.get()
    payload = envelope(messages=[message("hi", novel={"x": 1})], contacts=[person()])
    payload["entry"][0]["changes"].append({"field": "brand_new_field", "value": {"anything": True}})
    assert await deliver(runtime, setup, payload) == ["ingested"]
    event = await WebhookEvent.find_one({})
    assert any("brand_new_field" in note for note in event.notes)
    assert b"brand_new_field" in bytes(event.body)
    assert WEBHOOK_UNKNOWN.labels(where="field", name="brand_new_field")._value.get() == before + 1
    assert WEBHOOK_UNKNOWN.labels(where="message", name="novel")._value.get() == fields_before + 1
    assert (await Message.find_one({})).content == {"body": "hi"}


async def test_erasing_a_username_only_customer_removes_the_raw_webhooks_naming_their_user_id(env):
    client, runtime, setup = env
    await say(runtime, setup, "please forget me", wa_id=None, username="dana")
    contact = await Contact.find_one({})
    assert await WebhookEvent.find_all().count() == 1
    erased = await client.delete(f"/api/v1/contacts/{contact.id}", headers={"Authorization": f"Bearer {setup.api_key}"})
    assert erased.status_code == 200, erased.text
    assert erased.json()["webhook_bodies"] == 1
    assert await WebhookEvent.find_all().count() == 0
