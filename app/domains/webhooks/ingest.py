"""Ingestion of one stored webhook event: every entry, change, message and status of the batch.

Run by the ``ingest_webhook_event`` arq task (and by the sweeper's re-enqueues). Safe to run twice:
everything below is idempotent (see ``app/domains/messages/ingest.py``), and an event marked
ingested is skipped. A body that is not a usable envelope is marked with its error and not
retried; any other failure leaves the event un-ingested with its error, for arq's retry and
then the sweeper.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from beanie import PydanticObjectId
from pymongo import ReturnDocument

from app.db import as_utc, utcnow
from app.domains.accounts.models import WhatsAppAccount
from app.domains.contacts.models import Contact, contact_key
from app.domains.contacts.services import ContactService
from app.domains.messages.ingest import BatchContext, MessageIngest
from app.domains.templates.services import TemplateService
from app.domains.webhooks.models import WebhookEvent
from app.domains.webhooks.updates import ACCOUNT_FIELDS, TEMPLATE_FIELDS, record_account_update, record_template_update
from app.logging import get_logger
from app.realtime import LiveEvents
from app.whatsapp.webhooks import (
    EntryChange,
    MessagesValue,
    TemplateCategoryUpdate,
    TemplateQualityUpdate,
    TemplateStatusUpdate,
    WebhookParseError,
    epoch_to_datetime,
    iter_changes,
    iter_echoes,
    iter_messages,
    iter_statuses,
    parse_envelope,
)

log = get_logger(__name__)

MESSAGE_FIELDS = frozenset({"messages", "smb_message_echoes"})
LAST_WEBHOOK_PRECISION = timedelta(seconds=30)
"""A number's "last webhook" is rewritten at most this often (the admin screen shows it in minutes)."""


@dataclass(frozen=True)
class IngestResult:
    outcome: str
    """ingested | already | missing | unusable"""
    stored_messages: int = 0
    notes: tuple[str, ...] = ()


class _Routes:
    """The workspace's accounts by phone_number_id and by WABA, read once per batch."""

    def __init__(self, workspace_id: PydanticObjectId) -> None:
        self.workspace_id = workspace_id
        self._by_number: dict[str, WhatsAppAccount | None] = {}
        self._by_waba: dict[str, list[WhatsAppAccount]] = {}
        self.touched: dict[PydanticObjectId, WhatsAppAccount] = {}

    async def number(self, phone_number_id: str | None) -> WhatsAppAccount | None:
        if not phone_number_id:
            return None
        if phone_number_id not in self._by_number:
            self._by_number[phone_number_id] = await WhatsAppAccount.find_one_scoped(
                self.workspace_id, WhatsAppAccount.phone_number_id == phone_number_id)
        account = self._by_number[phone_number_id]
        if account is not None:
            self.touched[account.id] = account
        return account

    async def waba(self, waba_id: str) -> list[WhatsAppAccount]:
        if waba_id not in self._by_waba:
            self._by_waba[waba_id] = await WhatsAppAccount.scoped(
                self.workspace_id, WhatsAppAccount.waba_id == waba_id).to_list()
        return self._by_waba[waba_id]


def _occurred_at(change: EntryChange, value: dict[str, Any]) -> datetime:
    for candidate in (value.get("timestamp"), change.time):
        try:
            if candidate is not None:
                return epoch_to_datetime(candidate)
        except (TypeError, ValueError, OverflowError, OSError):
            continue
    return utcnow()


