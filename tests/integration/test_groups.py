"""WhatsApp groups: a group's messages go to the group's own conversation (one per group_id), never
into a participant's one-to-one thread; participants are shown by name; group lifecycle and
participant webhooks update the conversation; a reply is addressed to the group."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from app.domains.contacts.models import Contact
from app.domains.conversations.models import Conversation
from app.domains.messages.models import Message
from app.domains.outbox.service import Draft
from app.whatsapp import payloads
from tests.conftest import sign_in
from tests.support.inbound import deliver, envelope, make_setup, new_wamid, on_test_loop

NOW = int(time.time())
GROUP = "Y2FwaV9ncm91cDoxODA1NTU1MDE3MjoxMjAzNjMyMjI3NzE5NjMwNjcZD"
CONFORMANCE = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"  # copies of ../shared/conformance


@pytest.fixture
async def env(client_factory):
    client = await client_factory()
    runtime = client.app.state.runtime
    return client, runtime, await make_setup(runtime)


def group_message(body: str, *, wa_id: str, name: str, group_id: str = GROUP) -> tuple[dict, dict]:
    message = {"from": wa_id, "group_id": group_id, "id": new_wamid(), "timestamp": str(NOW), "type": "text",
               "text": {"body": body}}
    return message, {"profile": {"name": name}, "wa_id": wa_id, "user_id": f"US.{wa_id}"}


async def test_a_group_message_goes_to_the_groups_conversation_not_the_participants(env):
    client, runtime, setup = env
    # Dana also writes one-to-one: her own thread exists.
    direct = {"from": "16505551234", "id": new_wamid(), "timestamp": str(NOW), "type": "text",
              "text": {"body": "just me"}}
    await deliver(runtime, setup, envelope(messages=[direct], name="Dana"))
    first, dana = group_message("hello group", wa_id="16505551234", name="Dana")
    second, omar = group_message("hi all", wa_id="16505550000", name="Omar")
    await deliver(runtime, setup, envelope(messages=[first], contacts=[dana]))
    await deliver(runtime, setup, envelope(messages=[second], contacts=[omar]))

    group = await Contact.find_one({"kind": "group"})
    assert group is not None and group.group.group_id == GROUP
    people = {c.profile_name: c for c in await Contact.find({"kind": "person"}).to_list()}
    assert set(people) == {"Dana", "Omar"}
    assert set(group.group.participant_ids) == {people["Dana"].id, people["Omar"].id}
    group_thread = await Conversation.find_one(Conversation.contact_id == group.id)
    dana_thread = await Conversation.find_one(Conversation.contact_id == people["Dana"].id)
    in_group = await Message.find(Message.conversation_id == group_thread.id).sort("_id").to_list()
    assert [(m.content["body"], m.sender_contact_id) for m in in_group] == [
        ("hello group", people["Dana"].id), ("hi all", people["Omar"].id)]
    assert [m.content["body"] for m in await Message.find(Message.conversation_id == dana_thread.id).to_list()] == [
        "just me"]
    assert await Conversation.find(Conversation.contact_id == people["Omar"].id).count() == 0

    # The inbox shows who wrote each message, and the group's participants by name.
    assert (await sign_in(client, setup.email, setup.password)).status_code in (302, 303)
    html = (await client.get(f"/inbox/c/{group_thread.id}", headers={"HX-Request": "true"})).text
    assert html.count('class="msg-sender"') == 2 and ">Dana</p>" in html and ">Omar</p>" in html
    assert "Participants (2)" in html
    # The API names the conversation's contact as a group.
    listed = (await client.get(f"/api/v1/conversations?contact_id={group.id}", headers=setup.auth)).json()
    assert listed["data"][0]["contact"]["kind"] == "group"


async def test_a_reply_in_a_group_conversation_is_addressed_to_the_group(env):
    _, runtime, setup = env
    message, dana = group_message("anyone?", wa_id="16505551234", name="Dana")
    await deliver(runtime, setup, envelope(messages=[message], contacts=[dana]))
    group = await Contact.find_one({"kind": "group"})
    conversation = await Conversation.find_one(Conversation.contact_id == group.id)
    async with on_test_loop(runtime) as local:
        sent = await local.outbox.send(setup.workspace_id, conversation, Draft("text", {"body": "Yes, here"}))
    assert sent.recipient == f"group:{GROUP}"
    assert payloads.recipient_fields(sent.recipient) == {"recipient_type": "group", "to": GROUP}


def _conformance(name: str, setup) -> dict:
    body = json.loads((CONFORMANCE / name).read_text())
    body["entry"][0]["id"] = setup.account.waba_id
    body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = setup.account.phone_number_id
    return body


async def test_group_lifecycle_and_participant_webhooks_update_the_conversation(env):
    _, runtime, setup = env
    assert await deliver(runtime, setup, _conformance("meta_group_lifecycle_update.json", setup)) == ["ingested"]
    group = await Contact.find_one({"kind": "group"})
    assert (group.group.subject, group.group.description) == ("your-group-subject", "your-group-description")
    assert len(group.group.participant_ids) == 2
    assert await Conversation.find(Conversation.contact_id == group.id).count() == 1
    removed = _conformance("meta_group_participants_update.json", setup)
    removed["entry"][0]["changes"][0]["value"]["groups"][0]["removed_participants"] = [
        {"input": "16505551234", "wa_id": "16505551234"}]
    assert await deliver(runtime, setup, removed) == ["ingested"]
    group = await Contact.get(group.id)
    assert [(await Contact.get(i)).wa_id for i in group.group.participant_ids] == ["16505551235"]
    deleted = _conformance("meta_group_lifecycle_update.json", setup)
    deleted["entry"][0]["changes"][0]["value"]["groups"][0]["type"] = "group_delete"
    await deliver(runtime, setup, deleted)
    assert (await Contact.get(group.id)).group.deleted is True
    conversation = await Conversation.find_one(Conversation.contact_id == group.id)
    from app.errors import ValidationFailed

    async with on_test_loop(runtime) as local:
        with pytest.raises(ValidationFailed) as refused:
            await local.outbox.send(setup.workspace_id, conversation, Draft("text", {"body": "hello?"}))
    assert refused.value.error_code == "GROUP_DELETED"
