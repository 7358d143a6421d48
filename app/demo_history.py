"""The demo's conversations: every status, assignment, window state and most message kinds.

Written straight to the database (it is history, it already happened); the sandbox is told when
each customer last wrote, so its 24-h window rule agrees with what the inbox shows.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from app.db import utcnow
from app.domains.accounts.models import WhatsAppAccount
from app.domains.contacts.services import ContactService
from app.domains.conversations.actions import ConversationActions
from app.domains.conversations.models import SERVICE_WINDOW, Conversation, ConversationStatus, MessagePreview
from app.domains.conversations.services import ConversationService
from app.domains.messages.models import Edit, Message, MessageError, MessageStatus, Reaction
from app.domains.messages.preview import preview_text
from app.domains.workspaces.models import User
from app.runtime import Runtime


def _wamid() -> str:
    return "wamid.DEMO" + secrets.token_hex(16)


def _text(body: str) -> tuple[str, dict]:
    return "text", {"body": body}


# (customer wa_id, name, number index, hours since last inbound, status, assignee, labels, messages)
# Each message: (direction, minutes ago, type, content, status, extras)
CUSTOMERS: list[dict[str, Any]] = [
    {"wa_id": "351912345678", "name": "Maria Silva", "number": 0, "status": "open", "assignee": None,
     "labels": ["vip"], "unread": 2, "messages": [
         ("inbound", 95, *_text("Hi! I ordered the Ethiopia Yirgacheffe beans on Monday."), {}),
         ("outbound", 90, *_text("Hi Maria, thanks for your order! Let me check where it is."), {"status": "read"}),
         ("outbound", 88, "interactive", {"type": "button", "body": {"text": "Do you want it delivered or picked up?"},
                                          "action": {"buttons": [{"type": "reply", "reply": {"id": "b1", "title": "Delivery"}},
                                                                 {"type": "reply", "reply": {"id": "b2", "title": "Pick-up"}}]}},
          {"status": "read"}),
         ("inbound", 80, "interactive", {"type": "button_reply", "button_reply": {"id": "b1", "title": "Delivery"}}, {}),
         ("inbound", 6, "location", {"latitude": 38.7223, "longitude": -9.1393, "name": "Home",
                                     "address": "Rua Augusta 100, Lisbon"}, {}),
         ("inbound", 4, *_text("Can you deliver here? See https://example.com/map?pin=1 for the gate."), {}),
     ]},
    {"wa_id": "14155550123", "name": "John Doe", "number": 0, "status": "pending", "assignee": "agent",
     "labels": ["wholesale"], "unread": 0, "hours": 23.2, "messages": [
         ("inbound", 23.2 * 60, *_text("We'd like 20 kg per month for our office. Do you do invoices?"), {}),
         ("outbound", 23 * 60, *_text("We do! I'll send a quote by tomorrow."), {"status": "delivered"}),
         ("internal", 22 * 60, "note", {"body": "Waiting on pricing from Ana before we answer."}, {}),
     ]},
    {"wa_id": "819012345678", "name": "Aiko Tanaka", "number": 1, "status": "snoozed", "assignee": "admin",
     "labels": [], "unread": 0, "messages": [
         ("inbound", 50, *_text("My grinder makes a strange noise 🙁"), {}),
         ("outbound", 45, *_text("Sorry to hear that! Could you record a short video?"), {"status": "read"}),
         ("inbound", 40, *_text("Sure, tomorrow morning."), {}),
     ]},
    {"wa_id": "447700900123", "name": "Peter Smith", "number": 0, "status": "resolved", "assignee": "agent",
     "labels": [], "unread": 0, "hours": 72, "messages": [
         ("inbound", 72 * 60, "contacts", {"contacts": [{"name": {"formatted_name": "Claire Smith", "first_name": "Claire"},
                                                         "phones": [{"phone": "+44 7700 900456", "wa_id": "447700900456"}]}]}, {}),
         ("outbound", 71 * 60, *_text("Thanks Peter, we'll contact Claire about the gift card."), {"status": "read"}),
     ]},
    {"wa_id": "5215512345678", "name": "Lucía Hernández", "number": 0, "status": "open", "assignee": None,
     "labels": ["billing"], "unread": 1, "messages": [
         ("inbound", 30, *_text("Hola, I was charged twice for order #4411."), {}),
         ("outbound", 25, *_text("Sorry Lucía! We refunded the second charge."),
          {"status": "failed", "error": MessageError(code=131026, title="Message undeliverable",
                                                     agent_message="WhatsApp could not deliver this message: the number "
                                                                   "may not be on WhatsApp or uses an old app version.")}),
         ("inbound", 20, *_text("Did you get my message? (edited: order #4411, not #4410)"),
          {"edits": [Edit(content={"body": "Did you get my message?"})]}),
     ]},
    {"wa_id": "971501234567", "name": "Omar Haddad", "number": 1, "status": "open", "assignee": "agent",
     "labels": ["vip"], "unread": 0, "messages": [
         ("inbound", 15, *_text("Is the Colombia roast still available?"), {"reaction": "👍"}),
         ("outbound", 14, *_text("Yes! 250 g or 1 kg?"), {"status": "read", "customer_reaction": "❤️"}),
         ("inbound", 12, *_text("1 kg please"), {"quote": 1}),
         ("inbound", 11, *_text("(never mind this one)"), {"deleted": True}),
         ("outbound", 10, *_text("Done, it ships today ☕"), {"status": "delivered"}),
     ]},
]


async def seed_history(runtime: Runtime, sandbox_state, workspace_id, accounts: list[WhatsAppAccount],
                       admin: User, agent: User) -> None:
    contacts = ContactService()
    conversations = ConversationService()
    actions = ConversationActions(runtime.live)
    labels = await _labels(workspace_id)
    now = utcnow()
    for spec in CUSTOMERS:
        account = accounts[spec["number"]]
        contact, _ = await contacts.upsert(workspace_id, wa_id=spec["wa_id"], profile_name=spec["name"])
        conversation, _ = await conversations.open_for(workspace_id, account.id, contact.id)
        docs: list[Message] = []
        last_inbound: datetime | None = None
        for direction, minutes, type_, content, extras in spec["messages"]:
            at = now - timedelta(minutes=minutes)
            status = MessageStatus(extras.get("status", "received" if direction == "inbound" else "delivered"))
            message = Message(
                workspace_id=workspace_id, conversation_id=conversation.id, account_id=account.id, contact_id=contact.id,
                direction=direction, type=type_, content=content, status=status,
                wamid=_wamid() if direction != "internal" else None, timestamp=at, created_at=at, updated_at=at,
                error=extras.get("error"), edits=extras.get("edits", []), via="inbox" if direction != "inbound" else None,
                sent_by=agent.id if direction != "inbound" else None,
                recipient="+" + contact.wa_id if direction == "outbound" and contact.wa_id else None,
                deleted_at=at + timedelta(minutes=1) if extras.get("deleted") else None)
            if "quote" in extras:
                quoted = docs[extras["quote"]]
                message.reply_to_id, message.reply_to_wamid = quoted.id, quoted.wamid
            if extras.get("reaction"):
                message.reactions = [Reaction(by="agent", emoji=extras["reaction"], user_id=agent.id)]
            if extras.get("customer_reaction"):
                message.reactions = [Reaction(by="customer", emoji=extras["customer_reaction"])]
            await message.insert()
            docs.append(message)
            if direction == "inbound":
                last_inbound = at
                if sandbox_state is not None and message.wamid:
                    sandbox_state.inbound_ids[message.wamid] = account.phone_number_id
        last = docs[-1]
        changes: dict[str, Any] = {
            "last_message_at": last.timestamp, "last_inbound_at": last_inbound, "unread_count": spec["unread"],
            "window_expires_at": last_inbound + SERVICE_WINDOW if last_inbound else None, "updated_at": now,
            "last_message": MessagePreview(text=preview_text(last.type, last.content), direction=last.direction, type=last.type,
                                           status=last.status.value, message_id=last.id).model_dump(),
        }
        await Conversation.find_one(Conversation.id == conversation.id).update({"$set": changes})
        conversation = await Conversation.get(conversation.id)
        if sandbox_state is not None and last_inbound is not None:
            number = sandbox_state.numbers.get(account.phone_number_id)
            if number is not None:
                number.last_inbound[spec["wa_id"]] = last_inbound.timestamp()
        who = {"agent": agent, "admin": admin}.get(spec["assignee"] or "")
        if who is not None:
            await actions.assign(conversation, assignee_id=who.id, by=admin)
        if spec["labels"]:
            ids = [labels[x] for x in spec["labels"] if x in labels]
            await actions.set_labels(conversation, ids or spec["labels"], by=admin,
                                     known={v: k for k, v in labels.items()} if ids else None)
        if spec["status"] == "snoozed":
            await actions.snooze(conversation, now + timedelta(hours=20), by=admin)
        elif spec["status"] != "open":
            await actions.set_status(conversation, spec["status"], by=agent)
        # The events above must not push the row above real messages: keep the activity time.
        await Conversation.find_one(Conversation.id == conversation.id).update({"$set": {
            "last_message_at": last.timestamp, "status": ConversationStatus(spec["status"]).value}})


async def _labels(workspace_id) -> dict[str, str]:
    """The demo's labels in the admin's label list (name -> id), when that area is installed."""
    try:
        from app.domains.catalog.models import Label
    except ImportError:
        return {}
    out = {}
    for name, colour in (("vip", "#b8860b"), ("wholesale", "#1a73e8"), ("billing", "#b3261e")):
        label = await Label.find_one({"workspace_id": workspace_id, "name": name})
        if label is None:
            label = await Label(workspace_id=workspace_id, name=name, colour=colour).insert()
        out[name] = str(label.id)
    return out
