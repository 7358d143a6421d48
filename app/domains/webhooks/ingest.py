"""Applying a webhook body: every entry, change, message and status of the batch.

Two callers, one logic (``WebhookIngestor.apply``):
- the webhook endpoint applies a body before it answers Meta (``WebhookReceiver.receive``): a
  failure answers 5xx or keeps the body for the worker, so nothing is acknowledged unapplied;
- the ``ingest_webhook_event`` arq task (and the sweeper's re-enqueues) applies a stored event
  (``ingest``): big bodies and bodies whose inline application failed.
Safe to run twice: everything below is idempotent (see ``app/domains/messages/ingest.py``), and
an event marked ingested is skipped. A body that is not a usable envelope is marked with its
error and not retried; any other failure leaves the event un-ingested with its error, for arq's
retry and then the sweeper.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from beanie import PydanticObjectId
from pymongo import ReturnDocument

from app.cache import TtlCache
from app.db import as_utc, utcnow
from app.domains.accounts.models import WhatsAppAccount
from app.domains.accounts.services import AccountService
from app.domains.contacts.consent import KeywordLookup
from app.domains.messages.ingest import BatchContext, MessageIngest
from app.domains.templates.services import TemplateService
from app.domains.webhooks.groups import GROUP_FIELDS, GroupUpdates
from app.domains.webhooks.models import WebhookEvent
from app.domains.webhooks.updates import ACCOUNT_FIELDS, TEMPLATE_FIELDS, record_account_update, record_template_update
from app.logging import get_logger
from app.metrics import WEBHOOK_ITEMS_REJECTED, WEBHOOK_UNKNOWN
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
    iter_rejected,
    iter_statuses,
    parse_envelope,
)

log = get_logger(__name__)

MESSAGE_FIELDS = frozenset({"messages", "smb_message_echoes"})
KEPT_RAW_FIELDS = frozenset({
    # Stored raw (the event keeps the body) and not applied yet; WHATSAPP.md lists them.
    "calls", "history", "smb_app_state_sync", "business_capability_update", "security", "flows",
    "message_echoes", "partner_solutions", "payment_configuration_update", "automatic_events",
    "tracking_events", "user_id_update",
})
LAST_WEBHOOK_PRECISION = timedelta(seconds=60)
"""A number's "last webhook" is rewritten at most this often (the admin screen shows it in minutes)."""


NUMBER_CACHE_SECONDS = 300.0
"""How long a process trusts its copy of a number's account when a change was not heard (dropped at
every change of a number: AccountService.on_change)."""


@dataclass(frozen=True)
class IngestResult:
    outcome: str
    """ingested | already | missing | unusable | deferred (too big to apply while Meta waits)"""
    stored_messages: int = 0
    notes: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    statuses_only: bool = False
    """The body held statuses of our messages and nothing else (its raw copy is not worth keeping)."""
    error: str | None = None


class NumberCache:
    """Accounts by (workspace, phone_number_id), shared by every batch a process applies.

    Every change of a webhook names its number; reading the account per webhook was one database
    operation per status. Unknown numbers are not cached (an admin may be adding one right now).
    """

    def __init__(self, ttl: float = NUMBER_CACHE_SECONDS) -> None:
        self._accounts: TtlCache[WhatsAppAccount | None] = TtlCache(ttl)

    def forget(self, account_id: str | None = None) -> None:
        """A number changed (keys are phone number ids: every copy goes, changes are rare)."""
        self._accounts.clear()

    async def get(self, workspace_id: PydanticObjectId, phone_number_id: str) -> WhatsAppAccount | None:
        return await self._accounts.get((workspace_id, phone_number_id), lambda: WhatsAppAccount.find_one_scoped(
            workspace_id, WhatsAppAccount.phone_number_id == phone_number_id))


class _Routes:
    """The workspace's accounts by phone_number_id (through the process's cache) and by WABA."""

    def __init__(self, workspace_id: PydanticObjectId, numbers: NumberCache) -> None:
        self.workspace_id = workspace_id
        self._numbers = numbers
        self._by_waba: dict[str, list[WhatsAppAccount]] = {}
        self.touched: dict[PydanticObjectId, WhatsAppAccount] = {}

    async def number(self, phone_number_id: str | None) -> WhatsAppAccount | None:
        if not phone_number_id:
            return None
        account = await self._numbers.get(self.workspace_id, phone_number_id)
        if account is not None:
            self.touched[account.id] = account
        return account

    async def waba(self, waba_id: str) -> list[WhatsAppAccount]:
        if waba_id not in self._by_waba:
            self._by_waba[waba_id] = await WhatsAppAccount.scoped(
                self.workspace_id, WhatsAppAccount.waba_id == waba_id).to_list()
        return self._by_waba[waba_id]


