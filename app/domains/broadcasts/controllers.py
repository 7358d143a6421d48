"""Admin pages "Broadcasts": the list, the draft form (number, approved template, one row per body parameter,
audience and exclusions), a broadcast's page (before sending: audience count, preview, test send, start or
schedule; after: progress, counts, reasons, pause / resume / cancel, recipients, CSV).

Live progress: the page opens ``/admin/broadcasts/{id}/live``, a WebSocket on the workspace's live channel
(like the templates list's). It reads nothing itself: a ``broadcast.*`` event of this broadcast (or, at most
every few seconds, a message's status change: delivered and read come after the broadcast has handed its
messages on) sends a hidden element that makes htmx GET the progress fragment, the same ``_progress.html``
the page renders.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, WebSocket, get, post, websocket
from litestar.channels import ChannelsPlugin
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Stream, Template

from app.auth import requires_admin
from app.domains.broadcasts.models import Broadcast, view
from app.domains.catalog.services import Catalog
from app.domains.contact_files.exporting import escape_cell
from app.domains.contact_files.imports import file_too_large
from app.domains.contact_files.reading import MAX_BYTES
from app.domains.contacts.directory import ContactDirectory
from app.domains.outbox.uploads import receive_upload
from app.domains.segments.services import SegmentService
from app.domains.workspaces.services import Principal
from app.errors import AppError, NotFound, ValidationFailed
from app.forms import errors_of, go_to, read_form, read_list
from app.logging import get_logger
from app.realtime import workspace_channel
from app.runtime import Runtime

log = get_logger(__name__)

PAGE = 50
CSV_PAGE = 500
RECENT_CONTACTS = 20
MAX_PARAMS = 20
RECIPIENT_FILTERS = ("pending", "queued", "skipped")
PARAM_SOURCES = (("name", "Contact name"), ("phone", "Phone number"), ("attribute", "Attribute"),
                 ("text", "Fixed text"))
STATUS_WORDS = {"draft": "Draft", "scheduled": "Scheduled", "sending": "Sending", "paused": "Paused",
                "completed": "Completed", "cancelled": "Cancelled"}
NOTICES = {"saved": "Saved.", "started": "Started: the audience is frozen, sending goes on in the background.",
           "scheduled": "Scheduled.", "paused": "Paused.", "resumed": "Resumed.", "cancelled": "Cancelled.",
           "deleted": "Deleted.", "listed": "List uploaded: its contacts are being imported into the audience."}
BROADCAST_EVENTS = {"broadcast.updated", "broadcast.paused", "broadcast.completed"}
NUDGE_EVERY = 0.5
"""A broadcast's own events: the progress is fetched again at most this often."""
MESSAGE_EVENTS_EVERY = 2.0
"""Messages' status changes (any in the workspace, they do not name their broadcast): at most this often."""
CSV_HEADER = ["contact_id", "name", "phone", "status", "reason", "replied_at"]
BLANK: dict[str, Any] = {"name": "", "account_id": "", "template_name": "", "language": "", "params": [],
                         "header_link": None, "open_conversations": False, "local_time": None,
                         "audience": {"segment_ids": [], "tags": [], "contact_ids": [], "exclude_segment_ids": [],
                                      "exclude_tags": []}}


def _words_list(text: str) -> list[str]:
    """Comma (or line) separated words, trimmed, each once, in order."""
    seen: dict[str, None] = {}
    for part in re.split(r"[,\n]", text or ""):
        if part.strip():
            seen[part.strip()] = None
    return list(seen)


def _body_text(components: list[dict[str, Any]]) -> str:
    return next((str(c.get("text") or "") for c in components if str(c.get("type", "")).upper() == "BODY"), "")


def param_count(body: str) -> int:
    """The body's parameters as the service counts them."""
    return body.count("{{")


def place_of(key: str) -> str:
    """Where a refusal's ``details`` key shows on the form."""
    parts = key.split(".")
    if parts[0] in ("template_name", "language"):
        return "template"
    if parts[0] == "params":
        return f"params.{parts[1]}" if len(parts) > 1 and parts[1].isdigit() else "params"
    if parts[0] == "audience":
        if len(parts) > 1 and parts[1] in ("segment_ids", "tags", "contact_ids", "exclude_segment_ids",
                                           "exclude_tags"):
            return parts[1]
        return "audience"
    return parts[0] if parts[0] in ("name", "account_id", "header_link", "open_conversations", "local_time") \
        else "form"


