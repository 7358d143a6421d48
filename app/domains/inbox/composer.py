"""The composer's actions: send text, buttons, notes, attachments and templates; retry; react; canned.

Each send answers at once with the new bubble (queued) out of band; the live feed advances it.
Bad input answers 4xx with an ``error_code`` that inbox.js shows in the alert toast.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.params import FromPath

from app.auth import requires_login
from app.domains.contacts.attribute_values import show_attribute
from app.domains.conversations.actions import ConversationActions
from app.domains.conversations.models import Conversation
from app.domains.inbox.attachments import MAX_UPLOAD, file_too_large, send_attachment
from app.domains.inbox.context import error_fragment, html, me, oob_messages, oob_row, queries, render
from app.domains.inbox.service import InboxService
from app.domains.inbox.templates_source import approved_templates, build_template_content, find_template, preview
from app.domains.inbox.typing import TypingIndicator
from app.domains.inbox.vocab import canned_responses
from app.domains.messages.models import Message
from app.domains.outbox.uploads import receive_upload
from app.errors import ClientError, ValidationFailed
from app.forms import go_to, is_htmx
from app.runtime import Runtime

MAX_TEXT = 4096


class ComposerController(Controller):
    path = "/inbox"
    guards = [requires_login]
    include_in_schema = False

    @post("/c/{conversation_id:str}/messages", status_code=200)
    async def send(self, request: Request, runtime: NamedDependency[Runtime], conversation_id: FromPath[str]) -> Response[Any]:
        principal = me(request)
        inbox = InboxService(runtime)
        conversation = await inbox.conversation(principal.scope, conversation_id)
        form = await request.form()
        mode = str(form.get("mode") or "text")
        body = str(form.get("body") or "").strip()
        try:
            if mode == "note":
                message = await ConversationActions(runtime.live).add_note(conversation, body, by=principal.user)
            else:
                reply_to = await inbox.quoted(conversation, str(form.get("reply_to") or "") or None)
                type_, content = self._content(mode, body, [str(b) for b in form.getall("button", [])])
                message = await inbox.send(conversation, type_, content, sent_by=principal.user_id, reply_to=reply_to)
        except ClientError as error:
            return error_fragment(error)
        if not is_htmx(request):  # the form posted by the browser itself (see _composer.html): back to the thread
            return go_to(request, f"/inbox/c/{conversation.id}")
        return await self._answer(request, inbox, conversation, message)

    @post("/c/{conversation_id:str}/typing", status_code=204)
    async def typing(self, request: Request, runtime: NamedDependency[Runtime], conversation_id: FromPath[str]) -> Response[None]:
        """The agent is typing a reply (the composer asks at most every 5 s): the customer sees "typing…".

        Always 204 at once; the indicator (at most one per 20 s per conversation, only in an open
        window) goes to Meta after the answer. Notes are internal: typing one tells the customer nothing.
        """
        conversation = await InboxService(runtime).conversation(me(request).scope, conversation_id)
        form = await request.form()
        if str(form.get("mode") or "text") not in ("text", "buttons"):
            return Response(content=None, status_code=204)
        typing = TypingIndicator(runtime)
        due = await typing.due(conversation)
        if due is None:
            return Response(content=None, status_code=204)
        return Response(content=None, status_code=204, background=BackgroundTask(typing.send, due))

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

    # Up to the largest file WhatsApp takes (documents, 100 MB; each kind's own limit is checked on
    # storing it); Litestar's default body limit (10 MB) refused videos and PDFs WhatsApp accepts.
    # The file streams into a temporary file (app/domains/outbox/uploads.py), never whole in memory.
    @post("/c/{conversation_id:str}/attachments", status_code=200, request_max_body_size=MAX_UPLOAD + 1024 * 1024)
    async def attach(self, request: Request, runtime: NamedDependency[Runtime], conversation_id: FromPath[str]) -> Response[str]:
        principal = me(request)
        inbox = InboxService(runtime)
        conversation = await inbox.conversation(principal.scope, conversation_id)
        try:
            async with receive_upload(request, limit=MAX_UPLOAD, too_large=file_too_large) as form:
                if form.file is None:
                    raise ValidationFailed("Choose a file to send.", error_code="NO_FILE", details={"file": "missing"})
                message = await send_attachment(runtime, conversation, form.file, form.content_type,
                                                form.filename or "file", form.fields.get("caption", "").strip(),
                                                sent_by=principal.user_id)
        except ClientError as error:
            return error_fragment(error)
        return await self._answer(request, inbox, conversation, message)

    @get("/c/{conversation_id:str}/templates")
    async def templates(self, request: Request, runtime: NamedDependency[Runtime], conversation_id: FromPath[str]) -> Response[str]:
        inbox = InboxService(runtime)
        conversation = await inbox.conversation(me(request).scope, conversation_id)
        account = await inbox.account_of(conversation)
        items = await approved_templates(runtime, account)
        return html(render(request, "inbox/_template_picker.html", templates=items, conversation_id=str(conversation.id),
                           chosen=None, values={}))

    @get("/c/{conversation_id:str}/templates/{key:str}")
    async def template_form(self, request: Request, runtime: NamedDependency[Runtime], conversation_id: FromPath[str], key: FromPath[str]) -> Response[str]:
        inbox = InboxService(runtime)
        conversation = await inbox.conversation(me(request).scope, conversation_id)
        account = await inbox.account_of(conversation)
        chosen = await find_template(runtime, account, key)
        return html(render(request, "inbox/_template_form.html", t=chosen, conversation_id=str(conversation.id),
                           values={}, preview=preview))

    @post("/c/{conversation_id:str}/templates", status_code=200)
    async def send_template(self, request: Request, runtime: NamedDependency[Runtime], conversation_id: FromPath[str]) -> Response[str]:
        principal = me(request)
        inbox = InboxService(runtime)
        conversation = await inbox.conversation(principal.scope, conversation_id)
        form = await request.form()
        try:
            account = await inbox.account_of(conversation)
            chosen = await find_template(runtime, account, str(form.get("template") or ""))
            if not chosen.supported:
                raise ValidationFailed("This template needs a media header; send it through the API.",
                                       error_code="TEMPLATE_UNSUPPORTED", details={"template": chosen.key})
            content = build_template_content(chosen, {k: str(v) for k, v in form.items()})
            message = await inbox.send(conversation, "template", content, sent_by=principal.user_id)
        except ClientError as error:
            return error_fragment(error)
        return await self._answer(request, inbox, conversation, message, headers={"HX-Trigger": "templateSent"})

    @get("/c/{conversation_id:str}/canned")
    async def canned(self, request: Request, runtime: NamedDependency[Runtime], conversation_id: FromPath[str]) -> Response[str]:
        """Canned responses matching what follows the ``/``, with this contact's variables filled in."""
        principal = me(request)
        inbox = InboxService(runtime)
        contact = await inbox.contact_of(await inbox.conversation(principal.scope, conversation_id))
        variables = {"contact.name": contact.display_name, "contact.phone": contact.phone or "",
                     **{f"contact.{k}": show_attribute(None, v) for k, v in contact.attributes.items()}}
        items = await canned_responses(principal.workspace_id, str(request.query_params.get("q") or "")[:60], variables)
        return html(render(request, "inbox/_canned.html", items=items))

    @post("/m/{message_id:str}/retry", status_code=200)
    async def retry(self, request: Request, runtime: NamedDependency[Runtime], message_id: FromPath[str]) -> Response[str]:
        principal = me(request)
        inbox = InboxService(runtime)
        message = await inbox.message(principal.scope, message_id)
        try:
            message = await inbox.retry(message)
        except ClientError as error:
            return error_fragment(error)
        conversation = await inbox.conversation(principal.scope, message.conversation_id)
        return await self._answer(request, inbox, conversation, message)

    @post("/m/{message_id:str}/react", status_code=200)
    async def react(self, request: Request, runtime: NamedDependency[Runtime], message_id: FromPath[str]) -> Response[str]:
        principal = me(request)
        inbox = InboxService(runtime)
        message = await inbox.message(principal.scope, message_id)
        form = await request.form()
        try:
            message = await inbox.react(message, str(form.get("emoji") or ""), by=principal.user_id)
        except ClientError as error:
            return error_fragment(error)
        conversation = await inbox.conversation(principal.scope, message.conversation_id)
        return await self._answer(request, inbox, conversation, message)

    async def _answer(self, request: Request, inbox: InboxService, conversation: Conversation, message: Message,
                      headers: dict[str, str] | None = None) -> Response[str]:
        """The bubble and the row, out of band: this tab sees them before the live push arrives."""
        fresh = await inbox.fresh(conversation)
        body = oob_messages(request, [await queries.view(message)]) + oob_row(request, await queries.row(fresh))
        return html(body, headers=headers)
