"""Business hours settings, the inbox's "closed" notice, and the automatic replies to customers.

The webhook path only asks a per-process cached question (does this workspace reply automatically?)
through the LiveEvents listener ``on_live_event``; when it does, an arq job (``answer_customer``)
reads the message and sends the greeting and / or the away message through the one send path,
``OutboxService.send``. Each reply carries an idempotency key (the greeting: its conversation; the
away message: its conversation and closed period), backed by the messages' unique index on it, so a
job run twice, or by two workers at once, sends nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from arq.connections import ArqRedis
from beanie import PydanticObjectId
from pymongo.errors import DuplicateKeyError

from app.cache import SharedCache
from app.changes import Changes
from app.db import as_utc, parse_object_id, utcnow
from app.domains.business_hours.models import BusinessHours
from app.domains.business_hours.rules import (
    DAYS,
    form_error,
    is_open,
    opens_label,
    period_key,
    validate_hours,
    values_from_form,
)
from app.domains.contacts.consent import NO_EXTRA, KeywordLookup, keyword_consent
from app.domains.contacts.models import Contact
from app.domains.conversations.models import Conversation
from app.domains.messages.models import Message
from app.errors import ClientError, ValidationFailed
from app.logging import get_logger
from app.queue import enqueue_auto_reply

if TYPE_CHECKING:
    from app.domains.outbox.service import OutboxService

log = get_logger(__name__)

TOPIC = "business_hours"
_CACHE_SECONDS = 300.0  # as subscriptions: a change is heard at once (app/changes.py); this bounds a lost one
NOT_WRITING = frozenset({"reaction", "system", "edit", "revoke", "request_welcome", "ephemeral"})
"""Inbound types that are not the customer writing to us: no automatic reply."""
VIA = "automation"


class NotYet(Exception):
    """The message's conversation does not show its service window yet (ingestion is finishing): try later."""


