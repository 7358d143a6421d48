"""Templates: sync every page from Meta, create (validated first), delete, and apply Meta's webhooks.

Status, quality and category changes arrive as webhooks (the inbound pipeline calls the
``apply_*`` methods with the typed values from ``app.whatsapp.webhook_values``); each change is
saved and published as a ``template.updated`` live event so open template pages update at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from beanie import PydanticObjectId
from beanie.exceptions import RevisionIdWasChanged
from pymongo.errors import DuplicateKeyError

from app.db import utcnow
from app.domains.accounts.models import WhatsAppAccount
from app.domains.accounts.profile import graph_failure
from app.domains.accounts.services import AccountService, describe_graph_error
from app.domains.audit import services as audit
from app.domains.templates.drafts import MEDIA_HEADERS, TemplateDraft
from app.domains.templates.models import MessageTemplate
from app.errors import Conflict, NotFound, ValidationFailed
from app.logging import get_logger
from app.realtime import LiveEvents
from app.whatsapp.errors import GraphError
from app.whatsapp.media import MB, base_mime
from app.whatsapp.webhook_values import TemplateCategoryUpdate, TemplateQualityUpdate, TemplateStatusUpdate

log = get_logger(__name__)

# A sample for a media header: what Meta accepts for that header and how large.
SAMPLE_RULES = {"IMAGE": ({"image/jpeg", "image/png"}, 5 * MB), "VIDEO": ({"video/mp4"}, 16 * MB),
                "DOCUMENT": ({"application/pdf"}, 100 * MB)}
_NOT_FOUND_SUBCODE = 2593002  # Meta: "message template not found" on delete
_EVENT_STATUS = {"REINSTATED": "APPROVED"}  # events that land on another status


@dataclass
class SyncReport:
    """What a sync did, per workspace."""

    created: int = 0
    updated: int = 0
    removed: int = 0
    wabas: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "removed": self.removed,
                "wabas": self.wabas, "errors": self.errors}


def _reason(value: str | None) -> str | None:
    return None if value in (None, "", "NONE") else value


def _quality(item: dict[str, Any]) -> str | None:
    score = item.get("quality_score")
    if isinstance(score, dict):
        return score.get("score")
    return score if isinstance(score, str) else None


class TemplateService:
    """The templates of a workspace's WABAs, kept in step with Meta."""

    def __init__(self, accounts: AccountService, live: LiveEvents) -> None:
        self.accounts = accounts
        self.live = live

    # -- reading ----------------------------------------------------------------------------------

    async def list(self, workspace_id: PydanticObjectId, *, status: str | None = None, category: str | None = None,
                   language: str | None = None, waba_id: str | None = None,
                   name: str | None = None) -> list[MessageTemplate]:
        query: dict[str, Any] = {}
        for key, value in (("status", status), ("category", category), ("language", language),
                           ("waba_id", waba_id)):
            if value:
                query[key] = value.upper() if key in ("status", "category") else value
        if name:
            query["name"] = {"$regex": "^" + "".join(c if c.isalnum() or c == "_" else "" for c in name)}
        return await MessageTemplate.scoped(workspace_id, query).sort("+name", "+language").to_list()

    async def get(self, workspace_id: PydanticObjectId, template_id: str) -> MessageTemplate:
        return await MessageTemplate.get_scoped(workspace_id, template_id)

    @staticmethod
    def view(template: MessageTemplate) -> dict[str, Any]:
        return {
            "id": str(template.id), "waba_id": template.waba_id, "meta_id": template.meta_id,
            "name": template.name, "language": template.language, "category": template.category,
            "status": template.status, "parameter_format": template.parameter_format,
            "components": template.components, "rejected_reason": template.rejected_reason,
            "rejection_detail": template.rejection_detail, "quality_score": template.quality_score,
            "previous_category": template.previous_category, "synced_at": template.synced_at,
            "created_at": template.created_at, "updated_at": template.updated_at,
        }

    # -- sync -------------------------------------------------------------------------------------

    async def sync(self, workspace_id: PydanticObjectId) -> SyncReport:
        """Every template of every WABA the workspace's enabled numbers belong to (all pages)."""
        report = SyncReport()
        by_waba: dict[str, WhatsAppAccount] = {}
        for account in await self.accounts.list(workspace_id):
            if account.enabled:
                by_waba.setdefault(account.waba_id, account)
        for waba_id, account in by_waba.items():
            try:
                items = await self.accounts.graph(account).list_templates(waba_id)
            except GraphError as error:
                described = describe_graph_error(error, self.accounts.graph_api_url)
                report.errors.append({"waba_id": waba_id, "account_id": str(account.id), **described})
                log.info("template sync failed", waba_id=waba_id, code=error.code)
                continue
            report.wabas.append(waba_id)
            await self._store_page(workspace_id, waba_id, items, report)
        await self.live.publish(workspace_id, "templates.synced", **report.to_dict())
        return report

    async def sync_all(self) -> dict[str, int]:
        """The periodic job: every workspace with an enabled number (catches webhooks that never came)."""
        workspace_ids = await WhatsAppAccount.distinct("workspace_id", {"enabled": True})
        totals = {"workspaces": 0, "created": 0, "updated": 0, "removed": 0, "errors": 0}
        for workspace_id in workspace_ids:
            report = await self.sync(workspace_id)
            totals["workspaces"] += 1
            for key in ("created", "updated", "removed"):
                totals[key] += getattr(report, key)
            totals["errors"] += len(report.errors)
        log.info("templates synced", **totals)
        return totals

    async def _store_page(self, workspace_id: PydanticObjectId, waba_id: str, items: list[dict[str, Any]],
                          report: SyncReport) -> None:
        now = utcnow()
        seen: set[tuple[str, str]] = set()
        for item in items:
            name, language = str(item.get("name") or ""), str(item.get("language") or "")
            if not name or not language:
                continue
            seen.add((name, language))
            fields = {
                "meta_id": str(item.get("id") or ""), "category": str(item.get("category") or "UTILITY").upper(),
                "status": str(item.get("status") or "PENDING").upper(),
                "parameter_format": str(item.get("parameter_format") or "POSITIONAL").upper(),
                "components": list(item.get("components") or []),
                "rejected_reason": _reason(item.get("rejected_reason")), "synced_at": now, "updated_at": now,
            }
            if _quality(item):
                fields["quality_score"] = _quality(item)
            existing = await self._by_key(workspace_id, waba_id, name, language)
            if existing is None:
                try:
                    await MessageTemplate(workspace_id=workspace_id, waba_id=waba_id, name=name, language=language,
                                          **fields).insert()
                    report.created += 1
                    continue
                except DuplicateKeyError:  # a webhook or another sync stored it meanwhile
                    existing = await self._by_key(workspace_id, waba_id, name, language)
            if existing is not None:
                await existing.set(fields)
                report.updated += 1
        for stale in await MessageTemplate.scoped(workspace_id, {"waba_id": waba_id}).to_list():
            if (stale.name, stale.language) not in seen:
                await stale.delete()
                report.removed += 1

    @staticmethod
    async def _by_key(workspace_id: PydanticObjectId, waba_id: str, name: str,
                      language: str) -> MessageTemplate | None:
        return await MessageTemplate.find_one_scoped(
            workspace_id, {"waba_id": waba_id, "name": name, "language": language})

    # -- create and delete ------------------------------------------------------------------------

    async def create(self, workspace_id: PydanticObjectId, draft: TemplateDraft,
                     sample: tuple[bytes, str, str] | None = None) -> MessageTemplate:
        """Validate, upload a media header's sample (bytes, file name, MIME), submit to Meta, store."""
        account = await self._account_for(workspace_id, draft.account_id)
        header = (draft.header_format or "").upper()
        pending_sample = sample is not None and header in MEDIA_HEADERS
        definition = draft.definition(media_sample_pending=pending_sample)
        if await self._by_key(workspace_id, account.waba_id, draft.name, draft.language):
            raise Conflict("A template with this name and language already exists on this number's account.",
                           error_code="TEMPLATE_EXISTS", details={"name": "Already used in this language."})
        graph = self.accounts.graph(account)
        try:
            if pending_sample and sample is not None:
                draft.header_handle = await graph.upload_media(account.phone_number_id,
                                                               *self._checked_sample(header, sample))
                definition = draft.definition()
            answer = await graph.create_template(account.waba_id, definition)
        except GraphError as error:
            raise graph_failure(error, self.accounts.graph_api_url) from None
        template = MessageTemplate(
            workspace_id=workspace_id, waba_id=account.waba_id, meta_id=str(answer.get("id") or ""),
            name=definition["name"], language=definition["language"],
            category=str(answer.get("category") or definition["category"]).upper(),
            status=str(answer.get("status") or "PENDING").upper(),
            parameter_format=definition.get("parameter_format", "POSITIONAL"),
            components=definition["components"])
        try:
            await template.insert()
        except DuplicateKeyError:  # Meta's status webhook raced us and stored it first
            stored = await self._by_key(workspace_id, account.waba_id, template.name, template.language)
            if stored is None:
                raise
            await stored.set({"components": template.components, "parameter_format": template.parameter_format})
            template = stored
        await self._publish(template)
        await audit.record(workspace_id, "template.created", "template", template.id,
                           f"{template.name} ({template.language})", {"category": template.category})
        return template

    @staticmethod
    def _checked_sample(header: str, sample: tuple[bytes, str, str]) -> tuple[bytes, str, str]:
        data, filename, mime = sample
        allowed, limit = SAMPLE_RULES[header]
        mime = base_mime(mime or "")
        if mime not in allowed:
            raise ValidationFailed("This sample's file type does not fit the header.",
                                   details={"header.sample": f"Use {', '.join(sorted(allowed))}."})
        if not data or len(data) > limit:
            raise ValidationFailed("The sample file is empty or too large.",
                                   details={"header.sample": f"At most {limit // MB} MB."})
        return data, mime, filename or "sample"

    async def _account_for(self, workspace_id: PydanticObjectId, account_id: str) -> WhatsAppAccount:
        if not account_id:
            raise ValidationFailed("Choose the number whose account gets the template.",
                                   details={"account_id": "Required."})
        try:
            return await self.accounts.get(workspace_id, account_id)
        except NotFound:
            raise ValidationFailed("No such number in this workspace.", details={"account_id": "Unknown number."}) from None

    async def delete(self, template: MessageTemplate) -> None:
        """Delete at Meta (this language only) and here; already gone at Meta counts as deleted."""
        account = await WhatsAppAccount.find_one_scoped(template.workspace_id, {"waba_id": template.waba_id})
        if account is not None:
            try:
                await self.accounts.graph(account).delete_template(template.waba_id, template.name,
                                                                   hsm_id=template.meta_id or None)
            except GraphError as error:
                if not (error.code == 100 and error.subcode == _NOT_FOUND_SUBCODE):
                    raise graph_failure(error, self.accounts.graph_api_url) from None
        await template.delete()
        await self.live.publish(template.workspace_id, "template.deleted", template_id=str(template.id))
        await audit.record(template.workspace_id, "template.deleted", "template", template.id,
                           f"{template.name} ({template.language})")

    # -- Meta's webhooks --------------------------------------------------------------------------

    async def _find(self, workspace_id: PydanticObjectId, waba_id: str, meta_id: Any, name: str | None,
                    language: str | None) -> MessageTemplate | None:
        if meta_id is not None:
            found = await MessageTemplate.find_one_scoped(workspace_id, {"waba_id": waba_id, "meta_id": str(meta_id)})
            if found is not None:
                return found
        if name and language:
            return await self._by_key(workspace_id, waba_id, name, language)
        return None

    async def apply_status_update(self, workspace_id: PydanticObjectId, waba_id: str,
                                  update: TemplateStatusUpdate) -> MessageTemplate | None:
        """``message_template_status_update``: APPROVED, REJECTED (with the reason), PAUSED, DELETED ..."""
        event = (update.event or "").upper()
        template = await self._find(workspace_id, waba_id, update.message_template_id,
                                    update.message_template_name, update.message_template_language)
        if event == "DELETED":
            if template is not None:
                await template.delete()
                await self.live.publish(workspace_id, "template.deleted", template_id=str(template.id))
            return None
        if template is None:
            if not (update.message_template_name and update.message_template_language):
                log.info("status update for an unknown template", waba_id=waba_id)
                return None
            # Made in Meta's own UI: keep it now; the next sync fills in its components.
            template = MessageTemplate(
                workspace_id=workspace_id, waba_id=waba_id, meta_id=str(update.message_template_id or ""),
                name=update.message_template_name, language=update.message_template_language,
                category=(update.message_template_category or "UTILITY").upper())
        template.status = _EVENT_STATUS.get(event, event or template.status)
        if template.status == "APPROVED":
            template.rejected_reason = template.rejection_detail = None
        else:
            template.rejected_reason = _reason(update.reason) or template.rejected_reason
            detail = update.rejection_info or update.other_info or {}
            words = " ".join(str(detail.get(k)) for k in ("reason", "title", "description", "recommendation")
                             if detail.get(k))
            template.rejection_detail = words or template.rejection_detail
        if update.message_template_category:
            template.category = update.message_template_category.upper()
        return await self._save(template)

    async def apply_quality_update(self, workspace_id: PydanticObjectId, waba_id: str,
                                   update: TemplateQualityUpdate) -> MessageTemplate | None:
        """``message_template_quality_update``: GREEN / YELLOW / RED / UNKNOWN."""
        template = await self._find(workspace_id, waba_id, update.message_template_id,
                                    update.message_template_name, update.message_template_language)
        if template is None or not update.new_quality_score:
            return None
        template.quality_score = update.new_quality_score.upper()
        return await self._save(template)

    async def apply_category_update(self, workspace_id: PydanticObjectId, waba_id: str,
                                    update: TemplateCategoryUpdate) -> MessageTemplate | None:
        """``template_category_update``: Meta re-categorised the template (it changes its price)."""
        template = await self._find(workspace_id, waba_id, update.message_template_id,
                                    update.message_template_name, update.message_template_language)
        new = update.new_category or update.correct_category
        if template is None or not new:
            return None
        template.previous_category = update.previous_category or template.category
        template.category = new.upper()
        return await self._save(template)

    async def _save(self, template: MessageTemplate) -> MessageTemplate:
        template.updated_at = utcnow()
        try:
            await (template.insert() if template.id is None else template.save())
        except (DuplicateKeyError, RevisionIdWasChanged):  # a sync stored the same name+language meanwhile
            stored = await self._by_key(template.workspace_id, template.waba_id, template.name, template.language)
            if stored is None:
                raise
            await stored.set({"status": template.status, "rejected_reason": template.rejected_reason,
                              "rejection_detail": template.rejection_detail, "category": template.category,
                              "quality_score": template.quality_score, "updated_at": template.updated_at})
            template = stored
        await self._publish(template)
        return template

    async def _publish(self, template: MessageTemplate) -> None:
        await self.live.publish(template.workspace_id, "template.updated", template_id=str(template.id),
                                status=template.status, category=template.category,
                                quality_score=template.quality_score, rejected_reason=template.rejected_reason)
