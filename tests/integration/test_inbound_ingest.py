"""Ingestion of messages: every type, reactions, edits, revokes, contacts, idempotency, batches, crashes."""

from __future__ import annotations

import time

import pytest

from app.domains.contacts.models import Contact
from app.domains.conversations.models import Conversation, ConversationStatus
from app.domains.messages.models import Message
from app.domains.webhooks.models import WebhookEvent
from tests.support.inbound import deliver, envelope, ingest_pending, make_setup, new_wamid, store_event, text_message

NOW = int(time.time())


@pytest.fixture
async def env(client_factory):
    client = await client_factory()
    runtime = client.app.state.runtime
    return runtime, await make_setup(runtime)


async def test_text_message_creates_contact_conversation_and_message(env):
    runtime, setup = env
    wamid = new_wamid()
    assert await deliver(runtime, setup, envelope(messages=[text_message("Hi there", wamid=wamid, timestamp=NOW)],
                                                  name="Dana Cohen")) == ["ingested"]
    contact = await Contact.find_one({})
    assert (contact.wa_id, contact.profile_name, contact.phone) == ("972987654321", "Dana Cohen", "+972987654321")
    conversation = await Conversation.find_one({})
    assert conversation.status == ConversationStatus.OPEN and conversation.unread_count == 1
    assert conversation.last_inbound_at.timestamp() == NOW
    assert conversation.window_expires_at.timestamp() == NOW + 24 * 3600
    assert conversation.last_message.text == "Hi there"
    message = await Message.find_one({})
    assert (message.wamid, message.direction, message.type, message.status) == (wamid, "inbound", "text", "received")
    assert message.content == {"body": "Hi there"} and message.conversation_id == conversation.id


@pytest.mark.parametrize("kind,body", [
    ("image", {"id": "111", "mime_type": "image/jpeg", "sha256": "abc=", "caption": "look"}),
    ("video", {"id": "112", "mime_type": "video/mp4", "sha256": "abc="}),
    ("document", {"id": "113", "mime_type": "application/pdf", "sha256": "abc=", "filename": "invoice.pdf"}),
    ("audio", {"id": "114", "mime_type": "audio/ogg; codecs=opus", "sha256": "abc=", "voice": True}),
    ("sticker", {"id": "115", "mime_type": "image/webp", "sha256": "abc=", "animated": False}),
    ("location", {"latitude": 32.08, "longitude": 34.78, "name": "Office", "address": "Main St 1"}),
    ("contacts", [{"name": {"formatted_name": "Bob", "first_name": "Bob"}, "phones": [{"phone": "+1 555", "wa_id": "1555"}]}]),
    ("interactive", {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}}),
    ("interactive", {"type": "list_reply", "list_reply": {"id": "r1", "title": "Row", "description": "d"}}),
    ("interactive", {"type": "nfm_reply", "nfm_reply": {"response_json": "{\"a\": 1}", "body": "Sent", "name": "flow"}}),
    ("button", {"payload": "STOP", "text": "Stop promotions"}),
    ("order", {"catalog_id": "c1", "text": "note", "product_items": [{"product_retailer_id": "p", "quantity": 2}]}),
    ("system", {"body": "identity changed", "type": "customer_identity_changed", "identity": "x"}),
    ("brand_new_type", {"anything": [1, 2, 3]}),
])
async def test_every_inbound_type_is_stored_with_metas_object(env, kind, body):
    runtime, setup = env
    message = {"from": "972987654321", "id": new_wamid(), "timestamp": str(NOW), "type": kind, kind: body,
               "context": {"from": "972123456789", "id": "wamid.quoted"}, "unknown_field": {"kept": True}}
    assert await deliver(runtime, setup, envelope(messages=[message])) == ["ingested"]
    stored = await Message.find_one({})
    assert stored.type == kind and stored.content == body
    assert stored.reply_to_wamid == "wamid.quoted" and stored.context["from"] == "972123456789"
    if kind in ("image", "video", "document", "audio", "sticker"):
        assert stored.media.meta_media_id == body["id"] and stored.media.state == "pending"
        assert stored.media.filename == body.get("filename")
    else:
        assert stored.media is None


