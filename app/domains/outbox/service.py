"""The one send path: validate, store the message as ``queued`` (the outbox), queue it, return at once.

The inbox composer, the JSON API, automations and broadcasts all call :class:`OutboxService`.
Everything WhatsApp would refuse is refused here, before anything is queued, with an
``error_code`` a client can act on:

WINDOW_CLOSED, TEMPLATE_NOT_APPROVED, TEMPLATE_PARAMS, CONTACT_OPTED_OUT, INVALID_CONTENT
(WhatsApp's limits, checked by ``app.whatsapp.payloads``), MEDIA_NOT_FOUND / MEDIA_KIND_MISMATCH,
ACCOUNT_DISABLED / ACCOUNT_TOKEN_INVALID, REPLY_TARGET_INVALID, RECIPIENT_INVALID.

The worker side (``sender.py``) drains each number's lanes at its rate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from arq.connections import ArqRedis
from beanie import PydanticObjectId
from bson import ObjectId
from pymongo.errors import BulkWriteError, DuplicateKeyError
from redis.exceptions import RedisError

from app import correlation, redis_scripts, tracing
from app.db import as_utc, parse_object_id, stored_id, utcnow
from app.domains.access.scope import Scope, workspace_of
from app.domains.access.services import visible_message
from app.domains.accounts.models import WhatsAppAccount
from app.domains.accounts.services import AccountService
from app.domains.contacts.models import Contact
from app.domains.contacts.services import ContactService
from app.domains.conversations.models import Conversation, ConversationStatus, MessagePreview
from app.domains.conversations.services import ConversationService
from app.domains.messages.models import MediaRef, Message, MessageStatus, Reaction
from app.domains.messages.preview import preview_text
from app.domains.outbox.items import Outgoing
from app.domains.outbox.lanes import OutboxQueue
from app.domains.outbox.media import OutboundMediaService
from app.domains.templates.models import MessageTemplate
from app.errors import AppError, Conflict, NotFound, ValidationFailed
from app.logging import get_logger
from app.metrics import OUTBOX_QUEUED
from app.queue import enqueue_mark_read
from app.realtime import LiveEvents
from app.whatsapp import payloads
from app.whatsapp.media import MediaKind
from app.whatsapp.templates import render_template
from app.whatsapp.validation import PayloadError

log = get_logger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Draft:
    """What a caller wants to send: Meta's type and its content object, optionally quoting a message."""

    type: str
    content: Any
    reply_to: str | None = None
    """Our message id or a wamid of the same conversation."""


@dataclass(frozen=True, slots=True)
class BulkSend:
    """One message of ``OutboxService.send_many``: a template to a contact (in its conversation on the number)."""

    contact: Contact
    draft: Draft
    idempotency_key: str


def _preview_of(message: Message) -> MessagePreview:
    return MessagePreview(text=preview_text(message.type, message.content, message.rendered), direction="outbound",
                          type=message.type, status=message.status.value, message_id=message.id)


async def _insert_many(messages: list[Message]) -> set[int]:
    """Store ``messages`` in one unordered insert; the places of those refused as duplicates (their key).
    Each gets its id first, and what ``insert`` would fill before storing (Beanie's insert_many does neither)."""
    for message in messages:
        if message.id is None:
            message.id = PydanticObjectId()
        message._fill_search_tokens()
    try:
        await Message.insert_many(messages, ordered=False)
    except BulkWriteError as exc:
        refused = exc.details.get("writeErrors", [])
        others = [e for e in refused if e.get("code") != 11000]
        if others:
            raise
        return {e["index"] for e in refused}
    return set()


REPLIES = frozenset({"inbox", "api"})
"""How a person's answer is sent (a broadcast's or a workflow's message is not an answer)."""


