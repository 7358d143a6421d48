"""Sending a broadcast: resumable slices that hand recipients to the outbox, never faster than it sends.

Each slice is an arq job (``send_broadcast``, job id = broadcast and generation) holding the broadcast
by a lease; it freezes the audience on its first run, then takes pending recipients in ``_id`` order
and stores each one's message through ``OutboxService.send`` at bulk priority (the number's drainer
paces them at its messages per second; agent replies overtake). A recipient is marked queued in the
same pass, and the message's idempotency key (``bc:<broadcast>:<contact>``) makes a slice cut short
and run again store nothing twice: one message per contact per broadcast, ever.

It keeps at most ``AHEAD_SECONDS`` of the number's rate queued ahead of the drainer, so a pause stops
sending within seconds and the worker's memory does not grow with the audience; it counts the
number's unique recipients of the last 24 h against Meta's daily messaging limit for its tier and
waits for the window to roll when it is reached (saying so); errors that mean the number must stop
(131048, 131049, 368, quality RED, the token or the template gone) pause it with the reason.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from beanie import PydanticObjectId
from pymongo import ReturnDocument, UpdateOne

from app.db import as_utc, parse_object_id, utcnow
from app.domains.accounts.models import WhatsAppAccount
from app.domains.broadcasts import audience
from app.domains.broadcasts.models import Broadcast, BroadcastRecipient, ParamSource
from app.domains.contacts.models import Contact
from app.domains.conversations.models import ConversationStatus
from app.domains.conversations.services import ConversationService
from app.domains.messages.models import Message
from app.domains.outbox.service import BulkSend, Draft, OutboxService
from app.domains.templates.models import MessageTemplate
from app.errors import AppError
from app.logging import get_logger
from app.realtime import LiveEvents

log = get_logger(__name__)

LEASE = timedelta(seconds=60)
SLICE_SECONDS = 45.0
BATCH = 100
AHEAD_SECONDS = 20
"""At most this many seconds of the number's rate stored and not yet sent."""
DAILY_LIMITS = {"TIER_250": 250, "TIER_1K": 1000, "TIER_10K": 10_000, "TIER_100K": 100_000}
"""Meta's daily messaging limit: unique customers a number may start conversations with in a rolling 24 h."""
STOPPING_CODES = {131048: "spam rate limit hit (131048): Meta limits this number's messages",
                  131049: "Meta did not deliver marketing messages to keep engagement healthy (131049)",
                  368: "the number is temporarily blocked for policy violations (368)"}
PAUSING_ERRORS = {"TEMPLATE_NOT_APPROVED", "ACCOUNT_DISABLED", "ACCOUNT_TOKEN_INVALID"}
PROGRESS_EVERY = 1.0
LIST_WAIT = 5.0
"""Seconds between looks at an uploaded list still being imported when a scheduled broadcast is due."""


