"""Storing what customers send: every inbound type, reactions, edits, revokes, echoes and statuses.

Idempotent by construction, so a batch can be ingested twice (a redelivery, a worker killed half
way) and end in the same state:
- a message is inserted once per wamid (the unique index decides, not a prior read);
- its effect on the conversation (unread +1) is claimed once with a conditional update of the
  message, while the window / last activity use ``$max`` and are simply re-applied;
- reactions carry their timestamp and only a newer one replaces the customer's current one (an
  empty emoji stays as a tombstone, so a redelivered older reaction cannot come back);
- an edit or revoke records its own wamid in the message's history and is skipped when present;
- statuses only move forward (``advance_by_wamid``: one conditional update) and wait in PendingStatus for their message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from beanie import PydanticObjectId
from pymongo.errors import DuplicateKeyError

from app import correlation
from app.db import as_utc, utcnow
from app.domains.accounts.models import WhatsAppAccount
from app.domains.accounts.services import AccountService
from app.domains.contacts.consent import KeywordLookup, apply_keyword_consent
from app.domains.contacts.models import Contact
from app.domains.contacts.services import ContactService
from app.domains.conversations.models import Conversation, MessagePreview
from app.domains.conversations.search import message_tokens
from app.domains.conversations.services import ConversationService, internal_line
from app.domains.messages.models import Edit, MediaRef, Message, MessageError, MessageStatus, Reaction
from app.domains.messages.preview import preview_text
from app.domains.messages.status import (
    adopt_wamid,
    advance_by_wamid,
    apply_pending_statuses,
    apply_waiting_statuses,
    keep_for_later,
)
from app.logging import get_logger
from app.metrics import WEBHOOK_TO_STORED
from app.realtime import LiveEvents
from app.whatsapp.errors import error_from_code
from app.whatsapp.payloads import MEDIA_TYPES
from app.whatsapp.webhooks import InboundMessage, InboundStatus, WebhookError

log = get_logger(__name__)

# Statuses Meta sends for our messages; anything else is kept in the raw event and noted.
WEBHOOK_STATUSES = {s.value: s for s in (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ,
                                         MessageStatus.PLAYED, MessageStatus.FAILED)}

LOOK_AGAIN_AFTER_SECONDS = (1.0, 4.0)
"""A status that beat its message is looked for again after 1 s, then 4 s more (the send's answer is
being recorded); later than that, the outbox sweeper applies it."""

IDENTITY_CHANGES = frozenset({"user_changed_number", "user_changed_user_id"})

EnqueueMedia = Callable[[str, int], Awaitable[Any]]
"""(message id, generation): a new generation per media change, since job ids are kept a while."""


def message_error(errors: list[WebhookError]) -> MessageError | None:
    """Meta's first error (code, title, details) with the sentence agents see; None without errors."""
    if not errors:
        return None
    first = errors[0]
    graph_error = error_from_code(first.code, first.title or first.message, first.details)
    return MessageError(code=first.code, title=first.title or first.message or "", detail=first.details or "",
                        agent_message=graph_error.agent_message)


def _media_ref(message_type: str, content: Any) -> MediaRef | None:
    if message_type not in MEDIA_TYPES or not isinstance(content, dict):
        return None
    ref = MediaRef(meta_media_id=content.get("id"), mime_type=content.get("mime_type"),
                   sha256=content.get("sha256"), filename=content.get("filename"))
    if not ref.meta_media_id:
        ref.state, ref.error = "failed", "Meta sent no media id for this file."
    return ref


@dataclass
class BatchContext:
    """Per-batch memo: a batch of 100 messages from one customer upserts the contact once."""

    workspace_id: PydanticObjectId
    contacts: dict[tuple[str | None, str | None], Contact] = field(default_factory=dict)
    """By (wa_id, user_id) as the webhook named them; groups by ("group", group_id)."""
    conversations: dict[tuple[PydanticObjectId, PydanticObjectId], Conversation] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    stored: int = 0
    changed_conversations: dict[PydanticObjectId, None] = field(default_factory=dict)
    """Conversations to announce once at the end of the batch (not once per message)."""
    new_conversations: set[PydanticObjectId] = field(default_factory=set)
    """Created by this batch: the customer's first message in each is marked as having started it."""