class OutboxService:
    """Validates and queues outbound messages; retries failed ones; marks conversations read."""

    def __init__(self, *, redis: Any, arq: Callable[[], ArqRedis | None], live: LiveEvents, accounts: AccountService,
                 media: OutboundMediaService) -> None:
        self.queue = OutboxQueue(redis)
        self._arq = arq
        self.live = live
        self.accounts = accounts
        self.media = media
        self.contacts = ContactService()
        self.conversations = ConversationService()

    # -- sending ------------------------------------------------------------------------------

    async def send_to(self, workspace_id: PydanticObjectId, to: str, draft: Draft, *,
                      account_id: str | None = None, **options: Any) -> Message:
        """Send to a phone number or a business-scoped user id (BSUID): finds or creates the contact and
        its conversation on that number."""
        account = await self._account_for(workspace_id, account_id)
        user_id = to.strip() if payloads.BSUID_PATTERN.match(to.strip()) else None
        try:
            recipient = None if user_id else payloads.normalize_recipient(to)
        except PayloadError as exc:
            raise ValidationFailed(f"{exc.message} (nor a WhatsApp user id like US.13491208655302741918)",
                                   error_code="RECIPIENT_INVALID", details={"to": exc.message}) from None
        existing = await self._idempotent(workspace_id, options.get("idempotency_key"))
        if existing is not None:
            return existing
        self._check_account(account)
        contact, _ = await self.contacts.upsert(workspace_id, wa_id=recipient[1:] if recipient else None,
                                                user_id=user_id)
        conversation, created = await self.conversations.open_for(workspace_id, stored_id(account), stored_id(contact),
                                                                  reopen=False)
        if created:
            await self.live.publish(workspace_id, "conversation.created", conversation_id=str(conversation.id))
        return await self.send(workspace_id, conversation, draft, account=account, contact=contact, **options)

    async def send(self, workspace_id: PydanticObjectId, conversation: Conversation, draft: Draft, *,
                   sent_by: PydanticObjectId | None = None, via: str = "api", priority: str = "agent",
                   idempotency_key: str | None = None, account: WhatsAppAccount | None = None,
                   contact: Contact | None = None, automation: dict[str, str] | None = None,
                   broadcast: dict[str, str] | None = None) -> Message:
        """Validate ``draft`` for ``conversation``, store it queued, and queue it; returns the message.
        ``automation``: the workflow that sends it ({"workflow_id", "name", "run_id"}), ``broadcast``: the
        broadcast ({"id", "name"}); both shown in the thread."""
        existing = await self._idempotent(workspace_id, idempotency_key)
        if existing is not None:
            return existing
        account = account or await self.accounts.cached_scoped(workspace_id, conversation.account_id)
        contact = contact or await Contact.get_scoped(workspace_id, conversation.contact_id)
        self._check_account(account)
        recipient = self._recipient(contact)
        reply_id, reply_wamid = await self._reply_target(workspace_id, conversation, draft.reply_to)
        content, media = await self._resolve_media(workspace_id, draft)
        content = await self._resolve_reaction(workspace_id, conversation, draft.type, content)
        checked = self._validate_payload(recipient, draft.type, content, reply_wamid)
        rendered = None
        marketing = False
        if draft.type == "template":
            definition = await self._check_template(workspace_id, account, contact, checked)
            rendered = render_template(checked, definition)
            marketing = definition["category"] == "MARKETING"
        elif not conversation.window_open():
            raise ValidationFailed(
                "More than 24 hours have passed since the customer last wrote: only a template can be sent now.",
                error_code="WINDOW_CLOSED",
                details={"window_expires_at": conversation.window_expires_at.isoformat()
                         if conversation.window_expires_at else None})
        now = utcnow()
        message = Message(
            workspace_id=workspace_id, conversation_id=conversation.id, account_id=account.id,
            contact_id=contact.id, direction="outbound", type=draft.type, content=checked,
            status=MessageStatus.QUEUED, status_at={MessageStatus.QUEUED.value: now}, reply_to_id=reply_id,
            reply_to_wamid=reply_wamid, media=media, sent_by=sent_by, via=via, automation=automation, broadcast=broadcast,
            priority="bulk" if priority == "bulk" else "agent", marketing=marketing, idempotency_key=idempotency_key,
            recipient=recipient, rendered=rendered, timestamp=now, created_at=now, updated_at=now,
            cause=correlation.current(), trace=tracing.current(),
        )
        try:
            await message.insert()
        except DuplicateKeyError:
            found = await self._idempotent(workspace_id, idempotency_key)
            if found is None:
                raise
            return found
        OUTBOX_QUEUED.labels(type=draft.type, priority=message.priority).inc()
        await self.conversations.record_outbound(
            conversation, now, MessagePreview(text=preview_text(draft.type, checked, rendered), direction="outbound",
                                              type=draft.type, status=message.status.value, message_id=message.id),
            reply=message if via in REPLIES and draft.type != "reaction" else None)
        await self._enqueue(message, [
            (workspace_id, "message.created", {"message_id": str(message.id), "conversation_id": str(conversation.id),
                                                "direction": "outbound"}),
            (workspace_id, "conversation.updated", {"conversation_id": str(conversation.id)})])
        return message

    async def send_many(self, workspace_id: PydanticObjectId, account: WhatsAppAccount, sends: Sequence[BulkSend], *,
                        via: str, priority: str = "bulk", broadcast: dict[str, str] | None = None,
                        open_as: ConversationStatus = ConversationStatus.OPEN) -> list[Message | ValidationFailed]:
        """``send`` of many templates from one number at once (a broadcast's batch): per send, its message
        (the one stored earlier under its idempotency key, if any) or why it was refused. The same checks as
        ``send``. Each contact's conversation on the number is opened as ``open_for(reopen=False)`` would, a new
        one created ``open_as`` with its message already as its preview; the database sees one bulk upsert and
        one read of the conversations, one insert of the messages and one update of the conversations that
        existed, for the whole batch, and Redis one round trip.

        A number that cannot send (ACCOUNT_DISABLED, ACCOUNT_TOKEN_INVALID) or a template that is not
        approved (TEMPLATE_NOT_APPROVED) raises: the whole batch would be refused."""
        self._check_account(account)
        definitions: dict[tuple[Any, Any], dict[str, Any]] = {}
        results: list[Any] = []
        ready: list[tuple[int, BulkSend, Any, dict[str, Any], Any, MessagePreview]] = []
        now = utcnow()
        for send in sends:
            try:
                if send.draft.type != "template":
                    raise ValidationFailed("Only templates are sent in bulk.", error_code="INVALID_CONTENT")
                checked = self._validate_payload(self._recipient(send.contact), "template", send.draft.content, None)
                named = (checked.get("name"), (checked.get("language") or {}).get("code"))
                if named not in definitions:
                    definitions[named] = await self._approved_template(workspace_id, account, checked)
                definition = definitions[named]
                self._check_template_for(definition, send.contact, checked)
            except ValidationFailed as exc:
                if exc.error_code == "TEMPLATE_NOT_APPROVED":
                    raise
                results.append(exc)
                continue
            rendered = render_template(checked, definition)
            preview = MessagePreview(text=preview_text("template", checked, rendered), direction="outbound",
                                     type="template", status=MessageStatus.QUEUED.value, message_id=PydanticObjectId())
            ready.append((len(results), send, checked, definition, rendered, preview))
            results.append(None)
        if not ready:
            return results
        opened = await self.conversations.open_many(
            workspace_id, stored_id(account), [stored_id(send.contact) for _, send, *_ in ready], status_if_new=open_as,
            previews={stored_id(send.contact): (now, preview) for _, send, _, _, _, preview in ready})
        fresh: list[tuple[int, Message, Conversation, bool]] = []
        cause, traced = correlation.current(), tracing.current()
        for place, send, checked, definition, rendered, preview in ready:
            conversation, created = opened[stored_id(send.contact)]
            message = Message(
                id=preview.message_id, workspace_id=workspace_id, conversation_id=conversation.id,
                account_id=account.id, contact_id=send.contact.id, direction="outbound", type="template",
                content=checked, status=MessageStatus.QUEUED, status_at={MessageStatus.QUEUED.value: now}, via=via,
                broadcast=broadcast, priority="bulk" if priority == "bulk" else "agent",
                marketing=definition["category"] == "MARKETING", idempotency_key=send.idempotency_key,
                recipient=self._recipient(send.contact), rendered=rendered, timestamp=now, created_at=now,
                updated_at=now, cause=cause, trace=traced)
            fresh.append((place, message, conversation, created))
            results[place] = message
        # No read of the keys first: a message stored before under its key (by a batch cut short) is refused
        # by the unique index, and that one is read back; the usual batch costs no read at all.
        raced = await _insert_many([message for _, message, _, _ in fresh])
        previews: list[tuple[Conversation, datetime, MessagePreview]] = []
        if raced:
            again = {m.idempotency_key: m async for m in Message.find(
                {"idempotency_key": {"$in": [fresh[i][1].idempotency_key for i in raced]}, "workspace_id": workspace_id})}
            for i in raced:
                place, message, conversation, created = fresh[i]
                found = again.get(message.idempotency_key)
                results[place] = found or ValidationFailed("Stored twice at once; sent once.", error_code="DUPLICATE")
                if created and found is not None:  # its new conversation shows the message that was stored
                    previews.append((conversation, found.timestamp, _preview_of(found)))
            fresh = [f for i, f in enumerate(fresh) if i not in raced]
        OUTBOX_QUEUED.labels(type="template", priority=priority).inc(len(fresh))
        previews += [(conversation, now, _preview_of(m)) for _, m, conversation, created in fresh if not created]
        await self.conversations.record_outbound_many(previews)
        events: list[tuple[PydanticObjectId, str, dict[str, Any]]] = []
        for _, message, conversation, created in fresh:
            if created:
                events.append((workspace_id, "conversation.created", {"conversation_id": str(conversation.id)}))
            events += [(workspace_id, "message.created", {"message_id": str(message.id),
                                                          "conversation_id": str(conversation.id),
                                                          "direction": "outbound"}),
                       (workspace_id, "conversation.updated", {"conversation_id": str(conversation.id)})]
        await self._enqueue_many([m for _, m, _, _ in fresh], events)
        return results

    async def send_in(self, who: PydanticObjectId | Scope, conversation_id: str, draft: Draft, **options: Any
                      ) -> Message:
        """``send`` to a conversation named by its id (404 when it is not this workspace's, or not one the
        caller's scope sees)."""
        conversation, contact = await self.conversations.with_contact(who, conversation_id)
        return await self.send(workspace_of(who), conversation, draft, contact=contact, **options)

    async def react(self, workspace_id: PydanticObjectId, target: Message, emoji: str, *,
                    by: PydanticObjectId | None = None, via: str = "api") -> tuple[Message, Message]:
        """An agent's reaction to ``target``: the same rules from the inbox and the API.

        WhatsApp delivers a reaction like any free-form message: only to a message it knows (one
        with a wamid) and within the 24-hour window; outside it this refuses with WINDOW_CLOSED
        rather than show the agent a reaction the customer never gets. ``emoji`` "" removes ours.
        The agent's chip shows on the message at once. Returns (the queued reaction, the target).
        """
        if target.direction == "internal":
            raise ValidationFailed("Notes and events cannot get reactions.", error_code="NOT_REACTABLE")
        if len(emoji) > 16:
            raise ValidationFailed("Pick one emoji.", error_code="BAD_EMOJI", details={"emoji": emoji[:20]})
        conversation = await Conversation.get_scoped(workspace_id, target.conversation_id)
        reaction = await self.send(workspace_id, conversation,
                                   Draft(type="reaction", content={"message_id": str(target.id), "emoji": emoji}),
                                   via=via, sent_by=by)
        reactions = [r for r in target.reactions if not (r.by == "agent" and r.user_id == by)]
        if emoji:
            reactions.append(Reaction(by="agent", emoji=emoji, user_id=by))
        await Message.find_one(Message.id == target.id).update(
            {"$set": {"reactions": [r.model_dump() for r in reactions], "updated_at": utcnow()}})
        target.reactions = reactions
        await self.live.publish(workspace_id, "message.updated", conversation_id=str(conversation.id),
                                message_id=str(target.id))
        return reaction, target

    async def retry(self, who: PydanticObjectId | Scope, message_id: str) -> Message:
        """A new attempt for a failed outbound message (it is really sent again), counted in its ``retries``."""
        message = await visible_message(who, message_id)
        workspace_id = workspace_of(who)
        if message.direction != "outbound":
            raise Conflict("Only messages we sent can be retried.", error_code="NOT_RETRYABLE")
        if message.status is not MessageStatus.FAILED:
            raise Conflict(f"Only failed messages can be retried; this one is {message.status.value}.",
                           error_code="NOT_FAILED", details={"status": message.status.value})
        account = await self.accounts.cached_scoped(workspace_id, message.account_id)
        self._check_account(account)
        conversation, contact = await self.conversations.with_contact(workspace_id, message.conversation_id)
        if contact is None:
            raise NotFound("This message's contact no longer exists.", error_code="CONTACT_NOT_FOUND")
        if message.type == "template":
            await self._check_template(workspace_id, account, contact, message.content)
        elif not conversation.window_open():
            raise ValidationFailed("The 24-hour window is closed: send a template instead.", error_code="WINDOW_CLOSED")
        now = utcnow()
        # Sent again to the contact's number as it is now (a message stored without one, e.g. by an
        # older version, gets it here).
        result = await Message.find_one(Message.id == message.id, Message.status == MessageStatus.FAILED).update(
            {"$set": {"status": MessageStatus.QUEUED.value, "error": None, "wamid": None, "attempts": 0,
                      "recipient": message.recipient or self._recipient(contact), "discarded": None,
                      f"status_at.{MessageStatus.QUEUED.value}": now, "updated_at": now},
             "$inc": {"retries": 1}},
        )
        fresh = await Message.get(message.id)
        assert fresh is not None
        if result.modified_count:
            await self._enqueue(fresh, [(workspace_id, "message.updated", {
                "message_id": str(fresh.id), "conversation_id": str(fresh.conversation_id),
                "status": fresh.status.value})])
        return fresh

    async def retry_failed(self, workspace_id: PydanticObjectId, account_id: str, since: datetime,
                           limit: int = 500) -> dict[str, Any]:
        """Retry, oldest first, the number's outbound messages that failed since ``since`` (e.g. after
        the circuit was open while WhatsApp was down). Each goes through ``retry`` and its rules;
        the ones it refuses are counted by error code, not retried."""
        account = await WhatsAppAccount.get_scoped(workspace_id, account_id)
        self._check_account(account)
        # An admin retrying says the number works again: the next drainer starts with a closed
        # circuit (if WhatsApp still fails, a few failures open it again).
        await WhatsAppAccount.find_one(WhatsAppAccount.id == account.id).update(
            {"$set": {"health.circuit_open_until": None}})
        await self.accounts.changed(account.id)
        # Served by the (account_id, status, _id) index: an equality pair, then the _id range
        # (ids hold their creation time in seconds since 1970, so ``since`` is kept inside that).
        since = min(max(as_utc(since), EPOCH), utcnow())
        docs = await Message.get_motor_collection().find(
            {"account_id": account.id, "status": MessageStatus.FAILED.value, "_id": {"$gte": ObjectId.from_datetime(since)},
             "direction": "outbound", "workspace_id": workspace_id},
            projection={"_id": 1}).sort([("_id", 1)]).limit(limit).to_list(None)
        retried, skipped = 0, Counter[str]()
        for doc in docs:
            try:
                await self.retry(workspace_id, str(doc["_id"]))
                retried += 1
            except AppError as error:
                skipped[error.error_code] += 1
        return {"retried": retried, "skipped": dict(skipped), "more": len(docs) == limit}

    async def get(self, who: PydanticObjectId | Scope, message_id: str) -> Message:
        """A message the caller sees (NotFound otherwise: access/services.py)."""
        return await visible_message(who, message_id)

    async def wake(self, account_id: PydanticObjectId | str) -> None:
        """Make sure a drainer runs for this number (after a token fix, a circuit close, a sweep)."""
        await self.queue.wake(str(account_id))

    async def resume_account(self, account: WhatsAppAccount) -> None:
        """AccountService credentials listener: a new token releases the sends held on the old one."""
        await self.wake(stored_id(account))

    # -- mark as read -------------------------------------------------------------------------

    async def mark_conversation_read(self, conversation: Conversation) -> bool:
        """An agent opened the conversation: tell WhatsApp once that its newest inbound message was read.

        Returns True when a read receipt was queued. Nothing happens while nothing is unread, and
        the job id (the wamid) keeps two agents opening it at once to one receipt.
        """
        if not conversation.unread_count:
            return False
        newest = await Message.find(
            Message.workspace_id == conversation.workspace_id, Message.conversation_id == conversation.id,
            Message.direction == "inbound",
        ).sort(-Message.id).limit(1).to_list()  # type: ignore[operator]  # Beanie: -field sorts descending
        await self.conversations.mark_read(conversation)
        if not newest or not newest[0].wamid:
            return False
        pool = self._arq()
        if pool is None:
            return False
        await enqueue_mark_read(pool, str(conversation.account_id), newest[0].wamid)
        await self.live.publish(conversation.workspace_id, "conversation.updated", conversation_id=str(conversation.id))
        return True

    # -- checks -------------------------------------------------------------------------------

    async def _idempotent(self, workspace_id: PydanticObjectId, key: str | None) -> Message | None:
        if not key:
            return None
        # The key first: it alone selects (the unique index is (workspace, key)); a server that plans by the
        # order of the fields (the embedded one) otherwise walked the workspace's messages (bench/broadcasts.py).
        return await Message.find_one({"idempotency_key": key, "workspace_id": workspace_id})

    async def _account_for(self, workspace_id: PydanticObjectId, account_id: str | None) -> WhatsAppAccount:
        if account_id:
            return await self.accounts.cached_scoped(workspace_id, account_id)
        accounts = await WhatsAppAccount.scoped(workspace_id, WhatsAppAccount.enabled == True).to_list()  # noqa: E712
        if len(accounts) == 1:
            return accounts[0]
        if not accounts:
            raise ValidationFailed("Connect a WhatsApp number first.", error_code="NO_ACCOUNT")
        raise ValidationFailed("This workspace has several numbers: say which one with account_id.",
                               error_code="ACCOUNT_REQUIRED", details={"account_id": "required"})

    @staticmethod
    def _check_account(account: WhatsAppAccount) -> None:
        if not account.enabled:
            raise Conflict(f"The number {account.display_phone_number} is disabled; an admin must enable it.",
                           error_code="ACCOUNT_DISABLED", details={"account_id": str(account.id)})
        if account.health.token_state == "invalid":
            raise Conflict(f"WhatsApp no longer accepts the access token of {account.display_phone_number}; "
                           "an admin must enter a new one.", error_code="ACCOUNT_TOKEN_INVALID",
                           details={"account_id": str(account.id)})

    @staticmethod
    def _recipient(contact: Contact) -> str:
        """Where a send goes: the group, else the phone number when we know it, else the customer's
        business-scoped user id (a username user who keeps their number private)."""
        if contact.group is not None:
            if contact.group.deleted:
                raise ValidationFailed("This WhatsApp group was deleted; messages can no longer be sent to it.",
                                       error_code="GROUP_DELETED")
            return payloads.GROUP_PREFIX + contact.group.group_id
        if contact.phone:
            return contact.phone
        if contact.wa_id:
            return "+" + contact.wa_id
        if contact.user_id:
            return payloads.USER_PREFIX + contact.user_id
        raise ValidationFailed("This contact has no WhatsApp number or user id to send to.",
                               error_code="RECIPIENT_INVALID")

    async def _reply_target(self, workspace_id: PydanticObjectId, conversation: Conversation,
                            reply_to: str | None) -> tuple[PydanticObjectId | None, str | None]:
        if not reply_to:
            return None, None
        oid = parse_object_id(reply_to)
        query = Message.id == oid if oid is not None else Message.wamid == reply_to
        target = await Message.find_one_scoped(workspace_id, query, Message.conversation_id == conversation.id)
        if target is None or not target.wamid:
            raise ValidationFailed("reply_to must be a sent or received message of this conversation.",
                                   error_code="REPLY_TARGET_INVALID", details={"reply_to": reply_to})
        return target.id, target.wamid

    async def _resolve_reaction(self, workspace_id: PydanticObjectId, conversation: Conversation, type_: str,
                                content: Any) -> Any:
        """A reaction may name our message id; WhatsApp needs its wamid."""
        if type_ != "reaction" or not isinstance(content, dict):
            return content
        oid = parse_object_id(content.get("message_id"))
        if oid is None:
            return content
        target = await Message.find_one_scoped(workspace_id, Message.id == oid, Message.conversation_id == conversation.id)
        if target is None or not target.wamid:
            raise ValidationFailed("reaction.message_id must be a sent or received message of this conversation.",
                                   error_code="REPLY_TARGET_INVALID")
        return {**content, "message_id": target.wamid}

    async def _resolve_media(self, workspace_id: PydanticObjectId, draft: Draft) -> tuple[Any, MediaRef | None]:
        """``content.id`` may be one of our uploads (POST /api/v1/media) or a Meta media id."""
        if draft.type not in payloads.MEDIA_TYPES or not isinstance(draft.content, dict):
            return draft.content, None
        oid = parse_object_id(draft.content.get("id")) if isinstance(draft.content.get("id"), str) else None
        if oid is None:
            return draft.content, None
        try:
            media = await self.media.get(workspace_id, str(oid))
        except NotFound:
            raise ValidationFailed("No uploaded file has this id.", error_code="MEDIA_NOT_FOUND",
                                   details={"content.id": str(oid)}) from None
        if media.kind != draft.type:
            raise ValidationFailed(f"This file was uploaded as {media.kind}; it cannot be sent as {draft.type}.",
                                   error_code="MEDIA_KIND_MISMATCH", details={"kind": media.kind, "type": draft.type})
        content = dict(draft.content)
        if media.kind == MediaKind.DOCUMENT.value and media.filename and not content.get("filename"):
            content["filename"] = media.filename
        ref = MediaRef(mime_type=media.mime_type, sha256=media.sha256, size=media.size, filename=media.filename,
                       stored_file_id=media.id, state="stored")
        return content, ref

    @staticmethod
    def _validate_payload(recipient: str, type_: str, content: Any, reply_wamid: str | None) -> Any:
        try:
            body = payloads.build_message(recipient, type_, content, reply_wamid)
        except PayloadError as exc:
            code = "RECIPIENT_INVALID" if exc.field == "to" else "INVALID_CONTENT"
            raise ValidationFailed(f"{exc.field}: {exc.message}", error_code=code, details={exc.field: exc.message}) from None
        return body[type_]

    async def _check_template(self, workspace_id: PydanticObjectId, account: WhatsAppAccount, contact: Contact,
                              template: Any) -> dict[str, Any]:
        """The approved definition ``template`` is sent with (refusing what WhatsApp would refuse)."""
        definition = await self._approved_template(workspace_id, account, template)
        self._check_template_for(definition, contact, template)
        return definition

    @staticmethod
    async def _approved_template(workspace_id: PydanticObjectId, account: WhatsAppAccount, template: Any
                                 ) -> dict[str, Any]:
        name = template.get("name")
        language = (template.get("language") or {}).get("code")
        found = await MessageTemplate.find_one_scoped(
            workspace_id, MessageTemplate.waba_id == account.waba_id, MessageTemplate.name == name,
            MessageTemplate.language == language)
        if found is None or found.status != "APPROVED":
            state = "does not exist" if found is None else f"is {found.status.lower()}"
            raise ValidationFailed(f"The template {name!r} in {language!r} {state}; only approved templates can be sent.",
                                   error_code="TEMPLATE_NOT_APPROVED",
                                   details={"name": name, "language": language,
                                            "status": found.status if found else None})
        return {"name": found.name, "language": found.language, "category": found.category,
                "components": found.components, "parameter_format": found.parameter_format}

    @staticmethod
    def _check_template_for(definition: dict[str, Any], contact: Contact, template: Any) -> None:
        """``template``'s parameters fit ``definition``, and the contact may receive it."""
        try:
            payloads.validate_template_parameters(template, definition)
        except PayloadError as exc:
            raise ValidationFailed(f"{exc.field}: {exc.message}", error_code="TEMPLATE_PARAMS",
                                   details={exc.field: exc.message}) from None
        if definition["category"] == "MARKETING" and contact.opted_out_marketing:
            raise ValidationFailed("This customer opted out of marketing messages.", error_code="CONTACT_OPTED_OUT")

    # -- queueing -----------------------------------------------------------------------------

    async def _enqueue(self, message: Message, events: Sequence[tuple[PydanticObjectId, str, dict[str, Any]]] = ()
                       ) -> None:
        """Push the stored message to its number's lane and publish ``events``, in one Redis round trip
        (a number with no drainer is put on the ready list by the same push: dispatcher.py)."""
        await self._enqueue_many([message], events)

    async def _enqueue_many(self, messages: Sequence[Message],
                            events: Sequence[tuple[PydanticObjectId, str, dict[str, Any]]] = ()) -> None:
        """``_enqueue`` of several stored messages: their pushes, in order, and ``events`` in one round trip."""
        pushes = []
        for message in messages:
            try:
                body = Outgoing.of(message).encode()
            except (TypeError, ValueError):  # content JSON cannot hold: the drainer reads the message
                body = ""
            pushes.append(self.queue.push_call(str(message.account_id), str(message.id), str(message.conversation_id),
                                               "b" if message.priority == "bulk" else "a", body=body))
        try:
            results = await redis_scripts.run(self.queue.redis, [*pushes, *self.live.calls(events)])
        except (RedisError, OSError) as exc:
            results = [exc] * len(pushes)
        await self.live.published(events, results[len(pushes):])
        failed = [str(m.id) for m, r in zip(messages, results, strict=False) if isinstance(r, Exception)]
        if failed:
            # Stored as queued: the outbox sweeper queues them once Redis is back.
            log.warning("outbox: messages stored but not queued", message_ids=failed[:20], count=len(failed),
                        error=type(results[0]).__name__)