class BroadcastSender:
    def __init__(self, outbox: OutboxService, live: LiveEvents,
                 enqueue: Callable[[str, int, float], Awaitable[Any]],
                 emit: Callable[..., Awaitable[Any]] | None = None) -> None:
        self.outbox = outbox
        self.live = live
        self._emit = emit
        """IntegrationEvents.emit: broadcast.completed / broadcast.paused for event webhooks."""
        self._enqueue = enqueue
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self.conversations = ConversationService()

    async def run_slice(self, broadcast_id: str) -> str:
        oid = parse_object_id(broadcast_id)
        if oid is None:
            return "bad id"
        now = utcnow()
        raw = await Broadcast.get_motor_collection().find_one_and_update(
            {"_id": oid, "status": "sending", "$or": [{"lease_until": None}, {"lease_until": {"$lt": now}}]},
            {"$set": {"owner": self.owner, "lease_until": now + LEASE}, "$inc": {"generation": 1}},
            return_document=ReturnDocument.AFTER)
        if raw is None:
            return "not sending, or held by another worker"
        broadcast = Broadcast.model_validate(raw)
        try:
            return await self._slice(broadcast)
        finally:
            await Broadcast.find_one({"_id": broadcast.id, "owner": self.owner}).update(
                {"$set": {"owner": None, "lease_until": None}})

    async def _slice(self, broadcast: Broadcast) -> str:
        account = await WhatsAppAccount.find_one({"_id": broadcast.account_id, "workspace_id": broadcast.workspace_id})
        template = await MessageTemplate.find_one({"workspace_id": broadcast.workspace_id,
                                                   "waba_id": account.waba_id if account else None,
                                                   "name": broadcast.template_name, "language": broadcast.language})
        problem = _stop_reason(account, template)
        if problem is not None:
            return await self.pause(broadcast, problem)
        assert account is not None and template is not None
        marketing = template.category == "MARKETING"
        if broadcast.frozen_at is None and await audience.lists_importing(broadcast.workspace_id, broadcast.audience):
            await self._enqueue(str(broadcast.id), broadcast.generation, LIST_WAIT)  # scheduled before it was imported
            return "waiting for an uploaded list to be imported"
        if broadcast.frozen_at is None:
            total, seq_end = await audience.freeze(
                broadcast.workspace_id, broadcast.id, broadcast.audience,  # type: ignore[arg-type]
                marketing=marketing, local_time=broadcast.local_time, zone=await self._zone(broadcast),
                each_batch=lambda: self._hold(broadcast))
            now = utcnow()
            await Broadcast.find_one({"_id": broadcast.id}).update(
                {"$set": {"frozen_at": now, "total": total, "seq_end": seq_end, "cursor": 0}})
            broadcast.total, broadcast.frozen_at, broadcast.seq_end, broadcast.cursor = total, now, seq_end, 0
            await self.announce(broadcast)
        await self._release_claims(broadcast)
        # A failure that must stop the number pauses it at once (on_failed); this catches one whose pause was
        # lost (the worker died in between).
        stopped = await self._stopping_failure(broadcast)
        if stopped is not None:
            return await self.pause(broadcast, stopped)
        deadline = time.monotonic() + SLICE_SECONDS
        announced = time.monotonic()
        while time.monotonic() < deadline:
            current = await Broadcast.find_one({"_id": broadcast.id})
            if current is None or current.status != "sending":
                return current.status if current else "gone"
            broadcast = current
            account = await WhatsAppAccount.find_one({"_id": broadcast.account_id}) or account
            stopped = _stop_reason(account, template) or _spam_limited(account, broadcast)
            if stopped is not None:
                return await self.pause(broadcast, stopped)
            room = await self._room(broadcast, account)
            if isinstance(room, str):  # the daily limit: wait for the window to roll
                return room
            if room <= 0:
                await self._enqueue(str(broadcast.id), broadcast.generation, 1.0)  # the drainer catches up
                return "waiting for the outbox"
            pending: dict[str, Any] = {"broadcast_id": broadcast.id, "status": "pending"}
            cursor = None
            if broadcast.local_time:  # each at their own local time: the due ones, earliest first
                batch = await BroadcastRecipient.find({**pending, "not_before": {"$lte": utcnow()}}
                                                      ).sort("not_before").limit(min(BATCH, room)).to_list()
            elif broadcast.seq_end is not None:  # the next places
                batch, cursor = await self._next_places(broadcast, min(BATCH, room))
                if not batch and await self._rewound(broadcast):
                    continue
            else:  # frozen before places existed
                batch = await BroadcastRecipient.find(pending).sort("_id").limit(min(BATCH, room)).to_list()
            if not batch:
                later = await BroadcastRecipient.find(pending).sort("not_before").first_or_none() \
                    if broadcast.local_time else None
                if later is not None and later.not_before is not None:
                    await Broadcast.find_one({"_id": broadcast.id}).update(
                        {"$set": {"next_send_at": later.not_before}})
                    await self.announce(broadcast)
                    return f"waiting for local send times: next at {as_utc(later.not_before):%Y-%m-%d %H:%M} UTC"
                return await self.complete(broadcast)
            outcome = await self._send_batch(broadcast, account, template, batch)
            if outcome is not None:
                return await self.pause(broadcast, outcome)
            if cursor is not None:
                await Broadcast.find_one({"_id": broadcast.id}).update({"$set": {"cursor": cursor}})
            if time.monotonic() - announced >= PROGRESS_EVERY:
                await self.announce(broadcast)
                announced = time.monotonic()
        await self._enqueue(str(broadcast.id), broadcast.generation, 0.0)
        return "continues"

    async def _next_places(self, broadcast: Broadcast, want: int) -> tuple[list[BroadcastRecipient], int]:
        """Up to ``want`` pending recipients from the cursor on, and the cursor after them. Each read is a range of
        places no longer than what is still wanted (a server that reads a whole match before a limit reads only
        that), so a batch costs the same at the end of a million recipients as at the start."""
        assert broadcast.seq_end is not None
        cursor, batch = broadcast.cursor, []
        while len(batch) < want and cursor < broadcast.seq_end:
            end = min(broadcast.seq_end, cursor + want - len(batch))
            found = await BroadcastRecipient.find({"broadcast_id": broadcast.id, "seq": {"$gte": cursor, "$lt": end}}
                                                  ).sort("seq").to_list()
            batch += [r for r in found if r.status == "pending"]
            cursor = end
        if not batch and cursor != broadcast.cursor:
            await Broadcast.find_one({"_id": broadcast.id}).update({"$set": {"cursor": cursor}})
        return batch, cursor

    async def _rewound(self, broadcast: Broadcast) -> bool:
        """The places are walked: one still pending behind the cursor (a claim released after a crash) moves it
        back, one past the end (a freeze run again after contacts were deleted) moves the end; True then."""
        left = await BroadcastRecipient.find({"broadcast_id": broadcast.id, "status": "pending"}).first_or_none()
        if left is None or left.seq is None:
            return False
        await Broadcast.find_one({"_id": broadcast.id}).update({"$min": {"cursor": left.seq},
                                                                 "$max": {"seq_end": left.seq + 1}})
        return True

    async def _release_claims(self, broadcast: Broadcast) -> None:
        """Claimed by a slice that died before storing their message: pending again (the message's idempotency key
        makes one stored meanwhile come back, never a second one), and the cursor back to the first of them."""
        claimed = await BroadcastRecipient.get_motor_collection().find(
            {"broadcast_id": broadcast.id, "status": "claimed"}, {"_id": 1, "seq": 1}).to_list(None)
        if not claimed:
            return
        await BroadcastRecipient.get_motor_collection().update_many(
            {"_id": {"$in": [raw["_id"] for raw in claimed]}, "status": "claimed"},
            {"$set": {"status": "pending"}, "$unset": {"claim": ""}})
        places = [raw["seq"] for raw in claimed if raw.get("seq") is not None]
        if places and broadcast.seq_end is not None:
            await Broadcast.find_one({"_id": broadcast.id}).update({"$min": {"cursor": min(places)}})
            broadcast.cursor = min(broadcast.cursor, min(places))

    async def _hold(self, broadcast: Broadcast) -> None:
        """Extend this worker's lease (a long freeze)."""
        await Broadcast.find_one({"_id": broadcast.id, "owner": self.owner}).update(
            {"$set": {"lease_until": utcnow() + LEASE}})

    async def _zone(self, broadcast: Broadcast) -> str:
        from app.domains.business_hours.models import BusinessHours

        settings = await BusinessHours.find_one({"workspace_id": broadcast.workspace_id})
        return settings.time_zone if settings is not None else "UTC"

    async def _send_batch(self, broadcast: Broadcast, account: WhatsAppAccount, template: MessageTemplate,
                          batch: list[BroadcastRecipient]) -> str | None:
        """The batch's recipients to the outbox in one go (OutboxService.send_many); a reason when the broadcast
        must pause. About ten database operations for the batch, whatever its size."""
        # Claimed before their messages are stored: a cancel (or pause) that skipped some meanwhile wins. A claim
        # whose message never came (the worker died, the broadcast paused) is made pending again by the next slice.
        claim = uuid.uuid4().hex
        recipients = BroadcastRecipient.get_motor_collection()
        await recipients.update_many({"_id": {"$in": [r.id for r in batch]}, "status": "pending"},
                                     {"$set": {"status": "claimed", "claim": claim, "updated_at": utcnow()}})
        # Read back by the fields of its index (broadcast, status, _id), the claim compared here.
        claimed = {raw["_id"] async for raw in recipients.find(
            {"broadcast_id": broadcast.id, "status": "claimed", "_id": {"$in": [r.id for r in batch]}},
            {"_id": 1, "claim": 1}) if raw.get("claim") == claim}
        batch = [r for r in batch if r.id in claimed]
        if not batch:
            return None
        found = await Contact.find({"_id": {"$in": [r.contact_id for r in batch]}}).to_list()
        contacts = {c.id: c for c in found if c.workspace_id == broadcast.workspace_id}
        marks: list[UpdateOne] = []
        ready: list[tuple[BroadcastRecipient, Contact, list[str]]] = []
        for recipient in batch:
            contact = contacts.get(recipient.contact_id)
            values, missing = render_params(broadcast.params, contact) if contact is not None else ([], None)
            if contact is None or missing:
                marks.append(_mark(recipient, "skipped", reason="the contact was deleted" if contact is None
                                   else f"no value for {missing}"))
            else:
                ready.append((recipient, contact, values))
        reason = None
        if ready:
            try:
                await self._send_ready(broadcast, account, ready, marks)
            except AppError as exc:
                if exc.error_code not in PAUSING_ERRORS:
                    raise
                reason = exc.message
        if marks:
            await recipients.bulk_write(marks, ordered=False)
        return reason

    async def _send_ready(self, broadcast: Broadcast, account: WhatsAppAccount,
                          ready: list[tuple[BroadcastRecipient, Contact, list[str]]], marks: list[UpdateOne]) -> None:
        sends = [BulkSend(contact, Draft("template", template_content(broadcast, values)), f"bc:{broadcast.id}:{contact.id}")
                 for _, contact, values in ready]
        results = await self.outbox.send_many(
            broadcast.workspace_id, account, sends, via="broadcast",
            broadcast={"id": str(broadcast.id), "name": broadcast.name},
            open_as=ConversationStatus.OPEN if broadcast.open_conversations else ConversationStatus.RESOLVED)
        for (recipient, _, _), result in zip(ready, results, strict=True):
            if isinstance(result, AppError):
                marks.append(_mark(recipient, "skipped", reason=result.message))
            else:
                marks.append(_mark(recipient, "queued", message_id=result.id, account_id=account.id))

    async def _room(self, broadcast: Broadcast, account: WhatsAppAccount) -> int | str:
        """How many recipients may be stored now: the rate's lead over the drainer (the number's bulk lane and
        what its drainer holds, from Redis), and the daily limit."""
        ahead = max(account.mps * AHEAD_SECONDS, BATCH)
        _, bulk, taken = await self.outbox.queue.depth(str(account.id))
        room = ahead - bulk - taken
        limit = DAILY_LIMITS.get(account.health.messaging_limit_tier or "") if account.health else None
        if limit is None:
            return room
        since = utcnow() - timedelta(hours=24)
        recent = {"account_id": account.id, "status": "queued", "updated_at": {"$gt": since}}
        used = await BroadcastRecipient.find(recent).count()
        if used >= limit:
            oldest = await BroadcastRecipient.find(recent).sort("updated_at").first_or_none()
            rolls = as_utc(oldest.updated_at) + timedelta(hours=24) if oldest else utcnow() + timedelta(minutes=5)
            await Broadcast.find_one({"_id": broadcast.id}).update({"$set": {"next_send_at": rolls}})
            await self.announce(broadcast)
            return f"daily limit of {limit:,} reached: continues at {rolls:%Y-%m-%d %H:%M} UTC"
        if broadcast.next_send_at is not None:
            await Broadcast.find_one({"_id": broadcast.id}).update({"$set": {"next_send_at": None}})
        return min(room, limit - used)

    async def _stopping_failure(self, broadcast: Broadcast) -> str | None:
        since = broadcast.resumed_at or broadcast.started_at or broadcast.created_at
        failed = None
        for code in STOPPING_CODES:  # one equality each: served by (broadcast.id, status, error.code)
            failed = failed or await Message.find_one({"broadcast.id": str(broadcast.id), "status": "failed",
                                                       "error.code": code, "updated_at": {"$gt": as_utc(since)}})
        return STOPPING_CODES.get(failed.error.code) if failed is not None and failed.error else None  # type: ignore[arg-type]

    async def on_failed(self, broadcast_id: str, error_code: int | None) -> None:
        """One of the broadcast's messages failed (a live event of the outbox, in the worker): a code that means
        the number must stop pauses it now, not at the next slice."""
        if error_code not in STOPPING_CODES:
            return
        broadcast = await Broadcast.find_one({"_id": parse_object_id(broadcast_id), "status": "sending"})
        if broadcast is not None:
            await self.pause(broadcast, STOPPING_CODES[error_code])

    # -- state changes -------------------------------------------------------------------------------
    async def pause(self, broadcast: Broadcast, reason: str) -> str:
        result = await Broadcast.find_one({"_id": broadcast.id, "status": {"$in": ["sending", "scheduled"]}}).update(
            {"$set": {"status": "paused", "pause_reason": reason, "updated_at": utcnow()}})
        if result.matched_count:
            log.info("broadcast paused", broadcast_id=str(broadcast.id), reason=reason)
            broadcast.status, broadcast.pause_reason = "paused", reason
            await self.announce(broadcast, event="broadcast.paused")
            await self._integration_event(broadcast, "broadcast.paused", reason=reason)
        return f"paused: {reason}"

    async def complete(self, broadcast: Broadcast) -> str:
        result = await Broadcast.find_one({"_id": broadcast.id, "status": "sending"}).update(
            {"$set": {"status": "completed", "completed_at": utcnow(), "next_send_at": None, "updated_at": utcnow()}})
        if result.matched_count:
            broadcast.status = "completed"
            await self.announce(broadcast, event="broadcast.completed")
            await self._integration_event(broadcast, "broadcast.completed")
        return "completed"

    async def _integration_event(self, broadcast: Broadcast, kind: str, **more: Any) -> None:
        if self._emit is None:
            return
        now = utcnow()
        data = {"broadcast": {"id": str(broadcast.id), "name": broadcast.name, "status": broadcast.status,
                              "total": broadcast.total, **more}}
        await self._emit(broadcast.workspace_id, kind, f"{kind}:{broadcast.id}:{now.timestamp()}", data, now)

    async def announce(self, broadcast: Broadcast, event: str = "broadcast.updated") -> None:
        await self.live.publish(broadcast.workspace_id, event, broadcast_id=str(broadcast.id))