class MessageIngest:
    """Applies the messages and statuses of one webhook batch to contacts, conversations and messages."""

    def __init__(self, live: LiveEvents, enqueue_media: EnqueueMedia,
                 contacts: ContactService | None = None, conversations: ConversationService | None = None,
                 accounts: AccountService | None = None, keywords: KeywordLookup | None = None) -> None:
        self.live = live
        self.accounts = accounts
        self.keywords = keywords  # the workspace's extra STOP / START words (cached), or the built-in only
        self.enqueue_media = enqueue_media
        self.contacts = contacts or ContactService()
        self.conversations = conversations or ConversationService()
        self._later: set[asyncio.Task[None]] = set()  # referenced until done

    # -- who and where ---------------------------------------------------------------------------

    async def _contact(self, batch: BatchContext, item: InboundMessage, *, outbound: bool) -> Contact | None:
        message = item.message
        contact = item.contact
        if outbound:  # an echo: the customer is the recipient
            wa_id = getattr(message, "to", None) or (contact.wa_id if contact else None)
            user_id = getattr(message, "to_user_id", None) or (contact.user_id if contact else None)
        else:
            wa_id = (contact.wa_id if contact else None) or message.from_
            user_id = (contact.user_id if contact else None) or message.from_user_id
        if not wa_id and not user_id:
            return None
        memo = (wa_id, user_id)
        if memo in batch.contacts:
            return batch.contacts[memo]
        profile = contact.profile if contact else None
        found, _ = await self.contacts.upsert(
            batch.workspace_id, wa_id=wa_id, user_id=user_id, parent_user_id=contact.parent_user_id if contact else None,
            profile_name=profile.name if profile else None, username=profile.username if profile else None,
            wrote_at=None if outbound else message.occurred_at)
        batch.contacts[memo] = found
        return found

    async def _group(self, batch: BatchContext, group_id: str, participant: Contact | None) -> Contact:
        """The group's own contact (its conversation is the group's thread), knowing ``participant``."""
        memo = ("group", group_id)
        group = batch.contacts.get(memo)
        if group is None:
            group = await self.contacts.group(batch.workspace_id, group_id)
            batch.contacts[memo] = group
        if participant is not None and group.group is not None and participant.id not in group.group.participant_ids:
            group.group.participant_ids.append(participant.id)
            await self.contacts.add_participants(group, [participant.id])
        return group

    async def _conversation(self, batch: BatchContext, account: WhatsAppAccount, contact: Contact) -> Conversation:
        memo = (account.id, contact.id)
        if memo not in batch.conversations:
            conversation, created = await self.conversations.open_for(batch.workspace_id, account.id, contact.id,
                                                                      reopen=False)
            batch.conversations[memo] = conversation
            if created:
                batch.new_conversations.add(conversation.id)
        return batch.conversations[memo]

    # -- inbound messages ------------------------------------------------------------------------

    async def store_inbound(self, batch: BatchContext, account: WhatsAppAccount, item: InboundMessage) -> None:
        """One customer message, whatever its type."""
        message = item.message
        if message.type == "system" and message.system and message.system.type in IDENTITY_CHANGES:
            await self._change_identity(batch, message)
        contact = await self._contact(batch, item, outbound=False)
        if contact is None:
            batch.notes.append(f"message {message.id}: no sender (neither wa_id nor user_id); kept raw only")
            return
        sender = None
        if message.group_id:  # written in a group: the group's thread, never the participant's own
            sender, contact = contact, await self._group(batch, message.group_id, contact)
        conversation = await self._conversation(batch, account, contact)
        at = message.occurred_at
        if message.type == "reaction" and message.reaction and message.reaction.message_id:
            target = await self._target(batch, message.reaction.message_id)
            if target is not None:
                await self._react(target, "customer", message.reaction.emoji or "", message.id, at)
                await self.conversations.record_inbound(conversation, at, None, unread=False)
                return
        elif message.type in ("edit", "revoke"):
            original = (message.edit.original_message_id if message.type == "edit" and message.edit
                        else message.revoke.original_message_id if message.revoke else None)
            target = await self._target(batch, original) if original else None
            if target is not None:
                await self._amend(target, message, at)
                await self.conversations.record_inbound(conversation, at, None, unread=False)
                return
        await self._insert(batch, account, contact, conversation, item, direction="inbound", sender=sender)

    async def store_echo(self, batch: BatchContext, account: WhatsAppAccount, item: InboundMessage) -> None:
        """A message the business sent from the WhatsApp Business app on the same number (coexistence)."""
        message = item.message
        contact = await self._contact(batch, item, outbound=True)
        if contact is None:
            batch.notes.append(f"echo {message.id}: no recipient; kept raw only")
            return
        conversation = await self._conversation(batch, account, contact)
        at = message.occurred_at
        if message.type == "reaction" and message.reaction and message.reaction.message_id:
            target = await self._target(batch, message.reaction.message_id)
            if target is not None:
                await self._react(target, "agent", message.reaction.emoji or "", message.id, at)
                return
        elif message.type in ("edit", "revoke"):
            original = (message.edit.original_message_id if message.type == "edit" and message.edit
                        else message.revoke.original_message_id if message.revoke else None)
            target = await self._target(batch, original) if original else None
            if target is not None:
                await self._amend(target, message, at)
                return
        await self._insert(batch, account, contact, conversation, item, direction="outbound")

    async def _change_identity(self, batch: BatchContext, message: Any) -> None:
        """``user_changed_number`` / ``user_changed_user_id``: the contact moves to its new identifiers
        (before the message is stored, so it lands in the same contact and conversation)."""
        system = message.system
        old_wa_id, old_user_id = message.from_, message.from_user_id
        if not old_wa_id and not old_user_id:
            return
        new_wa_id = system.wa_id if system.type == "user_changed_number" else None
        moved = await self.contacts.find(batch.workspace_id, wa_id=new_wa_id, user_id=system.user_id)
        if moved is not None and (old_wa_id in moved.previous_wa_ids or old_user_id in moved.previous_user_ids):
            batch.contacts[(old_wa_id, old_user_id)] = moved  # applied by an earlier run
            return
        if await self.contacts.find(batch.workspace_id, wa_id=old_wa_id, user_id=old_user_id) is None:
            await self.contacts.upsert(batch.workspace_id, wa_id=old_wa_id, user_id=old_user_id)
        contact = await self.contacts.change_number(
            batch.workspace_id, old_wa_id, new_wa_id, old_user_id=old_user_id, new_user_id=system.user_id, new_parent_user_id=system.parent_user_id)
        if contact is not None:
            batch.contacts[(old_wa_id, old_user_id)] = contact

    async def _target(self, batch: BatchContext, wamid: str) -> Message | None:
        return await Message.find_one_scoped(batch.workspace_id, Message.wamid == wamid)

    async def _insert(self, batch: BatchContext, account: WhatsAppAccount, contact: Contact,
                      conversation: Conversation, item: InboundMessage, *, direction: str,
                      sender: Contact | None = None) -> None:
        message = item.message
        at = message.occurred_at
        content = message.content
        if content is None:
            content = {}
        context = message.context.model_dump(by_alias=True, exclude_unset=True) if message.context else None
        inbound = direction == "inbound"
        doc = Message(
            workspace_id=batch.workspace_id, conversation_id=conversation.id, account_id=account.id,
            contact_id=contact.id, direction=direction, type=message.type, content=content, wamid=message.id,
            status=MessageStatus.RECEIVED if inbound else MessageStatus.SENT,
            status_at={("received" if inbound else "sent"): at}, error=message_error(item.errors),
            reply_to_wamid=message.context.id if message.context else None, context=context,
            referral=message.referral, media=_media_ref(message.type, content), timestamp=at,
            via=None if inbound else "whatsapp_business_app", sender_contact_id=sender.id if sender else None,
            cause=correlation.current(),
        )
        if doc.reply_to_wamid:
            quoted = await self._target(batch, doc.reply_to_wamid)
            doc.reply_to_id = quoted.id if quoted else None
        created = True
        try:
            await doc.insert()
        except DuplicateKeyError:
            created = False
            existing = await Message.find_one_scoped(batch.workspace_id, Message.wamid == message.id)
            if existing is None:
                batch.notes.append(f"message {message.id}: wamid already stored elsewhere; skipped")
                return
            doc = existing
        if created:
            batch.stored += 1
            if inbound:
                WEBHOOK_TO_STORED.observe(max(0.0, (utcnow() - as_utc(doc.timestamp)).total_seconds()))
            await self.live.publish(batch.workspace_id, "message.created", message_id=str(doc.id),
                                    conversation_id=str(conversation.id), direction=direction)
            if not inbound:
                await apply_pending_statuses(doc)
        if inbound and sender is None and doc.type == "text":  # STOP / START (idempotent: by wamid)
            await apply_keyword_consent(doc, self.keywords)
        if doc.media is not None and doc.media.state == "pending" and doc.media.attempts == 0:
            await self.enqueue_media(str(doc.id), 0)  # the job id dedupes a re-run's second enqueue
        await self._apply_to_conversation(batch, doc, conversation, inbound=inbound)

    async def publish_conversations(self, batch: BatchContext) -> None:
        """One ``conversation.updated`` per conversation the batch changed."""
        for conversation_id in batch.changed_conversations:
            await self.live.publish(batch.workspace_id, "conversation.updated", conversation_id=str(conversation_id))
        batch.changed_conversations.clear()

    async def _apply_to_conversation(self, batch: BatchContext, doc: Message, conversation: Conversation, *,
                                     inbound: bool) -> None:
        """Unread +1 exactly once (claimed on the message); window and activity are idempotent ($max)."""
        applied: dict[str, Any] = {"conversation_applied": True}
        if inbound and conversation.id in batch.new_conversations:  # the customer started it (the reports count it)
            batch.new_conversations.discard(conversation.id)
            applied.update(opened="new", updated_at=utcnow())
        claim = await Message.get_motor_collection().update_one(
            {"_id": doc.id, "conversation_applied": {"$ne": True}}, {"$set": applied})
        first_time = claim.modified_count == 1
        preview = MessagePreview(text=preview_text(doc.type, doc.content), direction=doc.direction, type=doc.type,
                                 status=doc.status.value, message_id=doc.id)
        if inbound:
            reopened = await self.conversations.record_inbound(conversation, doc.timestamp, preview,
                                                               unread=first_time, reopen=first_time)
            if reopened:  # a line in the thread, and what the reports count as reopened
                line = internal_line(conversation, "event", {"kind": "reopened", "by_customer": True,
                                                             "text": "The customer wrote again; the conversation is open again"})
                await line.insert()
                await self.live.publish(batch.workspace_id, "message.created", direction="internal",
                                        conversation_id=str(conversation.id), message_id=str(line.id))
        else:  # an echo: someone answered in the WhatsApp Business app
            await self.conversations.record_outbound(conversation, doc.timestamp, preview, reply=doc)
        if first_time:
            batch.changed_conversations[conversation.id] = None

    # -- reactions, edits, revokes ---------------------------------------------------------------

    async def _react(self, target: Message, by: str, emoji: str, wamid: str, at: datetime) -> None:
        """The sender's one reaction on ``target``: replaced by a newer one, '' (removed) kept as a tombstone."""
        collection = Message.get_motor_collection()
        current = next((r for r in target.reactions if r.by == by and r.user_id is None), None)
        if current is not None and (current.wamid == wamid or as_utc(current.at) > at):
            return  # the same reaction again, or an older one delivered late
        reaction = Reaction(by=by, emoji=emoji, wamid=wamid, at=at)
        await collection.update_one({"_id": target.id}, {"$pull": {"reactions": {"by": by, "user_id": None}}})
        await collection.update_one({"_id": target.id},
                                    {"$push": {"reactions": reaction.model_dump()}, "$set": {"updated_at": utcnow()}})
        await self.live.publish(target.workspace_id, "message.updated", message_id=str(target.id),
                                conversation_id=str(target.conversation_id))

    async def _amend(self, target: Message, message: Any, at: datetime) -> None:
        """Apply an edit (new content, old one kept in ``edits``) or a revoke (``deleted_at``, content kept)."""
        if any(e.wamid == message.id for e in target.edits):
            return
        history = Edit(content=target.content, type=target.type, wamid=message.id, replaced_at=at).model_dump()
        changes: dict[str, Any] = {"updated_at": utcnow()}
        media_changed = False
        if message.type == "edit" and message.edit and message.edit.message is not None:
            new = message.edit.message
            changes["content"] = new.content if new.content is not None else {}
            changes["search_tokens"] = message_tokens(changes["content"])  # the search finds the new text
            changes["type"] = new.type
            media = _media_ref(new.type, new.content)
            if media is not None and (target.media is None or target.media.meta_media_id != media.meta_media_id):
                changes["media"] = media.model_dump()
                media_changed = media.state == "pending"
        else:
            changes["deleted_at"] = at
        result = await Message.get_motor_collection().update_one(
            {"_id": target.id, "edits.wamid": {"$ne": message.id}},
            {"$set": changes, "$push": {"edits": history}})
        if result.modified_count and media_changed:
            await self.enqueue_media(str(target.id), len(target.edits) + 1)
        if result.modified_count:
            await self.live.publish(target.workspace_id, "message.updated", message_id=str(target.id),
                                    conversation_id=str(target.conversation_id))

    # -- statuses --------------------------------------------------------------------------------

    async def apply_status(self, batch: BatchContext, item: InboundStatus) -> None:
        """Advance our message's delivery state (never backwards); keep it for later if it is not stored yet."""
        status_item = item.status
        status = WEBHOOK_STATUSES.get(status_item.status)
        if status is None:
            batch.notes.append(f"status {status_item.status!r} for {status_item.id}: not a delivery state; kept raw")
            return
        at = status_item.occurred_at
        error = message_error(list(status_item.errors or ()))
        pricing = status_item.pricing  # Meta's whole pricing object (status.as_pricing reads it)
        changed = await advance_by_wamid(batch.workspace_id, status_item.id, status, at, error, pricing)
        if changed is None and await adopt_wamid(batch.workspace_id, status_item.biz_opaque_callback_data,
                                                 status_item.id, at):
            changed = await advance_by_wamid(batch.workspace_id, status_item.id, status, at, error, pricing)
        if error is not None and status is MessageStatus.FAILED:
            await self._failure_consequences(batch, item, error)
        if changed:
            log.info("status", message_id=str(changed["_id"]), status=changed["status"], wamid=status_item.id,
                     caused_by=changed.get("cause"))
            await self.status_changed(changed["workspace_id"], changed["_id"], changed["conversation_id"],
                                       changed["status"])
        elif changed is None:
            await keep_for_later(status_item.id, status, at, error, pricing)
            # The sender may have stored the wamid between our read and our insert: look again.
            message = await Message.find_one_scoped(batch.workspace_id, Message.wamid == status_item.id)
            if message is None:
                self._look_again_soon(status_item.id)  # its send's answer is probably being recorded
            elif await apply_pending_statuses(message):
                await self.status_changed(message.workspace_id, message.id, message.conversation_id,
                                           message.status.value)

    async def _failure_consequences(self, batch: BatchContext, item: InboundStatus, error: MessageError) -> None:
        """What a failure reported in a status webhook means beyond its message, as when the send
        itself was refused (outbox/failures.py): 131050 opts the customer out of marketing; 368 /
        131031 stop the number's sends until an admin resumes them."""
        meaning = error_from_code(error.code, error.title, error.detail)
        if meaning.opts_out_marketing:
            message = await Message.find_one_scoped(batch.workspace_id, Message.wamid == item.status.id)
            if message is not None:
                await self.contacts.set_marketing_opt_out(batch.workspace_id, message.contact_id, True,
                                                          source="failed_send", by=str(error.code),
                                                          note=error.title)
        if meaning.stops_number and self.accounts is not None and item.phone_number_id:
            account = await WhatsAppAccount.find_one_scoped(
                batch.workspace_id, WhatsAppAccount.phone_number_id == item.phone_number_id)
            if account is not None and account.health.sending_stopped is None:
                await self.accounts.stop_sending(account.id, meaning)

    def _look_again_soon(self, wamid: str) -> None:
        """A status beat its send's answer: apply it once the sender has stored the wamid (a moment
        later). If this process ends first, the outbox sweeper does it (status.apply_waiting_statuses)."""
        async def later() -> None:
            for delay in LOOK_AGAIN_AFTER_SECONDS:
                await asyncio.sleep(delay)
                try:
                    changed = await apply_waiting_statuses([wamid])
                except Exception as exc:  # noqa: BLE001 - the sweeper tries again
                    log.info("early status not applied yet", wamid=wamid, error=type(exc).__name__)
                    return
                for message, _ in changed:
                    await self.status_changed(message.workspace_id, message.id, message.conversation_id,
                                               message.status.value)
                if changed:
                    return

        task = asyncio.get_running_loop().create_task(later())
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    async def status_changed(self, workspace_id: Any, message_id: Any, conversation_id: Any, status: str) -> None:
        await self.live.publish(workspace_id, "message.updated", message_id=str(message_id),
                                conversation_id=str(conversation_id), status=status)
        result = await Conversation.get_motor_collection().update_one(
            {"_id": conversation_id, "last_message.message_id": message_id},
            {"$set": {"last_message.status": status}})
        if result.modified_count:
            await self.live.publish(workspace_id, "conversation.updated", conversation_id=str(conversation_id))
