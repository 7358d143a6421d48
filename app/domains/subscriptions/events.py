"""Integration events: what happened, stored once, fanned out to the subscriptions that want it.

Two ways in:
- ``emit()``: a service says exactly what happened (the contacts API creating a contact).
- ``on_live_event()``: a listener on LiveEvents. Every code path that changes a message or a
  conversation already publishes a live event for the inbox (ingest, outbox, sender, inbox
  actions, API), so hooking there covers them all without touching each one. The listener only
  enqueues a ``route`` job (nothing is read inline, so publishers stay fast); the job reads the
  documents and decides what happened:
    message.created, inbound           -> message.received (+ conversation.created / contact.created
                                          when it is the first message of the conversation / contact)
    message.created, internal "event"  -> conversation.updated (assign, team, status, snooze, labels)
    message.updated, outbound          -> message.status_changed per status reached (from status_at,
                                          so a skipped tick is not lost), message.failed on failure
    conversation.created               -> conversation.created
Each fact has a key (``message.received:<id>``...) unique per workspace, so whatever publishes
twice, or a job that runs twice, emits it once. A subscription gets the events that happened
after it was created.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from beanie import PydanticObjectId
from pydantic import BaseModel
from pymongo.errors import DuplicateKeyError

from app.changes import Changes
from app.db import as_utc, parse_object_id, utcnow
from app.domains.contacts.models import Contact
from app.domains.contacts.schemas import contact_out
from app.domains.conversations.models import Conversation
from app.domains.conversations.schemas import conversation_out
from app.domains.messages.models import Message, MessageStatus
from app.domains.messages.schemas import message_out
from app.domains.subscriptions.models import Delivery, EventType, IntegrationEvent, Subscription
from app.logging import get_logger

log = get_logger(__name__)

RETRY_WINDOW = timedelta(hours=24)
_ROUTED = {"message.created", "message.updated", "conversation.created"}
# Statuses an integration hears about (queued is our own outbox, not news).
_REPORTED = {s.value for s in MessageStatus} - {MessageStatus.QUEUED.value, MessageStatus.RECEIVED.value}
_CACHE_SECONDS = 300.0  # a change is heard at once (app/changes.py); this bounds a lost message
TOPIC = "subscriptions"

Enqueue = Callable[..., Awaitable[Any]]


def event_body(event_id: PydanticObjectId, type_: str, workspace_id: PydanticObjectId, created_at: datetime,
               data: dict[str, Any]) -> str:
    return json.dumps({"id": f"evt_{event_id}", "type": type_, "created_at": as_utc(created_at).isoformat(),
                       "workspace_id": str(workspace_id), "data": data}, separators=(",", ":"), default=str)


class IntegrationEvents:
    """Emits events and creates their deliveries; the Deliverer (delivery.py) sends them."""

    def __init__(self, enqueue_route: Enqueue, enqueue_delivery: Enqueue, *, changes: Changes | None = None) -> None:
        self._enqueue_route = enqueue_route
        self._enqueue_delivery = enqueue_delivery
        self._active: dict[str, tuple[float, bool]] = {}
        self.changes = changes
        if changes is not None:
            changes.on(TOPIC, self._forget)

    # -- which workspaces listen (cached per process, dropped in every process by ``changed``) ----
    async def has_subscriptions(self, workspace_id: PydanticObjectId | str) -> bool:
        key = str(workspace_id)
        cached = self._active.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        oid = parse_object_id(key)
        found = oid is not None and await Subscription.find_one(
            Subscription.workspace_id == oid, Subscription.active == True) is not None  # noqa: E712
        self._active[key] = (time.monotonic() + _CACHE_SECONDS, found)
        return found

    async def changed(self, workspace_id: PydanticObjectId | str) -> None:
        """A subscription of the workspace changed: no process routes from its old answer."""
        if self.changes is None:
            self._forget(str(workspace_id))
        else:
            await self.changes.publish(TOPIC, str(workspace_id))

    def _forget(self, workspace_id: str | None) -> None:
        if workspace_id is None:
            self._active.clear()
        else:
            self._active.pop(workspace_id, None)

    # -- the LiveEvents listener ------------------------------------------------------------------
    async def on_live_event(self, workspace_id: PydanticObjectId | str, event: str, data: dict[str, Any]) -> None:
        if event not in _ROUTED or not await self.has_subscriptions(workspace_id):
            return
        ids = {k: str(v) for k, v in data.items() if k in ("message_id", "conversation_id")}
        await self._enqueue_route(str(workspace_id), event, ids)

    async def route(self, workspace_id: str, event: str, ids: dict[str, str]) -> int:
        """Turn one live event into integration events (the arq job); returns how many were new."""
        wid = parse_object_id(workspace_id)
        if wid is None:
            return 0
        if event == "conversation.created":
            conversation = await Conversation.find_one({"_id": parse_object_id(ids.get("conversation_id")),
                                                        "workspace_id": wid})
            return await self._conversation_created(conversation) if conversation else 0
        message = await Message.find_one({"_id": parse_object_id(ids.get("message_id")), "workspace_id": wid})
        if message is None:
            return 0
        if event == "message.created":
            return await self._message_created(message)
        return await self._message_updated(message)

    async def _message_created(self, message: Message) -> int:
        emitted = 0
        if message.direction == "internal":
            if message.type != "event" or not isinstance(message.content, dict):
                return 0  # notes are for agents only
            conversation = await Conversation.get(message.conversation_id)
            if conversation is None:
                return 0
            contact = await Contact.get(conversation.contact_id)
            change = {k: v for k, v in message.content.items()}
            data = {"conversation": conversation_out(conversation, contact).model_dump(mode="json"),
                    "change": change, "by_user_id": str(message.sent_by) if message.sent_by else None}
            return int(await self.emit(message.workspace_id, EventType.CONVERSATION_UPDATED,
                                       f"conversation.updated:{message.id}", data, message.timestamp))
        first_of = await self._firsts(message)
        if "contact" in first_of:
            contact = await Contact.get(message.contact_id)
            if contact is not None:
                emitted += await self.emit(message.workspace_id, EventType.CONTACT_CREATED,
                                           f"contact.created:{contact.id}", {"contact": _dump(contact_out(contact))},
                                           contact.created_at)
        if "conversation" in first_of:
            conversation = await Conversation.get(message.conversation_id)
            if conversation is not None:
                emitted += await self._conversation_created(conversation)
        if message.direction == "inbound":
            conversation = await Conversation.get(message.conversation_id)
            contact = await Contact.get(message.contact_id)
            data = {"message": _dump(message_out(message)),
                    "conversation": _dump(conversation_out(conversation, contact)) if conversation else None,
                    "contact": _dump(contact_out(contact)) if contact else None}
            emitted += await self.emit(message.workspace_id, EventType.MESSAGE_RECEIVED,
                                       f"message.received:{message.id}", data, message.timestamp)
        return emitted

    async def _firsts(self, message: Message) -> set[str]:
        """Is this the first customer-visible message of its conversation / of its contact?"""
        earlier = {"workspace_id": message.workspace_id, "_id": {"$lt": message.id},
                   "direction": {"$in": ["inbound", "outbound"]}}
        firsts = set()
        if await Message.find_one({**earlier, "conversation_id": message.conversation_id}) is None:
            firsts.add("conversation")
            if await Message.find_one({**earlier, "contact_id": message.contact_id}) is None:
                firsts.add("contact")
        return firsts

    async def _conversation_created(self, conversation: Conversation) -> int:
        contact = await Contact.get(conversation.contact_id)
        data = {"conversation": _dump(conversation_out(conversation, contact)),
                "contact": _dump(contact_out(contact)) if contact else None}
        return int(await self.emit(conversation.workspace_id, EventType.CONVERSATION_CREATED,
                                   f"conversation.created:{conversation.id}", data, conversation.created_at))

    async def _message_updated(self, message: Message) -> int:
        if message.direction != "outbound":
            return 0
        emitted = 0
        body = _dump(message_out(message))
        reached = sorted(((as_utc(at), status) for status, at in message.status_at.items() if status in _REPORTED))
        for at, status in reached:
            data = {"message": body, "status": status, "status_at": at.isoformat()}
            emitted += await self.emit(message.workspace_id, EventType.MESSAGE_STATUS_CHANGED,
                                       f"message.status_changed:{message.id}:{status}:{at.isoformat()}", data, at)
            if status == MessageStatus.FAILED.value and message.status is MessageStatus.FAILED:
                error = body.get("error")
                emitted += await self.emit(message.workspace_id, EventType.MESSAGE_FAILED,
                                           f"message.failed:{message.id}:{at.isoformat()}",
                                           {"message": body, "error": error}, at)
        return emitted

    # -- emitting ---------------------------------------------------------------------------------
    async def emit(self, workspace_id: PydanticObjectId, type_: EventType | str, key: str,
                   data: dict[str, Any] | BaseModel, occurred_at: datetime | None = None) -> bool:
        """Store the event once (by key) and queue a delivery to every subscription that wants it.

        Returns False when this fact was already emitted or nobody listens.
        """
        type_ = str(type_)
        occurred_at = as_utc(occurred_at or utcnow())
        subscriptions = await Subscription.scoped(workspace_id, Subscription.active == True,  # noqa: E712
                                                  Subscription.events == type_).to_list()
        # A subscription hears what happened after it was made (1 s of slack for clock rounding).
        wanted = [s for s in subscriptions if as_utc(s.created_at) - timedelta(seconds=1) <= occurred_at]
        if not wanted:
            return False
        payload = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
        now = utcnow()
        event = IntegrationEvent(workspace_id=workspace_id, key=key, type=type_, occurred_at=occurred_at, body="",
                                 created_at=now)
        event.id = PydanticObjectId()
        event.body = event_body(event.id, type_, workspace_id, now, payload)
        try:
            await event.insert()
        except DuplicateKeyError:
            return False
        for subscription in wanted:
            await self.queue_delivery(subscription, event)
        return True

    async def queue_delivery(self, subscription: Subscription, event: IntegrationEvent) -> Delivery | None:
        now = utcnow()
        delivery = Delivery(workspace_id=subscription.workspace_id, subscription_id=subscription.id,
                            event_id=event.id, event_type=event.type, next_attempt_at=now,
                            retry_until=now + RETRY_WINDOW, created_at=now, updated_at=now)
        try:
            await delivery.insert()
        except DuplicateKeyError:
            return None
        await self._enqueue_delivery(str(delivery.id), 0)
        return delivery


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")