async def test_referral_and_reply_to_a_stored_message_are_linked(env):
    runtime, setup = env
    first = text_message("first")
    await deliver(runtime, setup, envelope(messages=[first]))
    referral = {"source_url": "https://fb.me/ad", "source_type": "ad", "source_id": "1", "headline": "Sale",
                "ctwa_clid": "xyz"}
    reply = text_message("reply", context={"from": "972987654321", "id": first["id"]}, referral=referral)
    await deliver(runtime, setup, envelope(messages=[reply]))
    stored = await Message.find_one(Message.wamid == reply["id"])
    original = await Message.find_one(Message.wamid == first["id"])
    assert stored.reply_to_id == original.id and stored.referral == referral


async def test_unsupported_and_error_messages_are_kept_with_metas_error(env):
    runtime, setup = env
    unsupported = {"from": "972987654321", "id": new_wamid(), "timestamp": str(NOW), "type": "unsupported",
                   "errors": [{"code": 131051, "title": "Message type unknown",
                               "message": "Message type unknown", "error_data": {"details": "Message type is not currently supported"}}]}
    await deliver(runtime, setup, envelope(messages=[unsupported]))
    stored = await Message.find_one({})
    assert stored.type == "unsupported" and stored.content == {}
    assert (stored.error.code, stored.error.title, stored.error.detail) == (
        131051, "Message type unknown", "Message type is not currently supported")
    assert stored.error.agent_message


async def test_reaction_attaches_replaces_and_removes(env):
    runtime, setup = env
    target = text_message("react to me")
    await deliver(runtime, setup, envelope(messages=[target]))

    def reaction(emoji, ts):
        return {"from": "972987654321", "id": new_wamid(), "timestamp": str(ts), "type": "reaction",
                "reaction": {"message_id": target["id"], **({"emoji": emoji} if emoji is not None else {})}}

    thumbs = reaction("👍", NOW + 1)
    await deliver(runtime, setup, envelope(messages=[thumbs]))
    message = await Message.find_one(Message.wamid == target["id"])
    assert [(r.by, r.emoji) for r in message.reactions] == [("customer", "👍")]
    await deliver(runtime, setup, envelope(messages=[reaction("❤️", NOW + 2)]))
    message = await Message.find_one(Message.wamid == target["id"])
    assert [r.emoji for r in message.reactions] == ["❤️"]
    await deliver(runtime, setup, envelope(messages=[reaction(None, NOW + 3)]))  # removed
    # A late redelivery of an older reaction must not bring it back.
    await deliver(runtime, setup, envelope(messages=[thumbs], name="again"))
    message = await Message.find_one(Message.wamid == target["id"])
    assert [r.emoji for r in message.reactions if r.emoji] == []
    assert await Message.find_all().count() == 1  # reactions are not thread messages
    assert (await Conversation.find_one({})).unread_count == 1


async def test_reaction_to_an_unknown_message_is_kept_as_a_message(env):
    runtime, setup = env
    orphan = {"from": "972987654321", "id": new_wamid(), "timestamp": str(NOW), "type": "reaction",
              "reaction": {"message_id": "wamid.never-seen", "emoji": "😮"}}
    await deliver(runtime, setup, envelope(messages=[orphan]))
    stored = await Message.find_one({})
    assert stored.type == "reaction" and stored.content == {"message_id": "wamid.never-seen", "emoji": "😮"}


