"""JSON API v1: broadcasts (admins): drafts, audience count, preview, test send, start / schedule, pause,
resume, cancel, progress and recipients (also as CSV)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Literal

from litestar import Controller, Request, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Stream
from pydantic import BaseModel, ConfigDict, Field

from app.api_shapes import ApiShape, documented, multipart
from app.auth import requires_admin
from app.domains.broadcasts.models import Broadcast, view
from app.domains.broadcasts.services import BroadcastIn
from app.domains.contact_files.api import import_out, received_csv
from app.domains.contact_files.exporting import escape_cell
from app.domains.contact_files.reading import MAX_BYTES
from app.domains.messages.schemas import MessageOut, message_out
from app.domains.workspaces.services import Principal
from app.runtime import Runtime

CSV = "text/csv"


class BroadcastShape(ApiShape):
    id: str
    name: str
    account_id: str
    template_name: str
    language: str
    params: list[dict[str, Any]]
    header_link: str | None
    audience: dict[str, Any]
    status: Literal["draft", "scheduled", "sending", "paused", "completed", "cancelled"]
    scheduled_at: str | None
    open_conversations: bool
    pause_reason: str | None
    total: int = Field(description="Recipients frozen when it started")
    frozen_at: str | None
    started_at: str | None
    completed_at: str | None
    next_send_at: str | None = Field(None, description="While the number's daily limit is reached: when it goes on")
    counts: dict[str, Any] | None = Field(None, description="pending, queued, skipped (by reason), replied, sent, "
                                                            "billable_by_category (Meta's pricing), "
                                                            "delivered, read, failed (by reason), waiting_in_outbox")
    created_at: str


class BroadcastList(ApiShape):
    data: list[BroadcastShape]


class AudienceShape(ApiShape):
    contacts: int = Field(description="In the audience now")
    opted_out: int = Field(description="Of them, opted out of marketing (skipped for a MARKETING template)")
    to_send: int


class PreviewShape(ApiShape):
    contact_id: str
    skipped: str | None = Field(None, description="Why this contact would be skipped (a value missing)")
    rendered: dict[str, Any] | None = Field(None, description="header, body, footer, buttons as read")


class RecipientShape(ApiShape):
    id: str
    contact_id: str
    name: str | None
    phone: str | None
    status: str = Field(description="pending, skipped, or the message's status (queued ... read, failed)")
    reason: str | None
    message_id: str | None
    replied_at: str | None


class RecipientPage(ApiShape):
    data: list[RecipientShape]
    next_cursor: str | None


class StartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at: datetime | None = Field(None, description="Schedule it (ISO 8601 with a zone); none or past: now")


class ListUploaded(ApiShape):
    broadcast: BroadcastShape
    import_: dict[str, Any] = Field(alias="import", description="The list's contact import (as GET "
                                    "/api/v1/contacts/imports/{import_id}): its progress")


ListUpload = multipart("The CSV: a phone (or WhatsApp user id) column, optionally name, email and attributes",
                       default_country="ISO 3166 country for numbers written without + (e.g. GB)")


class TestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    contact_id: str


async def _view(runtime: Runtime, broadcast: Broadcast) -> dict[str, Any]:
    return view(broadcast, await runtime.broadcasts.counts(broadcast))


def _who(principal: Principal) -> str:
    if principal.user is not None:
        return principal.user.name or principal.user.email
    return f"API key {principal.api_key.name}" if principal.api_key is not None else "the API"


class BroadcastsApi(Controller):
    path = "/api/v1/broadcasts"
    guards = [requires_admin]
    tags = ["broadcasts"]

    @get("/", summary="Broadcasts, newest first", responses=documented(200, BroadcastList, "Up to 100"))
    async def list_broadcasts(self, principal: NamedDependency[Principal], runtime: NamedDependency[Runtime]
                              ) -> dict[str, Any]:
        return {"data": [view(b) for b in await runtime.broadcasts.all(principal.workspace_id)]}

    @post("/", summary="Create a draft broadcast", status_code=201,
          description="422 BROADCAST_INVALID / TEMPLATE_NOT_APPROVED / AUDIENCE_INVALID naming the field.",
          responses=documented(201, BroadcastShape, "The draft"))
    async def create_broadcast(self, data: JSONBody[BroadcastIn], principal: NamedDependency[Principal],
                               runtime: NamedDependency[Runtime]) -> dict[str, Any]:
        saved = await runtime.broadcasts.save(principal.workspace_id, data.model_dump(), by=principal.user_id)
        return await _view(runtime, saved)

    @get("/{broadcast_id:str}", summary="One broadcast with its counts", responses=documented(200, BroadcastShape, "It"))
    async def get_broadcast(self, broadcast_id: FromPath[str], principal: NamedDependency[Principal],
                            runtime: NamedDependency[Runtime]) -> dict[str, Any]:
        return await _view(runtime, await runtime.broadcasts.get(principal.workspace_id, broadcast_id))

    @put("/{broadcast_id:str}", summary="Change a draft", responses=documented(200, BroadcastShape, "The draft"))
    async def update_broadcast(self, broadcast_id: FromPath[str], data: JSONBody[BroadcastIn],
                               principal: NamedDependency[Principal], runtime: NamedDependency[Runtime]
                               ) -> dict[str, Any]:
        saved = await runtime.broadcasts.save(principal.workspace_id, data.model_dump(), broadcast_id=broadcast_id)
        return await _view(runtime, saved)

    @delete("/{broadcast_id:str}", summary="Delete a draft or scheduled broadcast", status_code=204)
    async def delete_broadcast(self, broadcast_id: FromPath[str], principal: NamedDependency[Principal],
                               runtime: NamedDependency[Runtime]) -> None:
        await runtime.broadcasts.delete(principal.workspace_id, broadcast_id)

    @get("/{broadcast_id:str}/audience", summary="How many the audience holds now (and how many opted out)",
         responses=documented(200, AudienceShape, "The counts"))
    async def audience(self, broadcast_id: FromPath[str], principal: NamedDependency[Principal],
                       runtime: NamedDependency[Runtime]) -> dict[str, int]:
        service = runtime.broadcasts
        return await service.audience_count(await service.get(principal.workspace_id, broadcast_id))

    @get("/{broadcast_id:str}/preview", summary="The message as a contact would read it",
         responses=documented(200, PreviewShape, "The rendered message"))
    async def preview(self, broadcast_id: FromPath[str], principal: NamedDependency[Principal],
                      runtime: NamedDependency[Runtime], contact_id: FromQuery[str | None] = None) -> dict[str, Any]:
        service = runtime.broadcasts
        return await service.preview(await service.get(principal.workspace_id, broadcast_id), contact_id)

    @post("/{broadcast_id:str}/test", summary="Send the message to one contact now (not a recipient)",
          status_code=202, responses=documented(202, MessageOut, "The queued message"))
    async def test_send(self, broadcast_id: FromPath[str], data: JSONBody[TestIn],
                        principal: NamedDependency[Principal], runtime: NamedDependency[Runtime]) -> MessageOut:
        service = runtime.broadcasts
        return message_out(await service.test_send(await service.get(principal.workspace_id, broadcast_id),
                                                   data.contact_id))

    @post("/{broadcast_id:str}/start", summary="Start now or schedule", status_code=200,
          description="The audience is frozen when sending starts. 409 BROADCAST_STARTED when it was started "
                      "already (two admins pressing Start: one wins).",
          responses=documented(200, BroadcastShape, "The broadcast"))
    async def start(self, broadcast_id: FromPath[str], data: JSONBody[StartIn], principal: NamedDependency[Principal],
                    runtime: NamedDependency[Runtime]) -> dict[str, Any]:
        return await _view(runtime, await runtime.broadcasts.start(principal.workspace_id, broadcast_id, at=data.at))

    @post("/{broadcast_id:str}/pause", summary="Pause", status_code=200,
          responses=documented(200, BroadcastShape, "The broadcast"))
    async def pause(self, broadcast_id: FromPath[str], principal: NamedDependency[Principal],
                    runtime: NamedDependency[Runtime]) -> dict[str, Any]:
        return await _view(runtime, await runtime.broadcasts.pause(principal.workspace_id, broadcast_id,
                                                                   by=_who(principal)))

    @post("/{broadcast_id:str}/resume", summary="Resume from where it was", status_code=200,
          responses=documented(200, BroadcastShape, "The broadcast"))
    async def resume(self, broadcast_id: FromPath[str], principal: NamedDependency[Principal],
                     runtime: NamedDependency[Runtime]) -> dict[str, Any]:
        return await _view(runtime, await runtime.broadcasts.resume(principal.workspace_id, broadcast_id))

    @post("/{broadcast_id:str}/cancel", summary="Cancel for good", status_code=200,
          responses=documented(200, BroadcastShape, "The broadcast"))
    async def cancel(self, broadcast_id: FromPath[str], principal: NamedDependency[Principal],
                     runtime: NamedDependency[Runtime]) -> dict[str, Any]:
        return await _view(runtime, await runtime.broadcasts.cancel(principal.workspace_id, broadcast_id))

    @post("/{broadcast_id:str}/lists", summary="Upload a list of customers (CSV) into a draft's audience",
          status_code=201, request_max_body_size=MAX_BYTES + 1024 * 1024, operation_class=ListUpload,
          description="multipart/form-data: `file` (a CSV with a phone or user id column; name, email and attributes "
                      "are imported as Contacts → Import guesses them) and optionally `default_country` (ISO 3166, "
                      "for numbers written without +). Each row's contact is created or updated and tagged with the "
                      "list's tag, which puts it in the audience. The import runs in the background: poll "
                      "`GET /api/v1/contacts/imports/{import_id}`; Start answers 409 LIST_IMPORTING until it is done. "
                      "422 LIST_NO_PHONE when no column looks like phone numbers.",
          responses=documented(201, ListUploaded, "The draft and the list's import"))
    async def upload_list(self, broadcast_id: FromPath[str], request: Request[Any, Any, Any],
                          principal: NamedDependency[Principal], runtime: NamedDependency[Runtime]) -> dict[str, Any]:
        async with received_csv(request) as form:
            assert form.file is not None
            broadcast, job = await runtime.broadcasts.add_list(
                principal.workspace_id, broadcast_id, form.file, form.filename, by=principal.user_id,
                default_country=form.fields.get("default_country"))
        return {"broadcast": await _view(runtime, broadcast), "import": import_out(job).model_dump(mode="json")}

    @get("/{broadcast_id:str}/recipients", summary="Recipients with their message's status (keyset by after=id)",
         responses=documented(200, RecipientPage, "A page"))
    async def recipients(self, broadcast_id: FromPath[str], principal: NamedDependency[Principal],
                         runtime: NamedDependency[Runtime],
                         status: FromQuery[Literal["pending", "queued", "skipped"] | None] = None,
                         after: FromQuery[str | None] = None, limit: FromQuery[int] = 50) -> dict[str, Any]:
        service = runtime.broadcasts
        broadcast = await service.get(principal.workspace_id, broadcast_id)
        rows = await service.recipients(broadcast, status=status, after=after, limit=limit)
        return {"data": rows, "next_cursor": rows[-1]["id"] if len(rows) == max(1, min(limit, 500)) else None}

    @get("/{broadcast_id:str}/recipients.csv", media_type=CSV, summary="Every recipient as CSV (streamed)")
    async def recipients_csv(self, broadcast_id: FromPath[str], principal: NamedDependency[Principal],
                             runtime: NamedDependency[Runtime]) -> Stream:
        service = runtime.broadcasts
        broadcast = await service.get(principal.workspace_id, broadcast_id)

        async def rows() -> AsyncIterator[str]:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(["contact_id", "name", "phone", "status", "reason", "replied_at"])
            after = None
            while True:
                page = await service.recipients(broadcast, after=after, limit=500)
                for row in page:
                    writer.writerow([row["contact_id"], escape_cell(row["name"]), row["phone"] or "", row["status"],
                                     escape_cell(row["reason"]), row["replied_at"] or ""])
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
                if len(page) < 500:
                    return
                after = page[-1]["id"]

        return Stream(rows(), media_type=CSV,
                      headers={"Content-Disposition": f'attachment; filename="broadcast-{broadcast.id}.csv"'})

