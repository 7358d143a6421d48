"""Non-message webhooks: template status / quality / category on templates, number and account news on accounts.

Every update is also idempotent: account events carry a key (webhook event id + position) that is
pushed once, template updates are recorded once per (webhook event, field, template, event).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from beanie import PydanticObjectId
from pymongo.errors import DuplicateKeyError

from app.db import utcnow
from app.domains.accounts.models import WhatsAppAccount
from app.domains.webhooks.models import TemplateStatusEvent
from app.logging import get_logger

log = get_logger(__name__)

ACCOUNT_EVENTS_KEPT = 50
TEMPLATE_FIELDS = frozenset({"message_template_status_update", "message_template_quality_update",
                             "template_category_update", "message_template_components_update"})
ACCOUNT_FIELDS = frozenset({"account_update", "account_alerts", "phone_number_quality_update",
                            "phone_number_name_update", "business_capability_update", "security",
                            "account_review_update", "business_status_update"})


def _digits(value: Any) -> str:
    return "".join(ch for ch in str(value or "") if ch.isdigit())


def _summary(field: str, value: dict[str, Any]) -> str:
    """A short line for the account's health panel."""
    parts = [str(value[k]) for k in ("event", "decision", "current_limit", "requested_verified_name",
                                     "alert_type", "alert_status", "reason") if value.get(k)]
    return f"{field}: {' '.join(parts)}".strip(": ")[:300]


async def record_account_update(workspace_id: PydanticObjectId, accounts: list[WhatsAppAccount], field: str,
                                value: dict[str, Any], at: datetime, key: str) -> int:
    """Record a number / account webhook on the accounts it concerns; returns how many changed."""
    display = _digits(value.get("display_phone_number") or value.get("phone_number"))
    targets = [a for a in accounts if not display or _digits(a.display_phone_number) == display] or accounts
    changes: dict[str, Any] = {"health.last_webhook_at": at, "updated_at": utcnow()}
    if field == "phone_number_quality_update" and value.get("current_limit"):
        changes["health.messaging_limit_tier"] = value["current_limit"]
    if field == "phone_number_name_update":
        if value.get("decision"):
            changes["health.name_status"] = value["decision"]
        if value.get("decision") == "APPROVED" and value.get("requested_verified_name"):
            changes["health.verified_name"] = value["requested_verified_name"]
    entry = {"key": key, "field": field, "event": value.get("event") or value.get("decision"),
             "summary": _summary(field, value), "at": at, "value": value}
    changed = 0
    for account in targets:
        result = await WhatsAppAccount.get_motor_collection().update_one(
            {"_id": account.id, "workspace_id": workspace_id, "health.account_events.key": {"$ne": key}},
            {"$set": changes, "$push": {"health.account_events": {"$each": [entry], "$slice": -ACCOUNT_EVENTS_KEPT}}},
        )
        changed += result.modified_count
    return changed


async def record_template_update(workspace_id: PydanticObjectId, waba_id: str, field: str, value: dict[str, Any],
                                 at: datetime | None, webhook_event_id: str) -> TemplateStatusEvent | None:
    """Keep the template news as a TemplateStatusEvent; None when this body's record exists already."""
    template_id = value.get("message_template_id")
    record = TemplateStatusEvent(
        workspace_id=workspace_id, waba_id=waba_id, field=field,
        meta_template_id=str(template_id) if template_id is not None else None,
        name=value.get("message_template_name"), language=value.get("message_template_language"),
        event=value.get("event"), reason=value.get("reason"),
        quality=value.get("new_quality_score"),
        category=value.get("new_category") or value.get("message_template_category"),
        previous=value.get("previous_quality_score") or value.get("previous_category"),
        raw=value, webhook_event_id=webhook_event_id, occurred_at=at,
    )
    try:
        await record.insert()
    except DuplicateKeyError:
        return None  # this body was ingested before: the template got it then
    return record