async def test_edit_and_revoke_apply_to_the_original_with_history(env):
    runtime, setup = env
    original = text_message("helo")
    await deliver(runtime, setup, envelope(messages=[original]))
    edit = {"from": "972987654321", "id": new_wamid(), "timestamp": str(NOW + 5), "type": "edit",
            "edit": {"original_message_id": original["id"], "message": {"type": "text", "text": {"body": "hello"}}}}
    await deliver(runtime, setup, envelope(messages=[edit]))
    await deliver(runtime, setup, envelope(messages=[edit], name="redelivered in another batch"))
    message = await Message.find_one(Message.wamid == original["id"])
    assert message.content == {"body": "hello"} and [e.content for e in message.edits] == [{"body": "helo"}]
    revoke = {"from": "972987654321", "id": new_wamid(), "timestamp": str(NOW + 9), "type": "revoke",
              "revoke": {"original_message_id": original["id"]}}
    await deliver(runtime, setup, envelope(messages=[revoke]))
    message = await Message.find_one(Message.wamid == original["id"])
    assert message.deleted_at is not None and message.content == {"body": "hello"} and len(message.edits) == 2
    assert await Message.find_all().count() == 1


async def test_user_changed_number_moves_the_contact(env):
    runtime, setup = env
    await deliver(runtime, setup, envelope(messages=[text_message("old number", from_="972987654321")]))
    change = {"from": "972987654321", "id": new_wamid(), "timestamp": str(NOW), "type": "system",
              "system": {"body": "User A changed from 972987654321 to 972912345678", "wa_id": "972912345678",
                         "type": "user_changed_number"}}
    await deliver(runtime, setup, envelope(messages=[change], contacts=[]))
    contacts = await Contact.find_all().to_list()
    assert len(contacts) == 1
    assert (contacts[0].wa_id, contacts[0].phone, contacts[0].previous_wa_ids) == (
        "972912345678", "+972912345678", ["972987654321"])
    await deliver(runtime, setup, envelope(messages=[text_message("new number", from_="972912345678")]))
    assert await Contact.find_all().count() == 1 and await Conversation.find_all().count() == 1


async def test_contact_without_wa_id_is_keyed_by_user_id(env):
    runtime, setup = env
    message = {"from_user_id": "US.123", "id": new_wamid(), "timestamp": str(NOW), "type": "text",
               "text": {"body": "hi from a username"}}
    contacts = [{"profile": {"name": "Anon", "username": "@anon"}, "user_id": "US.123"}]
    await deliver(runtime, setup, envelope(messages=[message], contacts=contacts))
    contact = await Contact.find_one({})
    assert (contact.key, contact.wa_id, contact.username, contact.phone) == ("user:US.123", None, "@anon", None)


async def test_the_newest_message_is_the_preview_even_when_it_reads_like_a_field_path(env):
    runtime, setup = env
    await deliver(runtime, setup, envelope(messages=[text_message("$last_message_at please", timestamp=NOW)]))
    await deliver(runtime, setup, envelope(messages=[text_message("an older one, delivered late", timestamp=NOW - 60)]))
    conversation = await Conversation.find_one({})
    assert conversation.last_message.text == "$last_message_at please"
    assert conversation.unread_count == 2 and conversation.last_message_at.timestamp() == NOW


async def test_resolved_conversation_reopens_and_window_follows_newest_message(env):
    runtime, setup = env
    await deliver(runtime, setup, envelope(messages=[text_message("one", timestamp=NOW)]))
    conversation = await Conversation.find_one({})
    await Conversation.find_one(Conversation.id == conversation.id).update(
        {"$set": {"status": "resolved", "unread_count": 0}})
    # An older message delivered late must not pull the window back.
    await deliver(runtime, setup, envelope(messages=[text_message("late", timestamp=NOW - 3600)]))
    conversation = await Conversation.find_one({})
    assert conversation.status == ConversationStatus.OPEN and conversation.unread_count == 1
    assert conversation.window_expires_at.timestamp() == NOW + 24 * 3600


async def test_same_event_three_times_and_same_messages_in_new_batches_store_once(env):
    runtime, setup = env
    batch = envelope(messages=[text_message(f"m{i}") for i in range(3)])
    for _ in range(3):
        await deliver(runtime, setup, batch)
    await deliver(runtime, setup, {**batch, "entry": batch["entry"] * 2})  # a different body, same messages
    assert await Message.find_all().count() == 3
    assert (await Conversation.find_one({})).unread_count == 3
    assert await WebhookEvent.find_all().count() == 2


