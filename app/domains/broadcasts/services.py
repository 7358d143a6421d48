"""Broadcasts for the admin screen and the API: drafts, the audience count and a preview, a test send,
start / schedule, pause / resume / cancel, progress from the stored messages, recipients, replies."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from beanie import PydanticObjectId
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.db import as_utc, parse_object_id, utcnow
from app.domains.accounts.models import WhatsAppAccount
from app.domains.audit import services as audit
from app.domains.broadcasts import audience
from app.domains.broadcasts.models import Audience, Broadcast, BroadcastRecipient, ParamSource, UploadedList
from app.domains.broadcasts.sending import BroadcastSender, render_params, template_content
from app.domains.contact_files.importing import ContinueLater
from app.domains.contact_files.imports import ContactImports, ImportOptions, counts_of
from app.domains.contact_files.imports import view as import_view
from app.domains.contact_files.models import ContactImport
from app.domains.contacts.models import Contact
from app.domains.messages.models import Message
from app.domains.outbox.media import Upload
from app.domains.outbox.service import Draft
from app.domains.templates.models import MessageTemplate
from app.errors import Conflict, NotFound, ValidationFailed
from app.whatsapp.templates import render_template

RECENT = timedelta(days=3)
"""A customer's message counts as a reply to the broadcast they got within this long before it."""


class BroadcastIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=120)
    account_id: str
    template_name: str = Field(min_length=1, max_length=512)
    language: str = Field(min_length=2, max_length=15)
    params: list[ParamSource] = Field(default_factory=list, max_length=20)
    header_link: str | None = Field(None, max_length=2000)
    audience: Audience = Field(default_factory=Audience)
    open_conversations: bool = False
    local_time: str | None = Field(None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
                                   description="HH:MM: send at this time of each recipient's own day")

    @field_validator("header_link")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value and not value.startswith("https://"):
            raise ValueError("an https:// link")
        return value or None