def _form_errors(error: AppError | None) -> dict[str, str]:
    placed: dict[str, str] = {}
    for key, message in errors_of(error).items():
        placed.setdefault(place_of(key), message)
    return placed


def draft_from_form(form: dict[str, str], lists: dict[str, list[str]], params_wanted: int) -> dict[str, Any]:
    """The service's raw draft from the posted form (rows past the template's parameters are ignored)."""
    name, _, language = form.get("template", "").partition("|")
    params = []
    for i in range(min(params_wanted, MAX_PARAMS)):
        source = form.get(f"param_source_{i}", "text")
        value = form.get(f"param_attribute_{i}", "") if source == "attribute" else \
            form.get(f"param_text_{i}", "") if source == "text" else ""
        params.append({"source": source, "value": value, "fallback": form.get(f"param_fallback_{i}") or None})
    return {"name": form.get("name", ""), "account_id": form.get("account_id", ""), "template_name": name,
            "language": language, "params": params, "header_link": form.get("header_link") or None,
            "open_conversations": form.get("open_conversations") == "on", "local_time": form.get("local_time") or None,
            "audience": {"segment_ids": [s for s in lists["segment_ids"] if s],
                         "tags": _words_list(form.get("tags", "")),
                         "contact_ids": _words_list(form.get("contact_ids", "").replace(" ", ",")),
                         "exclude_segment_ids": [s for s in lists["exclude_segment_ids"] if s],
                         "exclude_tags": _words_list(form.get("exclude_tags", "")),
                         "lists": [{"import_id": i, "tag": ""} for i in lists.get("lists", []) if i]}}


def zone_of(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ValueError, KeyError):  # a zone this system does not know: show UTC rather than fail
        return ZoneInfo("UTC")


def local_time(value: Any, zone: ZoneInfo) -> str:
    """A stored (UTC) time as the workspace reads it: "2026-05-01 14:03"."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def schedule_at(text: str, zone: ZoneInfo, now: datetime) -> datetime:
    """A ``datetime-local`` value in the workspace's zone, as UTC; 422 naming ``at`` when unreadable or past."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationFailed("Pick a date and a time to schedule it.", error_code="SCHEDULE_INVALID",
                               details={"at": "a date and a time"}) from None
    moment = (moment.replace(tzinfo=zone) if moment.tzinfo is None else moment).astimezone(UTC)
    if moment <= now:
        raise ValidationFailed("That time has passed: pick a later one, or start it now.",
                               error_code="SCHEDULE_INVALID", details={"at": "in the past"})
    return moment


def progress_parts(counts: dict[str, Any]) -> dict[str, Any]:
    """The progress bar's segments, each recipient in exactly one, in words and in thousandths of the bar."""
    read = counts.get("read", 0)
    delivered = max(counts.get("delivered", 0) - read, 0)
    sent = max(counts.get("sent", 0) - counts.get("delivered", 0), 0)
    failed = counts.get("failed", 0)
    waiting = counts.get("waiting_in_outbox", 0)
    accepted = max(counts.get("queued", 0) - counts.get("sent", 0) - failed - waiting, 0)
    segments = [("read", "Read", read), ("delivered", "Delivered, not read", delivered),
                ("sent", "Sent, not delivered yet", sent), ("accepted", "Accepted by WhatsApp, no news yet", accepted),
                ("queued", "In the send queue", waiting),
                ("failed", "Failed", failed), ("skipped", "Skipped", counts.get("skipped", 0)),
                ("pending", "Waiting their turn", counts.get("pending", 0))]
    total = max(counts.get("total", 0), sum(n for _, _, n in segments), 1)
    out, x = [], 0
    for key, words, n in segments:
        width = round(n * 1000 / total)
        out.append({"key": key, "words": words, "n": n, "x": x, "width": width})
        x += width
    return {"segments": out, "total": counts.get("total", 0), "sent": counts.get("sent", 0)}


