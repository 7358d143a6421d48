"""What the inbox's screens do, as one service: its handlers parse, authorise, call one method here, render.

Sends, retries, reactions and read receipts go through the one send path (the outbox's
``OutboxService``, ``runtime.outbox``) with the same rules as the API; conversation changes go
through ``ConversationActions``. What is here is the inbox's own: finding what a screen names
(always within the signed-in workspace), and the demo's customer simulator.
"""

from __future__ import annotations

from typing import Any

from beanie import PydanticObjectId

from app.domains.access.scope import Scope
from app.domains.access.services import visible_conversation, visible_message
from app.domains.accounts.models import WhatsAppAccount
from app.domains.contacts.models import Contact
from app.domains.conversations.models import Conversation
from app.domains.messages.models import Message
from app.domains.outbox.service import Draft
from app.errors import ValidationFailed
from app.runtime import Runtime

SIMULATED_KINDS = ("text", "image", "audio", "document", "location", "reaction", "reply", "button")


class InboxService:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.outbox = runtime.outbox

    # -- what a screen names ------------------------------------------------------------------

    async def conversation(self, scope: Scope, conversation_id: str | PydanticObjectId) -> Conversation:
        """The conversation, or 404 (another workspace's, or one outside the caller's numbers and teams, is
        as unknown as a made-up id)."""
        return await visible_conversation(scope, conversation_id)

    async def fresh(self, conversation: Conversation) -> Conversation:
        """The conversation as stored now (after a change a handler made through a service)."""
        return await Conversation.get(conversation.id) or conversation

    async def message(self, scope: Scope, message_id: str) -> Message:
        return await visible_message(scope, message_id)

    async def account_of(self, conversation: Conversation) -> WhatsAppAccount:
        return await WhatsAppAccount.get_scoped(conversation.workspace_id, conversation.account_id)

    async def contact_of(self, conversation: Conversation) -> Contact:
        return await Contact.get_scoped(conversation.workspace_id, conversation.contact_id)

    async def accounts(self, workspace_id: PydanticObjectId) -> list[WhatsAppAccount]:
        return await WhatsAppAccount.find(WhatsAppAccount.workspace_id == workspace_id).to_list()

    async def several_numbers(self, workspace_id: PydanticObjectId) -> bool:
        return await WhatsAppAccount.find(WhatsAppAccount.workspace_id == workspace_id).count() > 1

    async def quoted(self, conversation: Conversation, message_id: str | None) -> Message | None:
        """The message a reply quotes: one of this conversation's."""
        if not message_id:
            return None
        reply_to = await Message.get_scoped(conversation.workspace_id, message_id)
        if reply_to.conversation_id != conversation.id:
            raise ValidationFailed("You can only quote a message of this conversation.",
                                   error_code="BAD_REPLY", details={"reply_to": str(reply_to.id)})
        return reply_to

    # -- the one send path ------------------------------------------------------------------------

    async def send(self, conversation: Conversation, type_: str, content: dict[str, Any], *,
                   sent_by: PydanticObjectId | None, reply_to: Message | None = None) -> Message:
        """Validated, stored as queued and queued; returns at once (the live feed advances it)."""
        return await self.outbox.send(conversation.workspace_id, conversation,
                                      Draft(type_, content, str(reply_to.id) if reply_to else None),
                                      sent_by=sent_by, via="inbox")

    async def retry(self, message: Message) -> Message:
        return await self.outbox.retry(message.workspace_id, str(message.id))

    async def react(self, message: Message, emoji: str, *, by: PydanticObjectId | None) -> Message:
        """The agent's reaction, with the API's rules (outbox.react); returns the message reacted to."""
        _, target = await self.outbox.react(message.workspace_id, message, emoji, by=by, via="inbox")
        return target

    async def mark_read(self, conversation: Conversation) -> None:
        """Unread back to 0 and one read receipt to WhatsApp for the newest inbound message."""
        await self.outbox.mark_conversation_read(conversation)

    # -- demo: the customer simulator ---------------------------------------------------------------

    async def simulated_customers(self, scope: Scope) -> list[dict[str, str]]:
        """The demo's customers to write as: recent conversations (that ``scope`` sees) with a WhatsApp id."""
        workspace_id = scope.workspace_id
        conversations = await Conversation.find(scope.restrict({"workspace_id": workspace_id})).sort(
            [("last_message_at", -1)]).limit(50).to_list()
        contacts = {c.id: c for c in await Contact.find(
            {"_id": {"$in": [c.contact_id for c in conversations]}, "workspace_id": workspace_id}).to_list()}
        accounts = {a.id: a for a in await self.accounts(workspace_id)}
        customers = []
        for c in conversations:
            contact, account = contacts.get(c.contact_id), accounts.get(c.account_id)
            if contact and account and contact.wa_id:
                customers.append({"key": str(c.id), "label": f"{contact.display_name} → {account.name}"})
        return customers

    async def simulate(self, sandbox: Any, scope: Scope, conversation_id: str, kind: str, text: str) -> None:
        """The conversation's customer does ``kind`` through the sandbox, which posts Meta's signed webhook."""
        if kind not in SIMULATED_KINDS:
            raise ValidationFailed("Pick what the customer sends.", error_code="BAD_KIND", details={"kind": kind[:20]})
        conversation = await self.conversation(scope, conversation_id)
        workspace_id = scope.workspace_id
        contact = await self.contact_of(conversation)
        account = await self.account_of(conversation)
        target = None
        if kind in ("reaction", "reply", "button"):
            found = await Message.find(Message.workspace_id == workspace_id,
                                       Message.conversation_id == conversation.id,
                                       Message.direction == "outbound", Message.wamid != None,  # noqa: E711
                                       ).sort([("_id", -1)]).limit(1).to_list()
            target = found[0] if found else None
        message = customer_message(kind, text[:1000], target)
        sandbox.simulate_inbound(account.phone_number_id, contact.wa_id, contact.profile_name or contact.display_name,
                                 message)


def customer_message(kind: str, text: str, target: Message | None) -> dict[str, Any]:
    """Meta's inbound message object for what the demo customer does."""
    text = text.strip() or "Hello!"
    if kind == "text":
        return {"type": "text", "text": {"body": text}}
    if kind == "image":
        return {"type": "image", "image": {"caption": text}}
    if kind == "audio":
        return {"type": "audio", "audio": {"voice": True}}
    if kind == "document":
        return {"type": "document", "document": {"filename": "invoice.pdf", "caption": text}}
    if kind == "location":
        return {"type": "location", "location": {"latitude": 38.7139, "longitude": -9.1394, "name": "Café A Brasileira",
                                                 "address": "Rua Garrett 120, Lisbon"}}
    if target is None or not target.wamid:
        raise ValidationFailed("Send the customer a message first: they react or reply to our last one.",
                               error_code="NO_TARGET", details={"kind": kind})
    if kind == "reaction":
        return {"type": "reaction", "reaction": {"message_id": target.wamid, "emoji": "👍"}}
    if kind == "reply":
        return {"type": "text", "text": {"body": text}, "context": {"id": target.wamid}}
    buttons = ((target.content or {}).get("action") or {}).get("buttons") or []
    title = buttons[0]["reply"]["title"] if buttons and isinstance(buttons[0], dict) else "Yes"
    return {"type": "interactive", "context": {"id": target.wamid},
            "interactive": {"type": "button_reply", "button_reply": {"id": "btn-1", "title": title}}}
