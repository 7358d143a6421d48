"""JSON API v1 for sending: send to a number or a conversation, read one message, retry, upload media; and the failed
messages' list (app/domains/failures: it shares the /messages path).

Thin handlers over :class:`~app.domains.outbox.service.OutboxService` (the one send path).
Sends answer ``202 Accepted`` with the message as stored (status ``queued``): delivery goes on
in the background and shows in ``GET /api/v1/messages/{id}`` and the live events.
An ``Idempotency-Key`` header makes a repeated POST return the first message instead of a second
(app/idempotency.py answers repeats; the message keeps the key too, so that a repeat never sends
twice, even while Redis is away or after the 24 hours).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import Body, FromPath, FromQuery, QueryParameter

from app.auth import requires_admin, requires_login
from app.db import as_utc, utcnow
from app.domains.failures.api import FailedList, filter_of
from app.domains.failures.services import failed_page
from app.domains.messages.api_shapes import (
    SEND_BODY,
    RetryReport,
    SentMessage,
    UploadedMedia,
    documented,
)
from app.domains.messages.schemas import message_json
from app.domains.outbox.media import MAX_UPLOAD_BYTES, OutboundMedia, too_large
from app.domains.outbox.service import Draft
from app.domains.outbox.uploads import receive_upload
from app.domains.workspaces.services import Principal
from app.errors import ValidationFailed
from app.runtime import Runtime

IDEMPOTENCY_HEADER = "idempotency-key"


def media_view(media: OutboundMedia) -> dict[str, Any]:
    return {"id": str(media.id), "kind": media.kind, "mime_type": media.mime_type, "size": media.size,
            "filename": media.filename, "sha256": media.sha256, "converted": media.converted,
            "original_mime_type": media.original_mime}


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.", error_code="VALIDATION_ERROR")
    return data


def _text_field(data: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise ValidationFailed(f"{name} is required.", details={name: "required"})
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed(f"{name} must be a non-empty string.", details={name: "must be a non-empty string"})
    return value.strip()


def _draft(data: dict[str, Any]) -> Draft:
    unknown = set(data) - {"type", "content", "reply_to", "to", "account_id", "priority"}
    if unknown:
        raise ValidationFailed(f"Unknown fields: {', '.join(sorted(unknown))}.",
                               details={name: "unknown field" for name in sorted(unknown)})
    type_ = _text_field(data, "type", required=True)
    if "content" not in data:
        raise ValidationFailed("content is required: Meta's object for that type.", details={"content": "required"})
    return Draft(type=type_ or "", content=data["content"], reply_to=_text_field(data, "reply_to", required=False))


def _options(request: Request[Any, Any, Any], principal: Principal, data: dict[str, Any]) -> dict[str, Any]:
    key = request.headers.get(IDEMPOTENCY_HEADER)  # checked by app/idempotency.py before the handler
    priority = data.get("priority", "agent")
    if priority not in ("agent", "bulk"):
        raise ValidationFailed("priority must be agent or bulk.", details={"priority": "agent or bulk"})
    return {"idempotency_key": key.strip() if key else None, "via": "api", "priority": priority,
            "sent_by": principal.user.id if principal.user else None}


class SendApi(Controller):
    path = "/api/v1"
    guards = [requires_login]
    tags = ["messages"]

    @post("/messages", status_code=202, summary="Send a message to a phone number",
          responses=documented(202, SentMessage, "The message, queued to send"))
    async def send_to_number(self, request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal],
                             data: Annotated[Any, Body(description="{account_id?, to, type, content, reply_to?, priority?}",
                                             schema_extra=SEND_BODY)]
                             ) -> dict[str, Any]:
        data = _object(data)
        draft = _draft(data)
        to = _text_field(data, "to", required=True)
        message = await runtime.outbox.send_to(principal.workspace_id, to or "", draft,
                                               account_id=_text_field(data, "account_id", required=False),
                                               **_options(request, principal, data))
        return message_json(message)

    @post("/conversations/{conversation_id:str}/messages", status_code=202, summary="Send in a conversation",
          responses=documented(202, SentMessage, "The message, queued to send"))
    async def send_in_conversation(self, request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal],
                                   conversation_id: FromPath[str],
                                   data: Annotated[Any, Body(description="{type, content, reply_to?, priority?}", schema_extra=SEND_BODY)]
                                   ) -> dict[str, Any]:
        data = _object(data)
        for name in ("to", "account_id"):
            if name in data:
                raise ValidationFailed(f"{name} is set by the conversation.", details={name: "not allowed here"})
        draft = _draft(data)
        message = await runtime.outbox.send_in(principal.scope, conversation_id, draft,
                                               **_options(request, principal, data))
        return message_json(message)

    @get("/messages", summary="Failed messages (the dead-letter list), newest first", guards=[requires_admin],
         responses=documented(200, FailedList, "A page of failed messages"))
    async def failed(self, principal: NamedDependency[Principal],
                     status: Annotated[str, QueryParameter(description="Only `failed` is listed")] = "failed",
                     account_id: Annotated[str | None, QueryParameter(description="Only this number")] = None,
                     error_code: Annotated[int | None, QueryParameter(description="Only this WhatsApp error code")
                                           ] = None,
                     start: Annotated[datetime | None, QueryParameter(name="from", description="Failed at or after "
                                                                      "(ISO 8601)")] = None,
                     end: Annotated[datetime | None, QueryParameter(name="to", description="Failed before")] = None,
                     discarded: Annotated[bool, QueryParameter(description="Those set aside instead")] = False,
                     cursor: Annotated[str | None, QueryParameter(description="next_cursor of the last page")] = None,
                     limit: Annotated[int, QueryParameter(description="1 to 200")] = 50) -> dict[str, Any]:
        """What WhatsApp refused for good, with the reason in words (`error.agent_message`); retry them with
        `POST /api/v1/messages/retry` or set them aside with `POST /api/v1/messages/discard`."""
        if status != "failed":
            raise ValidationFailed("Only failed messages are listed here (status=failed).", error_code="FILTER_INVALID",
                                   details={"status": "only failed"}, status_code=400)
        page = await failed_page(principal.workspace_id,
                                 filter_of(account_id, error_code, start, end, discarded, cursor, limit))
        return {"data": [message_json(m) for m in page.messages], "next_cursor": page.next_cursor}

    @get("/messages/{message_id:str}", summary="One message with its delivery status",
         responses=documented(200, SentMessage, "The message"))
    async def get_message(self, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal], message_id: FromPath[str]) -> dict[str, Any]:
        return message_json(await runtime.outbox.get(principal.scope, message_id))

    @post("/messages/{message_id:str}/retry", status_code=202, summary="Send a failed message again",
          responses=documented(202, SentMessage, "The message, queued again"))
    async def retry_message(self, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal], message_id: FromPath[str]) -> dict[str, Any]:
        return message_json(await runtime.outbox.retry(principal.scope, message_id))

    @post("/accounts/{account_id:str}/retry-failed", status_code=202, guards=[requires_admin],
          summary="Send again the number's messages that failed since a time (default: the last 24 h)",
          responses=documented(202, RetryReport, "What was queued again, and what was not (by error code)"))
    async def retry_failed(self, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal], account_id: FromPath[str],
                           since: FromQuery[datetime | None] = None) -> dict[str, Any]:
        """For after WhatsApp was down for a number: ``{"retried", "skipped": {error_code: n}, "more"}``;
        call again while ``more`` is true. Admins only."""
        since = as_utc(since) if since is not None else utcnow() - timedelta(hours=24)
        return await runtime.outbox.retry_failed(principal.workspace_id, account_id, since)

    @post("/media", status_code=201, summary="Upload a file to send (multipart: file, type?)",
          request_max_body_size=MAX_UPLOAD_BYTES + 1024 * 1024,
          responses=documented(201, UploadedMedia, "The stored file"))
    async def upload_media(self, request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]
                           ) -> dict[str, Any]:
        if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
            raise ValidationFailed("Upload the file as multipart/form-data with a 'file' part (and optionally "
                                   "'type': image, video, audio, document or sticker).", error_code="MULTIPART_REQUIRED")
        # The file streams into a temporary file (uploads.py): refused as soon as it passes 100 MB.
        async with receive_upload(request, limit=MAX_UPLOAD_BYTES, too_large=too_large) as form:
            if form.file is None:
                raise ValidationFailed("The 'file' part is missing.", details={"file": "required"})
            if "type" in form.other_files:
                raise ValidationFailed("'type' must be text.", details={"type": "must be text"})
            kind = form.fields.get("type")
            media = await runtime.outbox.media.store_upload(principal.workspace_id, form.file, form.filename,
                                                            kind or None)
        return media_view(media)
