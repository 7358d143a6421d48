"""The composer's actions: send text, buttons, notes, attachments and templates; retry; react; canned.

Each send answers at once with the new bubble (queued) out of band; the live feed advances it.
Bad input answers 4xx with an ``error_code`` that inbox.js shows in the alert toast.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post

from app.auth import requires_login
from app.domains.accounts.models import WhatsAppAccount
from app.domains.contacts.models import Contact
from app.domains.conversations.actions import ConversationActions
from app.domains.conversations.models import Conversation
from app.domains.inbox.attachments import send_attachment
from app.domains.inbox.context import error_fragment, html, me, oob_messages, oob_row, queries, render
from app.domains.inbox.sending import InboxSender
from app.domains.inbox.vocab import canned_responses
from app.domains.inbox.templates_source import approved_templates, build_template_content, find_template, preview
from app.domains.messages.models import Message
from app.errors import ClientError, ValidationFailed
from app.runtime import Runtime

MAX_TEXT = 4096


class ComposerController(Controller):
    path = "/inbox"
    guards = [requires_login]
    include_in_schema = False

    @post("/c/{conversation_id:str}/messages", status_code=200)
    async def send(self, request: Request, runtime: Runtime, conversation_id: str) -> Response[str]:
        principal = me(request)
        conversation = await Conversation.get_scoped(principal.workspace_id, conversation_id)
        form = await request.form()
        mode = str(form.get("mode") or "text")
        body = str(form.get("body") or "").strip()
        try:
            if mode == "note":
                message = await ConversationActions(runtime.live).add_note(conversation, body, by=principal.user)
            else:
                reply_to = None
                if form.get("reply_to"):
                    reply_to = await Message.get_scoped(principal.workspace_id, str(form.get("reply_to")))
                    if reply_to.conversation_id != conversation.id:
                        raise ValidationFailed("You can only quote a message of this conversation.",
                                               error_code="BAD_REPLY", details={"reply_to": str(reply_to.id)})
                type_, content = self._content(mode, body, [str(b) for b in form.getall("button", [])])
                message = await InboxSender(runtime).send(conversation, type_, content, sent_by=principal.user_id,
                                                          reply_to=reply_to)
        except ClientError as error:
            return error_fragment(error)
        return await self._answer(request, conversation, message)

    @staticmethod
    def _content(mode: str, body: str, buttons: list[str]) -> tuple[str, dict[str, Any]]:
        if not body:
            raise ValidationFailed("Write a message first.", error_code="EMPTY_MESSAGE", details={"body": "empty"})
        if len(body) > MAX_TEXT:
            raise ValidationFailed(f"Messages are at most {MAX_TEXT} characters.", error_code="TEXT_TOO_LONG",
                                   details={"body": f"{len(body)} characters"})
        if mode == "buttons":
            titles = [b.strip() for b in buttons if b.strip()]
            if not titles:
                raise ValidationFailed("Add at least one button.", error_code="NO_BUTTONS", details={"button": "empty"})
            if len(titles) > 3 or any(len(t) > 20 for t in titles) or len(set(titles)) != len(titles):
                raise ValidationFailed("Up to 3 different buttons of at most 20 characters.",
                                       error_code="BAD_BUTTONS", details={"button": ", ".join(titles)[:100]})
            if len(body) > 1024:
                raise ValidationFailed("Button messages have at most 1024 characters.", error_code="TEXT_TOO_LONG",
                                       details={"body": f"{len(body)} characters"})
            return "interactive", {"type": "button", "body": {"text": body}, "action": {"buttons": [
                {"type": "reply", "reply": {"id": f"btn-{i + 1}", "title": t}} for i, t in enumerate(titles)]}}
        return "text", {"body": body, "preview_url": "http://" in body or "https://" in body}

    @post("/c/{conversation_id:str}/attachments", status_code=200)
    async def attach(self, request: Request, runtime: Runtime, conversation_id: str) -> Response[str]:
        principal = me(request)
        conversation = await Conversation.get_scoped(principal.workspace_id, conversation_id)
        form = await request.form()
        upload = form.get("file")
        try:
            if upload is None or isinstance(upload, str):
                raise ValidationFailed("Choose a file to send.", error_code="NO_FILE", details={"file": "missing"})
            data = await upload.read()
            message = await send_attachment(runtime, conversation, data, upload.content_type or "",
                                            upload.filename or "file", str(form.get("caption") or "").strip(),
                                            sent_by=principal.user_id)
        except ClientError as error:
            return error_fragment(error)
        return await self._answer(request, conversation, message)

    @get("/c/{conversation_id:str}/templates")
    async def templates(self, request: Request, runtime: Runtime, conversation_id: str) -> Response[str]:
        principal = me(request)
        conversation = await Conversation.get_scoped(principal.workspace_id, conversation_id)
        account = await WhatsAppAccount.get_scoped(principal.workspace_id, conversation.account_id)
        items = await approved_templates(runtime, account)
        return html(render(request, "inbox/_template_picker.html", templates=items, conversation_id=str(conversation.id),
                           chosen=None, values={}))

    @get("/c/{conversation_id:str}/templates/{key:str}")
    async def template_form(self, request: Request, runtime: Runtime, conversation_id: str, key: str) -> Response[str]:
        principal = me(request)
        conversation = await Conversation.get_scoped(principal.workspace_id, conversation_id)
        account = await WhatsAppAccount.get_scoped(principal.workspace_id, conversation.account_id)
        chosen = await find_template(runtime, account, key)
        return html(render(request, "inbox/_template_form.html", t=chosen, conversation_id=str(conversation.id),
                           values={}, preview=preview))

    @post("/c/{conversation_id:str}/templates", status_code=200)
    async def send_template(self, request: Request, runtime: Runtime, conversation_id: str) -> Response[str]:
        principal = me(request)
        conversation = await Conversation.get_scoped(principal.workspace_id, conversation_id)
        form = await request.form()
        try:
            account = await WhatsAppAccount.get_scoped(principal.workspace_id, conversation.account_id)
            chosen = await find_template(runtime, account, str(form.get("template") or ""))
            if not chosen.supported:
                raise ValidationFailed("This template needs a media header; send it through the API.",
                                       error_code="TEMPLATE_UNSUPPORTED", details={"template": chosen.key})
            content = build_template_content(chosen, {k: str(v) for k, v in form.items()})
            message = await InboxSender(runtime).send(conversation, "template", content, sent_by=principal.user_id)
        except ClientError as error:
            return error_fragment(error)
        return await self._answer(request, conversation, message, headers={"HX-Trigger": "templateSent"})

    @get("/c/{conversation_id:str}/canned")
    async def canned(self, request: Request, conversation_id: str) -> Response[str]:
        """Canned responses matching what follows the ``/``, with this contact's variables filled in."""
        principal = me(request)
        conversation = await Conversation.get_scoped(principal.workspace_id, conversation_id)
        contact = await Contact.get_scoped(principal.workspace_id, conversation.contact_id)
        variables = {"contact.name": contact.display_name, "contact.phone": contact.phone or "",
                     **{f"contact.{k}": v for k, v in contact.attributes.items()}}
        items = await canned_responses(principal.workspace_id, str(request.query_params.get("q") or "")[:60], variables)
        return html(render(request, "inbox/_canned.html", items=items))

    @post("/m/{message_id:str}/retry", status_code=200)
    async def retry(self, request: Request, runtime: Runtime, message_id: str) -> Response[str]:
        principal = me(request)
        message = await Message.get_scoped(principal.workspace_id, message_id)
        try:
            message = await InboxSender(runtime).retry(message)
        except ClientError as error:
            return error_fragment(error)
        conversation = await Conversation.get_scoped(principal.workspace_id, message.conversation_id)
        return await self._answer(request, conversation, message)

    @post("/m/{message_id:str}/react", status_code=200)
    async def react(self, request: Request, runtime: Runtime, message_id: str) -> Response[str]:
        principal = me(request)
        message = await Message.get_scoped(principal.workspace_id, message_id)
        form = await request.form()
        emoji = str(form.get("emoji") or "")
        if len(emoji) > 8:
            return error_fragment(ValidationFailed("Pick one emoji.", error_code="BAD_EMOJI", details={"emoji": emoji[:20]}))
        try:
            message = await InboxSender(runtime).react(message, emoji, by=principal.user_id)
        except ClientError as error:
            return error_fragment(error)
        conversation = await Conversation.get_scoped(principal.workspace_id, message.conversation_id)
        return await self._answer(request, conversation, message)

    async def _answer(self, request: Request, conversation: Conversation, message: Message,
                      headers: dict[str, str] | None = None) -> Response[str]:
        """The bubble and the row, out of band: this tab sees them before the live push arrives."""
        fresh = await Conversation.get(conversation.id) or conversation
        body = oob_messages(request, [await queries.view(message)]) + oob_row(request, await queries.row(fresh))
        return html(body, headers=headers)