class BroadcastService:
    def __init__(self, sender: BroadcastSender, *, continue_import: ContinueLater) -> None:
        self.sender = sender
        self._continue_import = continue_import
        self.imports = ContactImports()
        self._recent: dict[str, tuple[float, bool]] = {}

    # -- drafts ------------------------------------------------------------------------------------
    async def save(self, workspace_id: PydanticObjectId, raw: dict[str, Any], *, broadcast_id: str | None = None,
                   by: PydanticObjectId | None = None) -> Broadcast:
        try:
            data = BroadcastIn.model_validate(raw)
        except ValidationError as exc:
            details = {".".join(str(p) for p in e["loc"]) or "body": e["msg"] for e in exc.errors()[:20]}
            raise ValidationFailed("The broadcast has mistakes: " + "; ".join(f"{k}: {v}" for k, v in details.items()),
                                   error_code="BROADCAST_INVALID", details=details) from None
        existing = await self.get(workspace_id, broadcast_id) if broadcast_id is not None else None
        account = await WhatsAppAccount.find_one({"_id": parse_object_id(data.account_id), "workspace_id": workspace_id})
        if account is None:
            raise ValidationFailed("Pick one of this workspace's numbers.", error_code="BROADCAST_INVALID",
                                   details={"account_id": "not one of this workspace's numbers"})
        template = await self._template(workspace_id, account, data.template_name, data.language)
        if not audience.is_empty(data.audience):  # a draft may have none yet (Start refuses it then)
            await audience.audience_query(workspace_id, data.audience)  # refuses unknown segments and listed ids
        if broadcast_id is None:
            broadcast = Broadcast(workspace_id=workspace_id, name=data.name, account_id=account.id,  # type: ignore[arg-type]
                                  template_name=data.template_name, language=data.language, created_by=by)
        else:
            assert existing is not None
            broadcast = existing
            if broadcast.status != "draft":
                raise Conflict("Only a draft can be changed; this one has started.", error_code="BROADCAST_STARTED",
                               details={"status": broadcast.status})
        broadcast.name, broadcast.account_id = data.name, account.id  # type: ignore[assignment]
        broadcast.template_name, broadcast.language = data.template_name, data.language
        broadcast.params, broadcast.header_link = data.params, data.header_link
        kept = {uploaded.import_id: uploaded for uploaded in (existing.audience.lists if existing else [])}
        unknown = [uploaded.import_id for uploaded in data.audience.lists if uploaded.import_id not in kept]
        if unknown:
            raise ValidationFailed("Upload a list with POST /api/v1/broadcasts/{id}/lists; only lists uploaded for "
                                   "this broadcast can stay in its audience.", error_code="AUDIENCE_INVALID",
                                   details={"audience.lists": f"not uploaded for this broadcast: {unknown[0]}"})
        data.audience.lists = [kept[uploaded.import_id] for uploaded in data.audience.lists]
        broadcast.audience, broadcast.open_conversations = data.audience, data.open_conversations
        broadcast.local_time = data.local_time
        broadcast.updated_at = utcnow()
        self._check_params(template, broadcast)
        await broadcast.save()
        await audit.record(workspace_id, "broadcast.created" if broadcast_id is None else "broadcast.changed",
                           "broadcast", broadcast.id, broadcast.name,
                           {"template": broadcast.template_name, "language": broadcast.language})
        return broadcast

    # -- uploaded lists ----------------------------------------------------------------------------
    async def add_list(self, workspace_id: PydanticObjectId, broadcast_id: str, upload: Upload, filename: str, *,
                       by: PydanticObjectId | None, default_country: str | None = None
                       ) -> tuple[Broadcast, ContactImport]:
        """Import a CSV of customers (a phone or user id column; name, email, attributes as Contacts → Import
        guesses them) and put its contacts in the draft's audience: each row's contact, created or updated,
        is tagged with the list's tag. The import runs in the background; Start waits for it (409)."""
        broadcast = await self._draft(workspace_id, broadcast_id)
        job = await self.imports.receive(workspace_id, upload, filename, by)
        if not {"phone", "user_id"} & set(job.mapping):
            await self._forget(job)
            raise ValidationFailed("No column of this file looks like phone numbers: name its column 'phone' (or "
                                   "import it from Contacts → Import, mapping the columns yourself).",
                                   error_code="LIST_NO_PHONE", details={"file": "no phone column"})
        tag = audience.list_tag(str(job.id), job.filename)
        try:
            options = ImportOptions(mapping=None, mode="upsert", tags=[tag],
                                    default_country=(default_country or "").strip() or None)
        except ValueError:
            options = None
        if options is None:
            await self._forget(job)
            raise ValidationFailed(f"{default_country!r} is not a country code (ISO 3166, like GB or BR).",
                                   error_code="COUNTRY_INVALID", details={"default_country": str(default_country)[:20]})
        job = await self.imports.start(workspace_id, str(job.id), options, self._continue_import)
        entry = UploadedList(import_id=str(job.id), tag=tag, filename=job.filename)
        result = await Broadcast.find_one({"_id": broadcast.id, "status": "draft"}).update(
            {"$push": {"audience.lists": entry.model_dump()}, "$set": {"updated_at": utcnow()}})
        if not result.matched_count:
            raise Conflict("Only a draft can be changed; this one has started.", error_code="BROADCAST_STARTED")
        return await self.get(workspace_id, broadcast_id), job

    async def _forget(self, job: ContactImport) -> None:
        """An upload refused before its import started: its file and its record go."""
        await self.imports.store.delete(job.workspace_id, [job.file_id])
        await job.delete()

    async def lists(self, broadcast: Broadcast) -> list[dict[str, Any]]:
        """The draft's uploaded lists with their import's progress."""
        ids = [parse_object_id(uploaded.import_id) for uploaded in broadcast.audience.lists]
        jobs = {str(j.id): j for j in await ContactImport.find({"_id": {"$in": ids},
                                                                 "workspace_id": broadcast.workspace_id}).to_list()}
        shown = []
        for uploaded in broadcast.audience.lists:
            job = jobs.get(uploaded.import_id)
            shown.append({"import_id": uploaded.import_id, "tag": uploaded.tag, "filename": uploaded.filename,
                          **({"import": import_view(job)} if job is not None else {"import": None})})
        return shown

    async def _draft(self, workspace_id: PydanticObjectId, broadcast_id: str) -> Broadcast:
        broadcast = await self.get(workspace_id, broadcast_id)
        if broadcast.status != "draft":
            raise Conflict("Only a draft can be changed; this one has started.", error_code="BROADCAST_STARTED",
                           details={"status": broadcast.status})
        return broadcast

    async def _template(self, workspace_id: PydanticObjectId, account: WhatsAppAccount, name: str,
                        language: str) -> MessageTemplate:
        template = await MessageTemplate.find_one({"workspace_id": workspace_id, "waba_id": account.waba_id,
                                                   "name": name, "language": language})
        if template is None or template.status != "APPROVED":
            state = "does not exist on this number" if template is None else f"is {template.status.lower()}"
            raise ValidationFailed(f"The template {name!r} ({language}) {state}: pick an approved one.",
                                   error_code="TEMPLATE_NOT_APPROVED", details={"template_name": state})
        return template

    @staticmethod
    def _check_params(template: MessageTemplate, broadcast: Broadcast) -> None:
        body = next((c for c in template.components if c.get("type", "").upper() == "BODY"), {})
        wanted = str(body.get("text", "")).count("{{")
        if wanted != len(broadcast.params):
            raise ValidationFailed(f"The template's body has {wanted} parameter(s); {len(broadcast.params)} given.",
                                   error_code="BROADCAST_INVALID", details={"params": f"{wanted} expected"})

    async def get(self, workspace_id: PydanticObjectId, broadcast_id: str) -> Broadcast:
        return await Broadcast.get_scoped(workspace_id, broadcast_id)

    async def all(self, workspace_id: PydanticObjectId, limit: int = 100) -> list[Broadcast]:
        return await Broadcast.scoped(workspace_id).sort("-_id").limit(limit).to_list()

    async def delete(self, workspace_id: PydanticObjectId, broadcast_id: str) -> None:
        broadcast = await self.get(workspace_id, broadcast_id)
        if broadcast.status not in ("draft", "scheduled"):
            raise Conflict("A broadcast that has started is kept for its results; cancel it instead.",
                           error_code="BROADCAST_STARTED", details={"status": broadcast.status})
        await broadcast.delete()
        await audit.record(workspace_id, "broadcast.deleted", "broadcast", broadcast.id, broadcast.name)

    # -- before sending: count, preview, test ------------------------------------------------------
    async def audience_count(self, broadcast: Broadcast) -> dict[str, int]:
        template = await self._template_of(broadcast)
        return await audience.count(broadcast.workspace_id, broadcast.audience,
                                    marketing=template is not None and template.category == "MARKETING")

    async def preview(self, broadcast: Broadcast, contact_id: str | None = None) -> dict[str, Any]:
        """The message as a sample contact (or the first of the audience) would read it."""
        if contact_id:
            contact = await Contact.get_scoped(broadcast.workspace_id, contact_id)
        else:
            query = await audience.audience_query(broadcast.workspace_id, broadcast.audience)
            contact = await Contact.find(query).sort("_id").first_or_none()
            if contact is None:
                raise ValidationFailed("The audience is empty.", error_code="AUDIENCE_EMPTY", details={})
        template = await self._template_of(broadcast)
        values, missing = render_params(broadcast.params, contact)
        if missing:
            return {"contact_id": str(contact.id), "skipped": f"no value for {missing}", "rendered": None}
        rendered = None
        if template is not None:
            rendered = render_template(template_content(broadcast, values), {
                "name": template.name, "language": template.language, "category": template.category,
                "components": template.components, "parameter_format": template.parameter_format})
        return {"contact_id": str(contact.id), "skipped": None, "rendered": rendered}

    async def test_send(self, broadcast: Broadcast, contact_id: str) -> Message:
        """One message to one contact now (an admin checks it on their phone); not counted as a recipient."""
        contact = await Contact.get_scoped(broadcast.workspace_id, contact_id)
        account = await WhatsAppAccount.find_one({"_id": broadcast.account_id})
        if account is None:
            raise NotFound("number not found")
        values, missing = render_params(broadcast.params, contact)
        if missing:
            raise ValidationFailed(f"This contact has no value for {missing} and it has no fallback.",
                                   error_code="PARAM_MISSING", details={"params": missing})
        conversation, _ = await self.sender.conversations.open_for(broadcast.workspace_id, account.id,  # type: ignore[arg-type]
                                                                   contact.id)  # type: ignore[arg-type]
        return await self.sender.outbox.send(broadcast.workspace_id, conversation,
                                             Draft("template", template_content(broadcast, values)), via="broadcast",
                                             account=account, contact=contact)

    async def _template_of(self, broadcast: Broadcast) -> MessageTemplate | None:
        account = await WhatsAppAccount.find_one({"_id": broadcast.account_id})
        return await MessageTemplate.find_one({"workspace_id": broadcast.workspace_id,
                                               "waba_id": account.waba_id if account else None,
                                               "name": broadcast.template_name, "language": broadcast.language})

    # -- control -----------------------------------------------------------------------------------
    async def start(self, workspace_id: PydanticObjectId, broadcast_id: str, *, at: datetime | None = None
                    ) -> Broadcast:
        """Now, or scheduled at ``at``. Two admins pressing Start at once: one starts it, the other gets 409."""
        broadcast = await self.get(workspace_id, broadcast_id)
        account = await WhatsAppAccount.find_one({"_id": broadcast.account_id})
        if account is None:
            raise ValidationFailed("The number is gone.", error_code="BROADCAST_INVALID", details={})
        await self._template(workspace_id, account, broadcast.template_name, broadcast.language)
        importing = await audience.lists_importing(workspace_id, broadcast.audience)
        if importing and at is None:
            job = importing[0]
            raise Conflict(f"The list {job.filename!r} is still being imported ({counts_of(job).done:,} of "
                           f"{job.rows:,} rows): start when it is done, or schedule it.", error_code="LIST_IMPORTING",
                           details={"import_id": str(job.id)})
        counted = await audience.count(workspace_id, broadcast.audience, marketing=False)
        if counted["contacts"] == 0:
            raise ValidationFailed("Nobody is in the audience: pick segments or tags, or upload a list.",
                                   error_code="AUDIENCE_EMPTY", details={})
        now = utcnow()
        if at is not None and as_utc(at) <= now:
            at = None
        changes: dict[str, Any] = {"status": "scheduled" if at else "sending", "scheduled_at": at,
                                   "updated_at": now, "pause_reason": None}
        if at is None:
            changes["started_at"] = changes["resumed_at"] = now
        result = await Broadcast.find_one({"_id": broadcast.id, "status": "draft"}).update({"$set": changes})
        if result.matched_count == 0:
            raise Conflict("This broadcast has already been started.", error_code="BROADCAST_STARTED",
                           details={"status": (await self.get(workspace_id, broadcast_id)).status})
        started = await self.get(workspace_id, broadcast_id)
        if at is None:
            await self.sender._enqueue(str(started.id), started.generation, 0.0)
        await self.sender.announce(started)
        await audit.record(workspace_id, "broadcast.started" if at is None else "broadcast.scheduled", "broadcast",
                           started.id, started.name, {"scheduled_at": at} if at is not None else {})
        return started

    async def pause(self, workspace_id: PydanticObjectId, broadcast_id: str, *, by: str) -> Broadcast:
        broadcast = await self.get(workspace_id, broadcast_id)
        if broadcast.status not in ("sending", "scheduled"):
            raise Conflict(f"A {broadcast.status} broadcast cannot be paused.", error_code="BROADCAST_STATE",
                           details={"status": broadcast.status})
        await self.sender.pause(broadcast, f"paused by {by}")
        await audit.record(workspace_id, "broadcast.paused", "broadcast", broadcast.id, broadcast.name)
        return await self.get(workspace_id, broadcast_id)

    async def resume(self, workspace_id: PydanticObjectId, broadcast_id: str) -> Broadcast:
        broadcast = await self.get(workspace_id, broadcast_id)
        result = await Broadcast.find_one({"_id": broadcast.id, "status": "paused"}).update(
            {"$set": {"status": "sending", "pause_reason": None, "updated_at": utcnow(), "resumed_at": utcnow(),
                      "started_at": broadcast.started_at or utcnow()}})
        if result.matched_count == 0:
            raise Conflict(f"A {broadcast.status} broadcast cannot be resumed.", error_code="BROADCAST_STATE",
                           details={"status": broadcast.status})
        resumed = await self.get(workspace_id, broadcast_id)
        await self.sender._enqueue(str(resumed.id), resumed.generation, 0.0)
        await self.sender.announce(resumed)
        await audit.record(workspace_id, "broadcast.resumed", "broadcast", resumed.id, resumed.name)
        return resumed

    async def cancel(self, workspace_id: PydanticObjectId, broadcast_id: str) -> Broadcast:
        """Stops it for good: recipients not yet handed to the outbox are skipped as cancelled (messages
        already queued still go: they are the outbox's now)."""
        broadcast = await self.get(workspace_id, broadcast_id)
        result = await Broadcast.find_one({"_id": broadcast.id, "status": {"$in": ["draft", "scheduled", "sending",
                                                                                    "paused"]}}).update(
            {"$set": {"status": "cancelled", "completed_at": utcnow(), "updated_at": utcnow()}})
        if result.matched_count == 0:
            raise Conflict(f"A {broadcast.status} broadcast cannot be cancelled.", error_code="BROADCAST_STATE",
                           details={"status": broadcast.status})
        await BroadcastRecipient.find({"broadcast_id": broadcast.id, "status": "pending"}).update(
            {"$set": {"status": "skipped", "reason": "cancelled", "updated_at": utcnow()}})
        cancelled = await self.get(workspace_id, broadcast_id)
        await self.sender.announce(cancelled)
        await audit.record(workspace_id, "broadcast.cancelled", "broadcast", cancelled.id, cancelled.name)
        return cancelled

    async def due(self) -> int:
        """The cron: start scheduled broadcasts whose time came; queue sending ones no worker holds (a dead
        worker's, or one waiting for the daily limit to roll)."""
        now = utcnow()
        queued = 0
        async for broadcast in Broadcast.find({"status": "scheduled", "scheduled_at": {"$lte": now}}):
            result = await Broadcast.find_one({"_id": broadcast.id, "status": "scheduled"}).update(
                {"$set": {"status": "sending", "started_at": now, "resumed_at": now, "updated_at": now}})
            if result.matched_count:
                await self.sender._enqueue(str(broadcast.id), broadcast.generation, 0.0)
                queued += 1
        async for broadcast in Broadcast.find({"status": "sending"}):  # few at a time: the lease is read here
            if broadcast.lease_until is not None and as_utc(broadcast.lease_until) >= now:
                continue
            if broadcast.next_send_at is None or as_utc(broadcast.next_send_at) <= now:
                await self.sender._enqueue(str(broadcast.id), broadcast.generation, 0.0)
                queued += 1
        return queued

    # -- results -----------------------------------------------------------------------------------
    async def counts(self, broadcast: Broadcast) -> dict[str, Any]:
        """Recipients by state (pending, queued, skipped by reason, replied) and their messages by status
        (sent, delivered, read, failed by reason) and billable messages by Meta's pricing category (the cost:
        Meta prices per message and category, its webhooks say which), counted from the stored documents."""
        recipients = await BroadcastRecipient.get_motor_collection().aggregate([
            {"$match": {"broadcast_id": broadcast.id}},
            {"$group": {"_id": {"status": "$status", "reason": "$reason"}, "n": {"$sum": 1},
                        "replied": {"$sum": {"$cond": [{"$ifNull": ["$replied_at", False]}, 1, 0]}}}}]).to_list(None)
        messages = await Message.get_motor_collection().aggregate([
            {"$match": {"broadcast.id": str(broadcast.id)}},
            {"$group": {"_id": {"status": "$status", "code": "$error.code", "title": "$error.agent_message",
                                "category": "$pricing.category", "billable": "$pricing.billable"},
                        "n": {"$sum": 1}}}]).to_list(None)
        out: dict[str, Any] = {"total": broadcast.total, "pending": 0, "queued": 0, "skipped": 0, "replied": 0,
                               "skipped_by_reason": {}, "sent": 0, "delivered": 0, "read": 0, "failed": 0,
                               "failed_by_reason": {}, "waiting_in_outbox": 0, "billable_by_category": {}}
        for row in recipients:
            status, reason = row["_id"]["status"], row["_id"].get("reason")
            status = "pending" if status == "claimed" else status  # being stored this instant
            out[status] = out.get(status, 0) + row["n"]
            out["replied"] += row["replied"]
            if status == "skipped":
                out["skipped_by_reason"][reason or "unknown"] = out["skipped_by_reason"].get(reason or "unknown", 0) + row["n"]
        reached = {"sent": ("sent", "delivered", "read"), "delivered": ("delivered", "read"), "read": ("read",)}
        for row in messages:
            status = row["_id"]["status"]
            for figure, statuses in reached.items():
                if status in statuses:
                    out[figure] += row["n"]
            if status == "failed":
                out["failed"] += row["n"]
                words = row["_id"].get("title") or f"error {row['_id'].get('code')}"
                out["failed_by_reason"][words] = out["failed_by_reason"].get(words, 0) + row["n"]
            if status in ("queued", "sending"):
                out["waiting_in_outbox"] += row["n"]
            if row["_id"].get("billable") and row["_id"].get("category"):  # what Meta charges, by its category
                category = str(row["_id"]["category"])
                out["billable_by_category"][category] = out["billable_by_category"].get(category, 0) + row["n"]
        return out

    async def recipients(self, broadcast: Broadcast, *, status: str | None = None, after: str | None = None,
                         limit: int = 50) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"broadcast_id": broadcast.id}
        if status:
            query["status"] = status
        if after and parse_object_id(after):
            query["_id"] = {"$gt": parse_object_id(after)}
        rows = await BroadcastRecipient.find(query).sort("_id").limit(max(1, min(limit, 500))).to_list()
        messages = {m.id: m for m in await Message.find({"_id": {"$in": [r.message_id for r in rows if r.message_id]}}
                                                        ).to_list()} if rows else {}
        contacts = {c.id: c for c in await Contact.find({"_id": {"$in": [r.contact_id for r in rows]}}).to_list()}
        out = []
        for row in rows:
            message = messages.get(row.message_id) if row.message_id else None
            contact = contacts.get(row.contact_id)
            out.append({"id": str(row.id), "contact_id": str(row.contact_id),
                        "name": contact.display_name if contact else None, "phone": contact.phone if contact else None,
                        "status": message.status.value if message else row.status, "reason": row.reason or (
                            message.error.agent_message if message and message.error else None),
                        "message_id": str(row.message_id) if row.message_id else None,
                        "replied_at": row.replied_at.isoformat() if row.replied_at else None})
        return out

    # -- replies (a LiveEvents listener, then a job) -----------------------------------------------
    async def has_recent(self, workspace_id: PydanticObjectId | str) -> bool:
        key = str(workspace_id)
        cached = self._recent.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        oid = parse_object_id(key)
        found = oid is not None and await Broadcast.find_one(
            {"workspace_id": oid, "_id": {"$gt": PydanticObjectId.from_datetime(utcnow() - RECENT - timedelta(days=30))},
             "status": {"$ne": "draft"}}) is not None
        self._recent[key] = (time.monotonic() + 60.0, found)
        return found

    async def note_reply(self, workspace_id: PydanticObjectId, contact_id: PydanticObjectId, at: datetime) -> bool:
        """A customer wrote: their latest broadcast recipient of the last days, not yet answered, is marked."""
        recipient = await BroadcastRecipient.find({"workspace_id": workspace_id, "contact_id": contact_id}
                                                  ).sort("-_id").first_or_none()
        if recipient is None or recipient.status != "queued" or recipient.replied_at is not None:
            return False
        handed = as_utc(recipient.updated_at)  # Meta's timestamps are whole seconds, ours are not
        if handed < as_utc(at) - RECENT or handed > as_utc(at) + timedelta(seconds=2):
            return False
        result = await BroadcastRecipient.find_one({"_id": recipient.id, "replied_at": None}).update(
            {"$set": {"replied_at": at}})
        return bool(result.modified_count)