def _count_unknown_fields(changes: list[EntryChange]) -> None:
    """Fields of messages, statuses and contacts this version has no model for: applied without
    them, kept in the raw body, and counted (``inbox_webhook_unknown_total``) so a new field of
    Meta's shows on a dashboard instead of going unnoticed."""
    for change in changes:
        value = change.value
        if not isinstance(value, MessagesValue):
            continue
        for where, items in (("message", value.messages), ("status", value.statuses), ("contact", value.contacts)):
            for item in items or ():
                for name in item.model_extra or ():
                    WEBHOOK_UNKNOWN.labels(where=where, name=name[:60]).inc()


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
                 templates: TemplateService | None = None, numbers: NumberCache | None = None,
                 accounts: AccountService | None = None, keywords: KeywordLookup | None = None) -> None:
        self.messages = MessageIngest(live, enqueue_media, accounts=accounts, keywords=keywords)
        self.contacts = self.messages.contacts
        self.groups = GroupUpdates(live, self.contacts, self.messages.conversations)
        self.templates = templates
        self.numbers = numbers or NumberCache()

    async def ingest(self, event_id: str) -> IngestResult:
        """Apply a stored event (the worker's path) and mark it ingested."""
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
        result = await self.apply(event.workspace_id, event.id, event.body)
        await self._finish(event.id, error=result.error, notes=list(result.notes), fields=list(result.fields))
        return result

    async def apply(self, workspace_id: PydanticObjectId, event_id: str, body: bytes,
                    max_items: int | None = None) -> IngestResult:
        """Apply one webhook body to the workspace. Raises on a failure worth retrying.

        ``max_items``: a body holding more messages, statuses and changes than this is not applied
        (outcome ``deferred``): the endpoint keeps it for the worker rather than hold Meta's request.
        """
        try:
            envelope = parse_envelope(body)
        except WebhookParseError as exc:
            # Signed by Meta but unusable: keep it with the reason; retrying cannot help.
            log.warning("webhook body kept but not usable", event_id=event_id, error=str(exc)[:300])
            return IngestResult("unusable", notes=(str(exc),), error=str(exc)[:1000])
        # Items that could not be read (one bad message among good ones) are left out, not the body:
        # the rest is applied; they stay in the raw body, in the event's notes and in a metric.
        rejected = [str(r) for r in iter_rejected(envelope)]
        for problem in rejected:
            log.warning("webhook item not usable; the rest of the body is applied", event_id=event_id,
                        problem=problem[:300])
            WEBHOOK_ITEMS_REJECTED.labels(field=problem.split(" ", 1)[0][:40]).inc()
        changes = list(iter_changes(envelope))
        _count_unknown_fields(changes)
        messages, echoes, statuses = (list(iter_messages(envelope)), list(iter_echoes(envelope)),
                                      list(iter_statuses(envelope)))
        if max_items is not None and len(changes) + len(messages) + len(echoes) + len(statuses) > max_items:
            return IngestResult("deferred")
        batch = BatchContext(workspace_id)
        batch.notes.extend(rejected)
        routes = _Routes(workspace_id, self.numbers)
        fields: list[str] = []
        for index, change in enumerate(changes):
            fields.append(change.field)
            await self._apply_change(event_id, batch, routes, index, change)
        for item in messages:
            account = await routes.number(item.phone_number_id)
            if account is not None:
                await self.messages.store_inbound(batch, account, item)
        for item in echoes:
            account = await routes.number(item.phone_number_id)
            if account is not None:
                await self.messages.store_echo(batch, account, item)
        for status in statuses:
            if await routes.number(status.phone_number_id) is not None:
                await self.messages.apply_status(batch, status)
        await self.messages.publish_conversations(batch)
        now = utcnow()
        for account in routes.touched.values():
            last = account.health.last_webhook_at
            if last is not None and now - as_utc(last) < LAST_WEBHOOK_PRECISION:
                continue  # shown as "x minutes ago": no write per webhook on a busy number
            account.health.last_webhook_at = now  # on the cached copy first: concurrent batches skip the write
            await WhatsAppAccount.get_motor_collection().update_one(
                {"_id": account.id}, {"$set": {"health.last_webhook_at": now}})
        statuses_only = (bool(statuses) and not messages and not echoes and set(fields) == {"messages"}
                         and not rejected and all(not change.value.errors for change in changes))
        return IngestResult("ingested", batch.stored, tuple(batch.notes), tuple(fields), statuses_only)

    async def _apply_change(self, event_id: str, batch: BatchContext, routes: _Routes, index: int,
                            change: EntryChange) -> None:
        field = change.field
        if field in MESSAGE_FIELDS:
            value: MessagesValue = change.value
            phone_number_id = value.metadata.phone_number_id if value.metadata else None
            account = await routes.number(phone_number_id)
            if account is None:
                note = f"phone_number_id {phone_number_id!r} is not connected in this workspace; change kept raw"
                log.warning("webhook for an unknown number", event_id=event_id, phone_number_id=phone_number_id)
                batch.notes.append(note)
            elif value.errors and not value.messages and not value.statuses and not value.message_echoes:
                raw = change.change.raw_value
                await record_account_update(batch.workspace_id, [account], "messages.errors", raw,
                                            _occurred_at(change, raw), f"{event_id}:{index}")
            return
        raw = change.change.raw_value
        if field in TEMPLATE_FIELDS:
            recorded = await record_template_update(batch.workspace_id, change.waba_id, field, raw,
                                                    _occurred_at(change, raw), event_id)
            if recorded is not None and self.templates is not None:
                await self._apply_to_template(batch.workspace_id, change)
        elif field in ACCOUNT_FIELDS:
            accounts = await routes.waba(change.waba_id)
            if not accounts:
                batch.notes.append(f"{field} for WABA {change.waba_id!r}: no connected number; kept raw")
                return
            await record_account_update(batch.workspace_id, accounts, field, raw, _occurred_at(change, raw),
                                        f"{event_id}:{index}")
        elif field == "user_preferences":
            await self._user_preferences(batch, raw)
        elif field in GROUP_FIELDS:
            metadata = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {}
            account = await routes.number(metadata.get("phone_number_id"))
            if account is None:
                batch.notes.append(f"{field}: number {metadata.get('phone_number_id')!r} not connected; kept raw")
                return
            await self.groups.apply(batch.workspace_id, account, field, raw, batch.notes)
        elif field not in KEPT_RAW_FIELDS:
            # A kind of change we do not know: kept in the raw event, noted and counted, never an error.
            WEBHOOK_UNKNOWN.labels(where="field", name=field[:60]).inc()
            batch.notes.append(f"{field}: a kind of change this version does not know; kept raw")

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
        """Marketing opt-out / resume: the send side must never send marketing to a customer who stopped it.
        Whichever identifiers it carries (the BSUID alone, for a username user; the phone in the
        preference and the BSUID in ``contacts[]``), it reaches the same contact."""
        people = [c for c in value.get("contacts") or () if isinstance(c, dict)]
        for preference in value.get("user_preferences") or ():
            if not isinstance(preference, dict) or preference.get("category") != "marketing_messages":
                continue
            wa_id, user_id = preference.get("wa_id"), preference.get("user_id")
            person = next((c for c in people if (wa_id and c.get("wa_id") == wa_id)
                           or (user_id and c.get("user_id") == user_id)), people[0] if len(people) == 1 else {})
            wa_id, user_id = wa_id or person.get("wa_id"), user_id or person.get("user_id")
            if not wa_id and not user_id:
                batch.notes.append("user_preferences: an item naming nobody; kept raw")
                continue
            contact, _ = await self.contacts.upsert(
                batch.workspace_id, wa_id=wa_id, user_id=user_id,
                parent_user_id=preference.get("parent_user_id") or person.get("parent_user_id"))
            await self.contacts.set_marketing_opt_out(
                batch.workspace_id, contact.id, preference.get("value") == "stop", source="meta",
                note=f"user_preferences: {str(preference.get('value'))[:20]}")

    async def _finish(self, event_id: str, *, error: str | None, notes: list[str], fields: list[str]) -> None:
        await WebhookEvent.get_motor_collection().update_one(
            {"_id": event_id},
            {"$set": {"ingested_at": utcnow(), "error": error, "notes": notes[:100], "fields": fields[:100]}})


async def record_ingest_failure(event_id: str, error: BaseException) -> None:
    """Keep the last failure on the event (shown to admins); the event stays un-ingested for a retry."""
    text = f"{type(error).__name__}: {error}"[:1000]
    await WebhookEvent.get_motor_collection().update_one({"_id": event_id}, {"$set": {"error": text}})