def _stop_reason(account: WhatsAppAccount | None, template: MessageTemplate | None) -> str | None:
    if account is None or not account.enabled:
        return "the number is gone or turned off"
    if account.health is not None and (account.health.quality_rating or "").upper() == "RED":
        return "the number's quality rating is RED: sending more would risk it"
    if account.health is not None and account.health.token_state == "invalid":
        return "WhatsApp refuses the number's access token: set a new one, then resume"
    if account.health is not None and account.health.sending_stopped is not None:
        return f"WhatsApp stopped the number's sending ({account.health.sending_stopped.title or 'policy'})"
    if template is None:
        return "the template no longer exists"
    if template.status != "APPROVED":
        return f"the template is {template.status.lower()}, not approved"
    return None


def _spam_limited(account: WhatsAppAccount, broadcast: Broadcast) -> str | None:
    """Meta answered 131048 for the number since the broadcast was started or resumed, and its back-off runs."""
    health = account.health
    since = broadcast.resumed_at or broadcast.started_at
    if health is None or health.spam_limited_at is None or health.spam_limited_until is None or since is None:
        return None
    if as_utc(health.spam_limited_at) <= as_utc(since) or as_utc(health.spam_limited_until) <= utcnow():
        return None
    return f"{STOPPING_CODES[131048]}; it backs off until {as_utc(health.spam_limited_until):%H:%M} UTC"