class WebhookIngestor:
    """Applies stored webhook events to the workspace's contacts, conversations, messages and accounts."""

    def __init__(self, live: LiveEvents, enqueue_media: Callable[[str, int], Awaitable[Any]],
                 templates: TemplateService | None = None) -> None:
        self.messages = MessageIngest(live, enqueue_media)
        self.contacts = ContactService()
        self.templates = templates

    async def ingest(self, event_id: str) -> IngestResult:
        # By primary key: the job's only argument is the event id; the event names its workspace.
        # Read and count the attempt in one operation (only while it is not ingested yet).
        raw = await WebhookEvent.get_motor_collection().find_one_and_update(
            {"_id": event_id, "ingested_at": None}, {"$inc": {"attempts": 1}}, return_document=ReturnDocument.AFTER)
        if raw is None:
            if await WebhookEvent.get_motor_collection().count_documents({"_id": event_id}, limit=1):
                return IngestResult("already")
            log.warning("webhook event to ingest not found", event_id=event_id)
            return IngestResult("missing")
        event = WebhookEvent.model_validate(raw)
        try:
            envelope = parse_envelope(event.body)
        except WebhookParseError as exc:
            # Signed by Meta but unusable: keep it with the reason; retrying cannot help.
            log.warning("webhook body kept but not usable", event_id=event.id, error=str(exc)[:300])
            await self._finish(event, error=str(exc)[:1000], notes=[], fields=[])
            return IngestResult("unusable", notes=(str(exc),))
        batch = BatchContext(event.workspace_id)
        routes = _Routes(event.workspace_id)
        fields: list[str] = []
        for index, change in enumerate(iter_changes(envelope)):
            fields.append(change.field)
            await self._apply_change(event, batch, routes, index, change)
        for item in iter_messages(envelope):
            account = await routes.number(item.phone_number_id)
            if account is not None:
                await self.messages.store_inbound(batch, account, item)
        for item in iter_echoes(envelope):
            account = await routes.number(item.phone_number_id)
            if account is not None:
                await self.messages.store_echo(batch, account, item)
        for status in iter_statuses(envelope):
            if await routes.number(status.phone_number_id) is not None:
                await self.messages.apply_status(batch, status)
        await self.messages.publish_conversations(batch)
        now = utcnow()
        for account in routes.touched.values():
            last = account.health.last_webhook_at
            if last is not None and now - as_utc(last) < LAST_WEBHOOK_PRECISION:
                continue  # shown as "x minutes ago": no write per webhook on a busy number
            await WhatsAppAccount.get_motor_collection().update_one(
                {"_id": account.id}, {"$set": {"health.last_webhook_at": now}})
        await self._finish(event, error=None, notes=batch.notes, fields=fields)
        return IngestResult("ingested", batch.stored, tuple(batch.notes))

    async def _apply_change(self, event: WebhookEvent, batch: BatchContext, routes: _Routes, index: int,
                            change: EntryChange) -> None:
        field = change.field
        if field in MESSAGE_FIELDS:
            value: MessagesValue = change.value
            phone_number_id = value.metadata.phone_number_id if value.metadata else None
            account = await routes.number(phone_number_id)
            if account is None:
                note = f"phone_number_id {phone_number_id!r} is not connected in this workspace; change kept raw"
                log.warning("webhook for an unknown number", event_id=event.id, phone_number_id=phone_number_id)
                batch.notes.append(note)
            elif value.errors and not value.messages and not value.statuses and not value.message_echoes:
                raw = change.change.raw_value
                await record_account_update(event.workspace_id, [account], "messages.errors", raw,
                                            _occurred_at(change, raw), f"{event.id}:{index}")
            return
        raw = change.change.raw_value
        if field in TEMPLATE_FIELDS:
            recorded = await record_template_update(event.workspace_id, change.waba_id, field, raw,
                                                    _occurred_at(change, raw), event.id)
            if recorded is not None and self.templates is not None:
                await self._apply_to_template(event.workspace_id, change)
        elif field in ACCOUNT_FIELDS:
            accounts = await routes.waba(change.waba_id)
            if not accounts:
                batch.notes.append(f"{field} for WABA {change.waba_id!r}: no connected number; kept raw")
                return
            await record_account_update(event.workspace_id, accounts, field, raw, _occurred_at(change, raw),
                                        f"{event.id}:{index}")
        elif field == "user_preferences":
            await self._user_preferences(batch, raw)
        # Every other field (calls, history, groups, ...) is kept in the raw event: never an error.

    async def _apply_to_template(self, workspace_id: PydanticObjectId, change: EntryChange) -> None:
        """Status, quality and category land on the template through the templates area's own service."""
        value = change.value
        if isinstance(value, TemplateStatusUpdate):
            await self.templates.apply_status_update(workspace_id, change.waba_id, value)
        elif isinstance(value, TemplateQualityUpdate):
            await self.templates.apply_quality_update(workspace_id, change.waba_id, value)
        elif isinstance(value, TemplateCategoryUpdate):
            await self.templates.apply_category_update(workspace_id, change.waba_id, value)

    async def _user_preferences(self, batch: BatchContext, value: dict[str, Any]) -> None:
        """Marketing opt-out / resume: the send side must never send marketing to a customer who stopped it."""
        for preference in value.get("user_preferences") or ():
            if not isinstance(preference, dict) or preference.get("category") != "marketing_messages":
                continue
            wa_id, user_id = preference.get("wa_id"), preference.get("user_id")
            if not wa_id and not user_id:
                continue
            await self.contacts.upsert(batch.workspace_id, wa_id=wa_id, user_id=user_id)
            await Contact.get_motor_collection().update_one(
                {"workspace_id": batch.workspace_id, "key": contact_key(wa_id, user_id)},
                {"$set": {"opted_out_marketing": preference.get("value") == "stop", "updated_at": utcnow()}})

    async def _finish(self, event: WebhookEvent, *, error: str | None, notes: list[str], fields: list[str]) -> None:
        await WebhookEvent.get_motor_collection().update_one(
            {"_id": event.id},
            {"$set": {"ingested_at": utcnow(), "error": error, "notes": notes[:100], "fields": fields[:100]}})


async def record_ingest_failure(event_id: str, error: BaseException) -> None:
    """Keep the last failure on the event (shown to admins); the event stays un-ingested for a retry."""
    text = f"{type(error).__name__}: {error}"[:1000]
    await WebhookEvent.get_motor_collection().update_one({"_id": event_id}, {"$set": {"error": text}})