def _directory(runtime: Runtime) -> ContactDirectory:
    return ContactDirectory(runtime.live, runtime.integrations)


async def _zone(runtime: Runtime, principal: Principal) -> ZoneInfo:
    return await runtime.business_hours.zone(principal.workspace_id)


class BroadcastPages(Controller):
    path = "/admin/broadcasts"
    guards = [requires_admin]
    include_in_schema = False

    # -- the list ----------------------------------------------------------------------------------
    @get("/")
    async def index(self, principal: NamedDependency[Principal], runtime: NamedDependency[Runtime],
                    deleted: FromQuery[str | None] = None) -> Template:
        ws = principal.workspace_id
        service = runtime.broadcasts
        broadcasts = await service.all(ws)
        started = [b for b in broadcasts if b.status != "draft"]
        counted = dict(zip([b.id for b in started], await asyncio.gather(*(service.counts(b) for b in started)),
                           strict=True))
        numbers = {str(n.id): f"{n.name} ({n.display_phone_number})" for n in await runtime.accounts.list(ws)}
        zone = await _zone(runtime, principal)
        rows = [{"id": str(b.id), "name": b.name, "number": numbers.get(str(b.account_id), "a removed number"),
                 "template": f"{b.template_name} ({b.language})", "status": b.status,
                 "status_words": STATUS_WORDS.get(b.status, b.status), "counts": counted.get(b.id),
                 "started": local_time(b.started_at, zone), "completed": local_time(b.completed_at, zone),
                 "scheduled": local_time(b.scheduled_at, zone), "pause_reason": b.pause_reason} for b in broadcasts]
        return Template("admin/broadcasts/index.html", context={
            "active": "broadcasts", "rows": rows, "zone": zone.key, "notice": NOTICES["deleted"] if deleted else None})

    # -- the draft form ----------------------------------------------------------------------------
    @get("/new")
    async def new(self, principal: NamedDependency[Principal], runtime: NamedDependency[Runtime]) -> Template:
        return Template("admin/broadcasts/edit.html", context=await self._form(runtime, principal, BLANK))

    @post("/new", status_code=303)
    async def create(self, request: Request, principal: NamedDependency[Principal],
                     runtime: NamedDependency[Runtime]) -> Response[Any] | Template:
        return await self._save(request, runtime, principal, None)

    @get("/{broadcast_id:str}/edit")
    async def edit(self, broadcast_id: FromPath[str], principal: NamedDependency[Principal],
                   runtime: NamedDependency[Runtime]) -> Template | Response[Any]:
        broadcast = await runtime.broadcasts.get(principal.workspace_id, broadcast_id)
        if broadcast.status != "draft":  # only a draft changes: its page says what happened instead
            return Redirect(f"/admin/broadcasts/{broadcast.id}", status_code=303)
        return Template("admin/broadcasts/edit.html",
                        context=await self._form(runtime, principal, view(broadcast), broadcast_id=broadcast_id))

    @post("/{broadcast_id:str}/edit", status_code=303)
    async def update(self, broadcast_id: FromPath[str], request: Request, principal: NamedDependency[Principal],
                     runtime: NamedDependency[Runtime]) -> Response[Any] | Template:
        await runtime.broadcasts.get(principal.workspace_id, broadcast_id)  # 404 first
        return await self._save(request, runtime, principal, broadcast_id)

    async def _save(self, request: Request, runtime: Runtime, principal: Principal,
                    broadcast_id: str | None) -> Response[Any] | Template:
        form, _ = await read_form(request)
        lists = {key: await read_list(request, key) for key in ("segment_ids", "exclude_segment_ids", "lists")}
        templates = await self._templates(runtime, principal)
        name, _, language = form.get("template", "").partition("|")
        chosen = next((t for t in templates if t["name"] == name and t["language"] == language
                       and t["account_ids"] and form.get("account_id") in t["account_ids"]), None) or \
            next((t for t in templates if t["name"] == name and t["language"] == language), None)
        raw = draft_from_form(form, lists, chosen["params"] if chosen else 0)
        try:
            saved = await runtime.broadcasts.save(principal.workspace_id, raw, broadcast_id=broadcast_id,
                                                  by=principal.user_id)
        except AppError as error:
            context = await self._form(runtime, principal, raw, broadcast_id=broadcast_id, error=error,
                                       templates=templates)
            return Template("admin/broadcasts/edit.html", context=context, status_code=error.status_code)
        return go_to(request, f"/admin/broadcasts/{saved.id}?saved=1")

    async def _templates(self, runtime: Runtime, principal: Principal) -> list[dict[str, Any]]:
        ws = principal.workspace_id
        numbers = await runtime.accounts.list(ws)
        by_waba: dict[str, list[str]] = {}
        for number in numbers:
            by_waba.setdefault(number.waba_id, []).append(str(number.id))
        out = []
        for template in await runtime.templates.list(ws, status="APPROVED"):
            body = _body_text(template.components)
            out.append({"name": template.name, "language": template.language, "category": template.category,
                        "waba_id": template.waba_id, "body": body, "params": param_count(body),
                        "account_ids": by_waba.get(template.waba_id, [])})
        return out

    async def _form(self, runtime: Runtime, principal: Principal, draft: dict[str, Any], *,
                    broadcast_id: str | None = None, error: AppError | None = None,
                    templates: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        ws = principal.workspace_id
        numbers = await runtime.accounts.list(ws)
        templates = templates if templates is not None else await self._templates(runtime, principal)
        segments = await SegmentService().list(ws)
        attributes = await Catalog().attributes(ws)
        account_id = str(draft.get("account_id") or (numbers[0].id if numbers else ""))
        chosen = next((t for t in templates if t["name"] == draft.get("template_name")
                       and t["language"] == draft.get("language") and account_id in t["account_ids"]), None)
        params = list(draft.get("params") or [])
        rows = max([chosen["params"] if chosen else 0, len(params)] + [t["params"] for t in templates] or [0])
        params += [{"source": "name", "value": "", "fallback": None}] * (min(rows, MAX_PARAMS) - len(params))
        return {"active": "broadcasts", "broadcast_id": broadcast_id, "draft": draft, "params": params,
                "shown_params": chosen["params"] if chosen else len(draft.get("params") or []),
                "account_id": account_id, "chosen": chosen,
                "numbers": [{"id": str(n.id), "name": f"{n.name} ({n.display_phone_number})", "waba_id": n.waba_id}
                            for n in numbers],
                "templates": templates, "segments": [{"id": str(s.id), "name": s.name} for s in segments],
                "attributes": [{"key": a.key, "name": a.name} for a in attributes], "sources": PARAM_SOURCES,
                "error": error, "errors": _form_errors(error)}

    # -- one broadcast -----------------------------------------------------------------------------
    @get("/{broadcast_id:str}")
    async def show(self, broadcast_id: FromPath[str], request: Request, principal: NamedDependency[Principal],
                   runtime: NamedDependency[Runtime], contact_id: FromQuery[str | None] = None,
                   status: FromQuery[str | None] = None, after: FromQuery[str | None] = None,
                   tested: FromQuery[str | None] = None) -> Template:
        broadcast = await runtime.broadcasts.get(principal.workspace_id, broadcast_id)
        notice = next((words for key, words in NOTICES.items() if request.query_params.get(key)), None)
        if tested:
            notice = "Test message queued: it shows in the contact's conversation."
        return Template("admin/broadcasts/show.html", context=await self._page(
            runtime, principal, broadcast, contact_id=contact_id, status=status, after=after, notice=notice,
            tested=tested))

    @get("/{broadcast_id:str}/progress")
    async def progress(self, broadcast_id: FromPath[str], principal: NamedDependency[Principal],
                       runtime: NamedDependency[Runtime]) -> Template:
        """The progress section alone (fetched again on live events)."""
        broadcast = await runtime.broadcasts.get(principal.workspace_id, broadcast_id)
        return Template("admin/broadcasts/_progress.html",
                        context=await self._progress(runtime, principal, broadcast))

    async def _progress(self, runtime: Runtime, principal: Principal, broadcast: Broadcast) -> dict[str, Any]:
        counts = await runtime.broadcasts.counts(broadcast) if broadcast.status != "draft" else None
        zone = await _zone(runtime, principal)
        return {"b": view(broadcast, counts), "counts": counts, "zone": zone.key,
                "bar": progress_parts(counts) if counts else None,
                "status_words": STATUS_WORDS.get(broadcast.status, broadcast.status),
                "times": {key: local_time(getattr(broadcast, key), zone)
                          for key in ("scheduled_at", "started_at", "completed_at", "next_send_at", "frozen_at")}}

    async def _page(self, runtime: Runtime, principal: Principal, broadcast: Broadcast, *,
                    contact_id: str | None = None, status: str | None = None, after: str | None = None,
                    notice: str | None = None, tested: str | None = None, error: AppError | None = None,
                    error_at: str | None = None) -> dict[str, Any]:
        ws = principal.workspace_id
        service = runtime.broadcasts
        numbers = {str(n.id): n for n in await runtime.accounts.list(ws)}
        number = numbers.get(str(broadcast.account_id))
        context: dict[str, Any] = {
            "active": "broadcasts", "notice": notice, "tested": tested, "error": error, "error_at": error_at,
            "errors": errors_of(error), "number": f"{number.name} ({number.display_phone_number})" if number
            else "a removed number", **await self._progress(runtime, principal, broadcast)}
        if broadcast.status == "draft":
            context.update(await self._audience(runtime, broadcast))
            try:
                context["preview"] = await service.preview(broadcast, contact_id or None)
            except AppError as problem:
                context["preview_error"] = problem.message if not isinstance(problem, NotFound) else \
                    "No contact with that id in this workspace."
            recent = await _directory(runtime).page(ws, sort="last_inbound", limit=RECENT_CONTACTS)
            context["contacts"] = [{"id": str(c.id), "name": c.display_name, "phone": c.phone or ""}
                                   for c in recent.items]
            context["preview_for"] = contact_id or ""
            template = next((t for t in await runtime.templates.list(ws, name=broadcast.template_name)
                             if t.language == broadcast.language and number is not None
                             and t.waba_id == number.waba_id), None)
            context["category"] = template.category if template is not None else None
        else:
            wanted = status if status in RECIPIENT_FILTERS else None
            rows = await service.recipients(broadcast, status=wanted, after=after, limit=PAGE)
            more = {"status": wanted or "", "after": rows[-1]["id"]} if len(rows) == PAGE else None
            context.update(recipients=rows, recipient_filter=wanted, filters=RECIPIENT_FILTERS, after=after,
                           next_url=f"/admin/broadcasts/{broadcast.id}?{urlencode({k: v for k, v in more.items() if v})}"
                           if more else None)
        return context

    @staticmethod
    async def _audience(runtime: Runtime, broadcast: Broadcast) -> dict[str, Any]:
        context: dict[str, Any] = {"lists": await runtime.broadcasts.lists(broadcast)}
        try:
            context["audience"] = await runtime.broadcasts.audience_count(broadcast)
        except AppError as problem:  # a segment deleted since: say so, the page still shows
            context["audience_error"] = problem.message
        return context

    @get("/{broadcast_id:str}/audience")
    async def audience(self, broadcast_id: FromPath[str], principal: NamedDependency[Principal],
                       runtime: NamedDependency[Runtime]) -> Template:
        """The draft's audience section alone (polled while an uploaded list is being imported)."""
        broadcast = await runtime.broadcasts.get(principal.workspace_id, broadcast_id)
        return Template("admin/broadcasts/_audience.html",
                        context={"b": view(broadcast), **await self._audience(runtime, broadcast)})

    @post("/{broadcast_id:str}/lists", status_code=303, request_max_body_size=MAX_BYTES + 1024 * 1024)
    async def upload_list(self, broadcast_id: FromPath[str], request: Request, principal: NamedDependency[Principal],
                          runtime: NamedDependency[Runtime]) -> Response[Any] | Template:
        try:
            async with receive_upload(request, limit=MAX_BYTES, too_large=file_too_large) as form:
                if form.file is None or not form.file.size and not form.filename:
                    raise ValidationFailed("Choose a CSV file.", error_code="NO_FILE", details={"file": "missing"})
                await runtime.broadcasts.add_list(principal.workspace_id, broadcast_id, form.file, form.filename,
                                                  by=principal.user_id, default_country=form.fields.get("default_country"))
        except AppError as error:
            return await self._again(runtime, principal, broadcast_id, error, "list")
        return go_to(request, f"/admin/broadcasts/{broadcast_id}?listed=1")

    async def _again(self, runtime: Runtime, principal: Principal, broadcast_id: str, error: AppError,
                     at: str) -> Template:
        """The broadcast's page with a refusal shown where it was asked (status of the refusal)."""
        broadcast = await runtime.broadcasts.get(principal.workspace_id, broadcast_id)
        status = 422 if isinstance(error, NotFound) else error.status_code
        if isinstance(error, NotFound):
            error = ValidationFailed("No contact with that id in this workspace.", error_code="CONTACT_NOT_FOUND",
                                     details={"contact_id": "not found"})
        return Template("admin/broadcasts/show.html", status_code=status,
                        context=await self._page(runtime, principal, broadcast, error=error, error_at=at))

    # -- before sending: test, start / schedule, delete --------------------------------------------
    @post("/{broadcast_id:str}/test", status_code=303)
    async def test_send(self, broadcast_id: FromPath[str], request: Request, principal: NamedDependency[Principal],
                        runtime: NamedDependency[Runtime]) -> Response[Any] | Template:
        form, _ = await read_form(request)
        broadcast = await runtime.broadcasts.get(principal.workspace_id, broadcast_id)
        contact_id = form.get("contact_id_typed") or form.get("contact_id") or ""
        try:
            if not contact_id:
                raise ValidationFailed("Pick a contact, or type a contact id.", error_code="CONTACT_MISSING",
                                       details={"contact_id": "missing"})
            message = await runtime.broadcasts.test_send(broadcast, contact_id)
        except AppError as error:
            return await self._again(runtime, principal, broadcast_id, error, "test")
        return go_to(request, f"/admin/broadcasts/{broadcast.id}?tested={message.conversation_id}")

    @post("/{broadcast_id:str}/start", status_code=303)
    async def start(self, broadcast_id: FromPath[str], request: Request, principal: NamedDependency[Principal],
                    runtime: NamedDependency[Runtime]) -> Response[Any] | Template:
        form, _ = await read_form(request)
        try:
            at = None
            if form.get("when") == "later":
                at = schedule_at(form.get("at", ""), await _zone(runtime, principal), datetime.now(UTC))
            started = await runtime.broadcasts.start(principal.workspace_id, broadcast_id, at=at)
        except AppError as error:
            return await self._again(runtime, principal, broadcast_id, error, "start")
        return go_to(request, f"/admin/broadcasts/{started.id}?{'scheduled' if at else 'started'}=1")

    @post("/{broadcast_id:str}/delete", status_code=303)
    async def delete(self, broadcast_id: FromPath[str], request: Request, principal: NamedDependency[Principal],
                     runtime: NamedDependency[Runtime]) -> Response[Any] | Template:
        try:
            await runtime.broadcasts.delete(principal.workspace_id, broadcast_id)
        except AppError as error:
            if isinstance(error, NotFound):
                raise
            return await self._again(runtime, principal, broadcast_id, error, "actions")
        return go_to(request, "/admin/broadcasts?deleted=1")

    # -- while sending: pause / resume / cancel ----------------------------------------------------
    @post("/{broadcast_id:str}/pause", status_code=303)
    async def pause(self, broadcast_id: FromPath[str], request: Request, principal: NamedDependency[Principal],
                    runtime: NamedDependency[Runtime]) -> Response[Any] | Template:
        return await self._change(request, runtime, principal, broadcast_id, "pause")

    @post("/{broadcast_id:str}/resume", status_code=303)
    async def resume(self, broadcast_id: FromPath[str], request: Request, principal: NamedDependency[Principal],
                     runtime: NamedDependency[Runtime]) -> Response[Any] | Template:
        return await self._change(request, runtime, principal, broadcast_id, "resume")

    @post("/{broadcast_id:str}/cancel", status_code=303)
    async def cancel(self, broadcast_id: FromPath[str], request: Request, principal: NamedDependency[Principal],
                     runtime: NamedDependency[Runtime]) -> Response[Any] | Template:
        return await self._change(request, runtime, principal, broadcast_id, "cancel")

    async def _change(self, request: Request, runtime: Runtime, principal: Principal, broadcast_id: str,
                      action: str) -> Response[Any] | Template:
        ws = principal.workspace_id
        service = runtime.broadcasts
        who = (principal.user.name or principal.user.email) if principal.user else "an admin"
        try:
            if action == "pause":
                changed = await service.pause(ws, broadcast_id, by=who)
            elif action == "resume":
                changed = await service.resume(ws, broadcast_id)
            else:
                changed = await service.cancel(ws, broadcast_id)
        except AppError as error:
            if isinstance(error, NotFound):
                raise
            return await self._again(runtime, principal, broadcast_id, error, "actions")
        done = {"pause": "paused", "resume": "resumed", "cancel": "cancelled"}[action]
        return go_to(request, f"/admin/broadcasts/{changed.id}?{done}=1")

    # -- recipients as CSV -------------------------------------------------------------------------
    @get("/{broadcast_id:str}/recipients.csv")
    async def recipients_csv(self, broadcast_id: FromPath[str], principal: NamedDependency[Principal],
                             runtime: NamedDependency[Runtime]) -> Stream:
        service = runtime.broadcasts
        broadcast = await service.get(principal.workspace_id, broadcast_id)

        async def rows() -> AsyncIterator[str]:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(CSV_HEADER)
            after = None
            while True:
                page = await service.recipients(broadcast, after=after, limit=CSV_PAGE)
                for row in page:
                    writer.writerow([row["contact_id"], escape_cell(row["name"]), row["phone"] or "",
                                     row["status"], escape_cell(row["reason"]), row["replied_at"] or ""])
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
                if len(page) < CSV_PAGE:
                    return
                after = page[-1]["id"]

        return Stream(rows(), media_type="text/csv",
                      headers={"Content-Disposition": f'attachment; filename="broadcast-{broadcast.id}.csv"'})

    # -- live progress -----------------------------------------------------------------------------
    @websocket("/{broadcast_id:str}/live")
    async def live(self, broadcast_id: FromPath[str], socket: WebSocket, channels: NamedDependency[ChannelsPlugin]
                   ) -> None:
        """Tells the page when to fetch its progress again; reads nothing, holds no database resource."""
        principal: Principal = socket.scope["user"]
        origin = socket.headers.get("origin")
        if origin and urlsplit(origin).netloc != socket.headers.get("host"):
            await socket.close(code=4403)  # another site's page may not listen to our workspace
            return
        await socket.accept()
        safe_id = re.sub(r"[^0-9a-f]", "", broadcast_id)[:24]
        nudge = (f'<span id="bc-nudge" hidden hx-swap-oob="true" hx-get="/admin/broadcasts/{safe_id}/progress" '
                 f'hx-trigger="load" hx-target="#bc-progress" hx-swap="outerHTML"></span>')
        poked = asyncio.Event()
        urgent = False

        async def on_event(message: bytes) -> None:
            nonlocal urgent
            try:
                event = json.loads(message)
            except ValueError:
                return
            name = event.get("event") if isinstance(event, dict) else None
            if name in BROADCAST_EVENTS and event.get("broadcast_id") == broadcast_id:
                urgent = True
                poked.set()
            elif name == "message.updated":
                poked.set()

        async def send_nudges() -> None:
            nonlocal urgent
            while True:
                await poked.wait()
                if not urgent:  # only messages changed somewhere: wait for more before asking again
                    await asyncio.sleep(MESSAGE_EVENTS_EVERY)
                poked.clear()
                urgent = False
                await socket.send_text(nudge)
                await asyncio.sleep(NUDGE_EVERY)

        async with channels.start_subscription([workspace_channel(principal.workspace_id)]) as subscriber:
            async with subscriber.run_in_background(on_event, join=False):
                sender = asyncio.create_task(send_nudges())
                try:
                    while True:
                        await socket.receive_text()  # the page sends nothing; this ends on disconnect
                except WebSocketDisconnect:
                    pass
                finally:
                    sender.cancel()
                    await asyncio.gather(sender, return_exceptions=True)