async def test_batch_with_several_entries_changes_and_100_messages(env):
    runtime, setup = env
    second = await runtime.accounts.create(setup.workspace_id, __import__(
        "app.domains.accounts.services", fromlist=["NewAccount"]).NewAccount(
        name="Second", phone_number_id="5550001", waba_id="777", display_phone_number="15550001234",
        access_token="EAAG-second", app_secret="second-secret-0002"))
    first_changes = [envelope(messages=[text_message(f"a{i}-{j}", from_=f"97250000{i:04d}") for j in range(10)])
                     ["entry"][0]["changes"][0] for i in range(5)]
    second_changes = [envelope(messages=[text_message(f"b{i}-{j}", from_=f"97250000{i:04d}") for j in range(10)],
                               phone_number_id="5550001")["entry"][0]["changes"][0] for i in range(5)]
    payload = {"object": "whatsapp_business_account",
               "entry": [{"id": "1234567890987654321", "changes": first_changes}, {"id": "777", "changes": second_changes}]}
    assert await deliver(runtime, setup, payload) == ["ingested"]
    assert await Message.find_all().count() == 100
    assert await Contact.find_all().count() == 5
    assert await Conversation.find(Conversation.account_id == second.id).count() == 5
    assert {c.unread_count for c in await Conversation.find_all().to_list()} == {10}


async def test_worker_killed_mid_batch_rerun_gives_the_same_state(env, monkeypatch):
    """Ingestion dies after some messages (a worker killed); the rerun completes with no duplicates."""
    runtime, setup = env
    from app.domains.conversations.services import ConversationService

    payload = envelope(messages=[text_message(f"k{i}") for i in range(20)])
    await store_event(runtime, setup, payload)
    real = ConversationService.record_inbound
    calls = {"n": 0}

    async def dying(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 8:
            raise ConnectionError("worker killed")
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(ConversationService, "record_inbound", dying)
    with pytest.raises(ConnectionError):
        await ingest_pending(runtime)
    event = await WebhookEvent.find_one({})
    assert event.ingested_at is None and event.attempts == 1
    assert 0 < await Message.find_all().count() < 20
    monkeypatch.setattr(ConversationService, "record_inbound", real)
    assert await ingest_pending(runtime) == ["ingested"]
    assert await ingest_pending(runtime) == []
    assert await Message.find_all().count() == 20
    conversation = await Conversation.find_one({})
    # The message whose conversation update died was claimed but not counted: at most one short.
    assert conversation.unread_count in (19, 20)
    assert conversation.last_message.text == "k19"


async def test_edit_with_new_media_fetches_it_under_a_new_job(env):
    from redis.asyncio import Redis

    runtime, setup = env
    photo = {"from": "972987654321", "id": new_wamid(), "timestamp": str(NOW), "type": "image",
             "image": {"id": "501", "mime_type": "image/jpeg", "sha256": "a=", "caption": "old"}}
    await deliver(runtime, setup, envelope(messages=[photo]))
    edit = {"from": "972987654321", "id": new_wamid(), "timestamp": str(NOW + 1), "type": "edit",
            "edit": {"original_message_id": photo["id"], "message": {
                "type": "image", "image": {"id": "502", "mime_type": "image/png", "sha256": "b=", "caption": "new"}}}}
    await deliver(runtime, setup, envelope(messages=[edit]))
    message = await Message.find_one({})
    assert message.media.meta_media_id == "502" and message.media.state == "pending"
    assert message.content["caption"] == "new" and message.edits[0].content["caption"] == "old"
    redis = Redis.from_url(runtime.settings.redis_url)
    try:
        assert await redis.exists(f"arq:job:media:{message.id}:0", f"arq:job:media:{message.id}:1") == 2
    finally:
        await redis.aclose()