def render_params(params: list[ParamSource], contact: Contact) -> tuple[list[str], str | None]:
    """The body parameters for ``contact`` (fallbacks filled in), or the first value missing without one."""
    values: list[str] = []
    for param in params:
        if param.source == "text":
            value: Any = param.value
        elif param.source == "name":
            value = contact.display_name
        elif param.source == "phone":
            value = contact.phone
        else:
            value = (contact.attributes or {}).get(param.value)
        text = "" if value is None else (value.strftime("%Y-%m-%d %H:%M") if hasattr(value, "strftime") else str(value))
        if not text.strip():
            if param.fallback is None or not param.fallback.strip():
                return [], param.value if param.source == "attribute" else param.source
            text = param.fallback
        values.append(text)
    return values, None


def template_content(broadcast: Broadcast, values: list[str]) -> dict[str, Any]:
    content: dict[str, Any] = {"name": broadcast.template_name, "language": {"code": broadcast.language}}
    components: list[dict[str, Any]] = []
    if broadcast.header_link:
        kind = "video" if broadcast.header_link.lower().endswith((".mp4", ".3gp")) else \
            "document" if broadcast.header_link.lower().endswith(".pdf") else "image"
        components.append({"type": "header", "parameters": [{"type": kind, kind: {"link": broadcast.header_link}}]})
    if values:
        components.append({"type": "body", "parameters": [{"type": "text", "text": v} for v in values]})
    if components:
        content["components"] = components
    return content


def _mark(recipient: BroadcastRecipient, status: str, *, reason: str | None = None,
          message_id: PydanticObjectId | None = None, account_id: PydanticObjectId | None = None) -> UpdateOne:
    """The write that records what became of ``recipient`` (sent in bulk)."""
    fields: dict[str, Any] = {"status": status, "reason": reason, "updated_at": utcnow()}
    if message_id is not None:
        fields.update(message_id=message_id, account_id=account_id)
    return UpdateOne({"_id": recipient.id}, {"$set": fields, "$unset": {"claim": ""}})
