"""Demo mode only: the "simulate customer" panel makes a sandbox customer write, send media, react or reply.

It calls the in-process SandboxState, which posts a signed webhook to the number's webhook URL:
the message then takes the real inbound path (webhook -> worker -> live push).
"""

from __future__ import annotations

from typing import Any

from beanie import PydanticObjectId
from litestar import Controller, Request, Response, post

from app.auth import requires_login
from app.domains.accounts.models import WhatsAppAccount
from app.domains.contacts.models import Contact
from app.domains.conversations.models import Conversation
from app.domains.inbox.context import error_fragment, html, me
from app.domains.messages.models import Message
from app.errors import ClientError, NotFound, ValidationFailed

KINDS = ("text", "image", "audio", "document", "location", "reaction", "reply", "button")


async def simulate_context(workspace_id: PydanticObjectId) -> dict[str, Any]:
    conversations = await Conversation.find(Conversation.workspace_id == workspace_id).sort(
        [("last_message_at", -1)]).limit(50).to_list()
    contacts = {c.id: c for c in await Contact.find({"_id": {"$in": [c.contact_id for c in conversations]}}).to_list()}
    accounts = {a.id: a for a in await WhatsAppAccount.find(WhatsAppAccount.workspace_id == workspace_id).to_list()}
    customers = []
    for c in conversations:
        contact, account = contacts.get(c.contact_id), accounts.get(c.account_id)
        if contact and account and contact.wa_id:
            customers.append({"key": str(c.id), "label": f"{contact.display_name} → {account.name}"})
    return {"sim_customers": customers}


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


class SimulateController(Controller):
    path = "/inbox/simulate"
    guards = [requires_login]
    include_in_schema = False

    @post("/", status_code=200)
    async def simulate(self, request: Request) -> Response[str]:
        sandbox = getattr(request.app.state, "sandbox", None)
        if sandbox is None or not getattr(request.app.state, "demo", False):
            raise NotFound("The customer simulator exists only in demo mode.", error_code="DEMO_ONLY")
        principal = me(request)
        form = await request.form()
        kind = str(form.get("kind") or "text")
        try:
            if kind not in KINDS:
                raise ValidationFailed("Pick what the customer sends.", error_code="BAD_KIND", details={"kind": kind[:20]})
            conversation = await Conversation.get_scoped(principal.workspace_id, str(form.get("customer") or ""))
            contact = await Contact.get_scoped(principal.workspace_id, conversation.contact_id)
            account = await WhatsAppAccount.get_scoped(principal.workspace_id, conversation.account_id)
            target = None
            if kind in ("reaction", "reply", "button"):
                found = await Message.find(Message.workspace_id == principal.workspace_id,
                                           Message.conversation_id == conversation.id,
                                           Message.direction == "outbound", Message.wamid != None,  # noqa: E711
                                           ).sort([("_id", -1)]).limit(1).to_list()
                target = found[0] if found else None
            message = customer_message(kind, str(form.get("text") or "")[:1000], target)
            sandbox.simulate_inbound(account.phone_number_id, contact.wa_id, contact.profile_name or contact.display_name,
                                     message)
        except ClientError as error:
            return error_fragment(error)
        except Exception as exc:  # the sandbox answers Graph-style errors
            return error_fragment(ValidationFailed(str(exc)[:200], error_code="SANDBOX_ERROR"))
        return html("")