class BusinessHoursService:
    def __init__(self, outbox: OutboxService | None = None, *, arq: Callable[[], ArqRedis | None] = lambda: None,
                 changes: Changes | None = None, clock: Callable[[], datetime] = utcnow,
                 keywords: KeywordLookup | None = None) -> None:
        self.outbox = outbox
        self.keywords = keywords
        """The workspace's extra STOP / START words (cached): keywords get no automatic reply."""
        self._arq = arq
        self.clock = clock
        """What time it is for the rules (tests freeze it; the service window is always the real clock's)."""
        self._cache: SharedCache[BusinessHours | None] = SharedCache(TOPIC, _CACHE_SECONDS, changes)

    # -- settings -------------------------------------------------------------------------------------
    async def cached(self, workspace_id: PydanticObjectId | str) -> BusinessHours | None:
        """The stored settings from this process's copy (None: never saved). Never change the result."""
        key = str(workspace_id)

        async def load() -> BusinessHours | None:
            oid = parse_object_id(key)
            return await BusinessHours.find_one_scoped(oid) if oid is not None else None

        return await self._cache.get(key, load)

    async def zone(self, workspace_id: PydanticObjectId | str) -> ZoneInfo:
        """The workspace's time zone (its business hours'; UTC when never saved or unknown): reports' days."""
        hours = await self.cached(workspace_id)
        try:
            return ZoneInfo(hours.time_zone if hours is not None and hours.time_zone else "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")

    async def current(self, workspace_id: PydanticObjectId) -> BusinessHours:
        """The stored settings, or the defaults (off, Monday to Friday nine to five, UTC) when never saved."""
        found = await BusinessHours.find_one_scoped(workspace_id)
        return found if found is not None else BusinessHours(workspace_id=workspace_id)

    async def update(self, workspace_id: PydanticObjectId, fields: dict[str, Any]) -> BusinessHours:
        """Change the named fields (``weekly``: the named days), validated as a whole; ValidationFailed
        (422, one message per field) when anything is wrong, and then nothing is saved."""
        settings = await self.current(workspace_id)
        values = self.values(settings)
        for name, value in fields.items():
            if name == "weekly" and isinstance(value, dict):
                values["weekly"] = {**values["weekly"], **value}
            else:
                values[name] = value
        checked = validate_hours(values)
        for name, value in checked.items():
            setattr(settings, name, value)
        settings.updated_at = utcnow()
        if settings.id is None:
            try:
                await settings.insert()
            except DuplicateKeyError:  # saved meanwhile by another request: this one wins
                stored = await BusinessHours.find_one_scoped(workspace_id)
                if stored is None:
                    raise
                settings.id = stored.id
                await settings.replace()
        else:
            await settings.replace()
        await self._cache.changed(workspace_id)
        return settings

    async def update_from_form(self, workspace_id: PydanticObjectId, form: dict[str, str]) -> BusinessHours:
        """The admin form's fields; errors are named after the form's fields."""
        try:
            return await self.update(workspace_id, values_from_form(form))
        except ValidationFailed as error:
            raise form_error(error) from None

    @staticmethod
    def values(settings: BusinessHours) -> dict[str, Any]:
        """The settings as plain values (the API's shape, and ``update``'s starting point)."""
        return {"enabled": settings.enabled, "time_zone": settings.time_zone,
                "weekly": {day: [i.model_dump() for i in settings.weekly.get(day, [])] for day in DAYS},
                "holidays": [h.model_dump() for h in settings.holidays],
                "away_message": settings.away_message, "greeting_message": settings.greeting_message}

    def view(self, settings: BusinessHours) -> dict[str, Any]:
        """The API's answer: the values, with whether it is open now and when it opens next."""
        now = self.clock()
        open_now = is_open(settings, now)
        return {**self.values(settings), "open_now": open_now,
                "opens": None if open_now else opens_label(settings, now) or None,
                "updated_at": settings.updated_at.isoformat() if settings.id is not None else None}

    async def closed_notice(self, workspace_id: PydanticObjectId) -> str | None:
        """"Outside business hours (opens Mon 09:00)" while closed, for the inbox; None while open or off.
        One cached read."""
        settings = await self.cached(workspace_id)
        if settings is None or not settings.enabled:
            return None
        now = self.clock()
        if is_open(settings, now):
            return None
        label = opens_label(settings, now)
        return f"Outside business hours (opens {label})" if label else "Outside business hours"

    # -- the automatic replies ------------------------------------------------------------------------
    async def on_live_event(self, workspace_id: PydanticObjectId | str, event: str, data: dict[str, Any]) -> None:
        """LiveEvents listener: a new message in a workspace that replies automatically queues a job. In
        one that does not, it costs the cached answer only (no database operation)."""
        if event != "message.created" or "message_id" not in data or data.get("direction") != "inbound":
            return  # only ingestion says "inbound": the business's own sends never queue a job
        settings = await self.cached(workspace_id)
        if settings is None or not settings.replies:
            return
        arq = self._arq()
        if arq is not None:
            await enqueue_auto_reply(arq, str(workspace_id), str(data["message_id"]))

    async def answer_inbound(self, workspace_id: str, message_id: str) -> str:
        """The job: greet a new conversation, and answer a customer who writes while closed. Returns what
        was done, in words (for the job's result). Raises NotYet while the conversation's window is not
        recorded yet."""
        wid, oid = parse_object_id(workspace_id), parse_object_id(message_id)
        if wid is None or oid is None:
            return "bad ids"
        settings = await self.cached(wid)
        if settings is None or not settings.replies:
            return "off"
        message = await Message.find_one({"_id": oid, "workspace_id": wid})
        if message is None or message.direction != "inbound":
            return "not a customer's message"
        if message.sender_contact_id is not None or message.type in NOT_WRITING:
            return "not answered: a group, a reaction, an edit or a system message"
        if message.type == "text" and isinstance(message.content, dict) and \
                keyword_consent(message.content.get("body"),
                                await self.keywords.extra_words(wid) if self.keywords else NO_EXTRA) is not None:
            return "not answered: a STOP / START keyword"
        conversation = await Conversation.find_one({"_id": message.conversation_id, "workspace_id": wid})
        contact = await Contact.find_one({"_id": message.contact_id, "workspace_id": wid})
        if conversation is None or contact is None or contact.kind == "group":
            return "not answered: no conversation, or a group"
        if not conversation.window_open():
            if as_utc(message.timestamp) > utcnow() - timedelta(hours=23):
                raise NotYet(str(message.id))
            return "not answered: the service window is closed"
        done = []
        if settings.greeting_message and await self._first_of_conversation(message):
            if await self._reply(conversation, contact, settings.greeting_message, f"auto:greeting:{conversation.id}"):
                done.append("greeting")
        at = self.clock()
        if settings.enabled and settings.away_message and not is_open(settings, at):
            key = f"auto:away:{conversation.id}:{period_key(settings, at)}"
            if await self._reply(conversation, contact, settings.away_message, key):
                done.append("away")
        return " + ".join(done) or "nothing to send"

    async def _first_of_conversation(self, message: Message) -> bool:
        """No customer-visible message before this one in its conversation (a new conversation)."""
        earlier = await Message.find_one({"workspace_id": message.workspace_id, "conversation_id": message.conversation_id,
                                          "_id": {"$lt": message.id}, "direction": {"$in": ["inbound", "outbound"]}})
        return earlier is None

    async def _reply(self, conversation: Conversation, contact: Contact, text: str, key: str) -> bool:
        """Send ``text`` once per ``key``; False when it was sent before (or cannot be sent).

        The read first only tells "sent before" apart; what makes it once is the send's own idempotency
        key (the messages' unique index): two workers racing past the read still store one message."""
        from app.domains.outbox.service import Draft

        if self.outbox is None:
            raise RuntimeError("BusinessHoursService needs the outbox to reply")
        if await Message.find_one({"workspace_id": conversation.workspace_id, "idempotency_key": key}) is not None:
            return False
        try:
            await self.outbox.send(conversation.workspace_id, conversation, Draft(type="text", content={"body": text}),
                                   via=VIA, idempotency_key=key, contact=contact)
        except ClientError as error:  # the number is stopped or disabled, the window closed meanwhile ...
            log.info("automatic reply not sent", conversation_id=str(conversation.id), reason=error.error_code)
            return False
        return True
