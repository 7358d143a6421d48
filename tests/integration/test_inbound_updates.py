"""Ingestion of statuses, template / number / account updates, preferences, and the live events."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from app.db import utcnow
from app.domains.contacts.models import Contact
from app.domains.messages.models import Message, MessageStatus, PendingStatus
from app.domains.webhooks.models import WebhookEvent
from tests.support.inbound import (
    deliver,
    envelope,
    ingest_pending,
    make_setup,
    new_wamid,
    outbound,
    signed,
    status,
    text_message,
    wait_for,
)

NOW = int(time.time())


@pytest.fixture
async def env(client_factory):
    client = await client_factory()
    runtime = client.app.state.runtime
    return runtime, await make_setup(runtime)



async def test_statuses_move_forward_only_and_keep_failure_details(env):
    runtime, setup = env
    wamid = new_wamid()
    message = await outbound(setup, wamid)
    await deliver(runtime, setup, envelope(statuses=[status(wamid, "read", NOW + 3, category="utility"),
                                                     status(wamid, "delivered", NOW + 2),
                                                     status(wamid, "sent", NOW + 1)]))
    stored = await Message.get(message.id)
    assert stored.status == MessageStatus.READ and stored.pricing_category == "utility"
    await deliver(runtime, setup, envelope(statuses=[status(wamid, "played", NOW + 4)]))
    assert (await Message.get(message.id)).status == MessageStatus.PLAYED
    failing = await outbound(setup, new_wamid(), MessageStatus.SENT)
    error = {"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
             "error_data": {"details": "More than 24 hours have passed"}}
    await deliver(runtime, setup, envelope(statuses=[status(failing.wamid, "failed", NOW, errors=[error])]))
    failed = await Message.get(failing.id)
    assert failed.status == MessageStatus.FAILED
    assert (failed.error.code, failed.error.title, failed.error.detail) == (
        131047, "Re-engagement message", "More than 24 hours have passed")
    await deliver(runtime, setup, envelope(statuses=[status(failing.wamid, "delivered", NOW + 1)]))
    assert (await Message.get(failing.id)).status == MessageStatus.FAILED


async def test_status_before_its_message_is_kept_and_applied_when_it_appears(env):
    runtime, setup = env
    from app.domains.messages.status import apply_pending_statuses

    wamid = new_wamid()
    await deliver(runtime, setup, envelope(statuses=[status(wamid, "delivered", NOW + 2), status(wamid, "sent", NOW + 1)]))
    assert {p.status for p in await PendingStatus.find_all().to_list()} == {MessageStatus.DELIVERED, MessageStatus.SENT}
    message = await outbound(setup, wamid)  # the sender stores the wamid after Meta's answer
    assert await apply_pending_statuses(message) == [MessageStatus.SENT, MessageStatus.DELIVERED]
    assert (await Message.get(message.id)).status == MessageStatus.DELIVERED
    assert await PendingStatus.find_all().count() == 0


async def test_a_status_that_beats_the_send_answer_is_applied_a_moment_later(client_factory):
    """Meta's 'delivered' webhook can arrive before the worker has stored the send's wamid: the
    endpoint keeps it and looks again a second later; the tick shows without anything else happening."""
    client = await client_factory()
    runtime = client.app.state.runtime
    setup = await make_setup(runtime)
    wamid = new_wamid()
    message = await outbound(setup, None, MessageStatus.QUEUED)  # sent to Meta, its answer not recorded yet
    body, headers = signed(envelope(statuses=[status(wamid, "delivered", NOW + 2)]))
    assert (await client.post(setup.webhook_path, content=body, headers=headers)).status_code == 200
    assert await PendingStatus.find_all().count() == 1
    await Message.get_motor_collection().update_one(  # the sender records Meta's answer
        {"_id": message.id}, {"$set": {"wamid": wamid, "status": MessageStatus.ACCEPTED.value}})

    async def delivered_and_settled():  # the tick is applied, then what waited is cleared
        return ((await Message.get(message.id)).status == MessageStatus.DELIVERED
                and await PendingStatus.find_all().count() == 0)

    await wait_for(delivered_and_settled, timeout=10)


async def test_the_outbox_sweeper_applies_early_statuses_another_process_kept(env):
    from app.domains.messages.status import apply_waiting_statuses

    runtime, setup = env
    wamid = new_wamid()
    await deliver(runtime, setup, envelope(statuses=[status(wamid, "read", NOW + 3)]))  # kept: no such wamid yet
    message = await outbound(setup, wamid)
    assert await apply_waiting_statuses() == []  # within the settle time (its own process looks again): left alone
    await PendingStatus.get_motor_collection().update_many({}, {"$set": {"received_at": utcnow() - timedelta(seconds=3)}})
    [(changed, applied)] = await apply_waiting_statuses()
    assert (changed.id, applied) == (message.id, [MessageStatus.READ])
    assert (await Message.get(message.id)).status == MessageStatus.READ and await PendingStatus.find_all().count() == 0


async def test_unknown_status_values_and_fields_are_noted_not_errors(env):
    runtime, setup = env
    wamid = new_wamid()
    await outbound(setup, wamid, MessageStatus.SENT)
    odd = {**status(wamid, "deleted", NOW), "brand_new": {"x": 1}}
    assert await deliver(runtime, setup, envelope(statuses=[odd])) == ["ingested"]
    event = await WebhookEvent.find_one({})
    assert event.error is None and any("deleted" in n for n in event.notes)


async def test_template_and_account_updates_are_recorded(env):
    runtime, setup = env
    from app.domains.accounts.models import WhatsAppAccount
    from app.domains.templates.models import MessageTemplate
    from app.domains.webhooks.models import TemplateStatusEvent

    await MessageTemplate(workspace_id=setup.workspace_id, waba_id=setup.account.waba_id, meta_id="594425479261596",
                          name="order_update", language="en_US", category="UTILITY", status="PENDING").insert()

    def change(field, value):
        return {"object": "whatsapp_business_account",
                "entry": [{"id": setup.account.waba_id, "time": NOW, "changes": [{"field": field, "value": value}]}]}

    await deliver(runtime, setup, change("message_template_status_update", {
        "event": "REJECTED", "message_template_id": 594425479261596, "message_template_name": "order_update",
        "message_template_language": "en_US", "reason": "INVALID_FORMAT"}))
    await deliver(runtime, setup, change("message_template_quality_update", {
        "previous_quality_score": "GREEN", "new_quality_score": "YELLOW", "message_template_id": 594425479261596,
        "message_template_name": "order_update", "message_template_language": "en_US"}))
    await deliver(runtime, setup, change("phone_number_quality_update", {
        "display_phone_number": setup.account.display_phone_number, "event": "UPGRADE", "current_limit": "TIER_10K"}))
    await deliver(runtime, setup, change("phone_number_name_update", {
        "display_phone_number": setup.account.display_phone_number, "decision": "APPROVED",
        "requested_verified_name": "Shop Ltd"}))
    await deliver(runtime, setup, change("account_update", {"phone_number": setup.account.display_phone_number,
                                                            "event": "ACCOUNT_VIOLATION",
                                                            "violation_info": {"violation_type": "SPAM"}}))
    template = await MessageTemplate.find_one({})
    assert (template.status, template.rejected_reason, template.quality_score) == ("REJECTED", "INVALID_FORMAT", "YELLOW")
    assert await TemplateStatusEvent.find_all().count() == 2
    account = await WhatsAppAccount.get(setup.account.id)
    assert account.health.messaging_limit_tier == "TIER_10K"
    assert (account.health.name_status, account.health.verified_name) == ("APPROVED", "Shop Ltd")
    assert [e["field"] for e in account.health.account_events] == [
        "phone_number_quality_update", "phone_number_name_update", "account_update"]
    # Re-ingesting the same body adds nothing.
    await WebhookEvent.get_motor_collection().update_many({}, {"$set": {"ingested_at": None}})
    await ingest_pending(runtime)
    assert len((await WhatsAppAccount.get(setup.account.id)).health.account_events) == 3
    assert await TemplateStatusEvent.find_all().count() == 2


async def test_marketing_opt_out_from_user_preferences(env):
    runtime, setup = env
    value = {"messaging_product": "whatsapp", "metadata": {"phone_number_id": setup.account.phone_number_id},
             "user_preferences": [{"wa_id": "16505551234", "category": "marketing_messages", "value": "stop",
                                   "timestamp": NOW}]}
    await deliver(runtime, setup, {"object": "whatsapp_business_account", "entry": [
        {"id": setup.account.waba_id, "changes": [{"field": "user_preferences", "value": value}]}]})
    assert (await Contact.find_one({})).opted_out_marketing is True


async def test_live_events_for_messages_statuses_and_conversations(env):
    import asyncio
    import json as _json

    from redis.asyncio import Redis

    from app.realtime import workspace_channel

    runtime, setup = env
    redis = Redis.from_url(runtime.settings.redis_url)
    pubsub = redis.pubsub()
    await pubsub.subscribe(workspace_channel(setup.workspace_id))
    try:
        wamid = new_wamid()
        sent = await outbound(setup, wamid, MessageStatus.ACCEPTED)
        await deliver(runtime, setup, envelope(messages=[text_message("live")], statuses=[status(wamid, "sent", NOW)]))
        events = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 2.0
        while loop.time() < deadline and not {"message.updated", "conversation.updated"} <= {e["event"] for e in events}:
            # get_message() returns None for the subscribe confirmation too: keep reading until the bound.
            item = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if item is not None:
                events.append(_json.loads(item["data"]))
                # Every event carries its place in the workspace's sequence (tabs resume from it).
                assert isinstance(events[-1].pop("seq"), str)
    finally:
        await pubsub.aclose()
        await redis.aclose()
    names = [e["event"] for e in events]
    inbound = await Message.find_one(Message.direction == "inbound")
    assert {"event": "message.created", "message_id": str(inbound.id),
            "conversation_id": str(inbound.conversation_id), "direction": "inbound"} in events
    assert "conversation.updated" in names
    assert any(e["event"] == "message.updated" and e["message_id"] == str(sent.id) and e["status"] == "sent"
               for e in events)
