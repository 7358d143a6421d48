"""Non-message webhooks: template status / quality / category on templates, number and account news on accounts.

Number and account news (restrictions, bans, alerts, limit and quality changes ...) are kept on each
number they concern as events with the notice they make (app/domains/notifications/words.py): the
number's admin page lists them in words, and warnings and critical ones count in the admins' badge
until one of them marks them seen.

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
from app.domains.notifications.notices import NOTIFY
from app.domains.notifications.words import describe, tier_code
from app.domains.webhooks.models import TemplateStatusEvent
from app.logging import get_logger

log = get_logger(__name__)

ACCOUNT_EVENTS_KEPT = 50
TEMPLATE_FIELDS = frozenset({"message_template_status_update", "message_template_quality_update",
                             "template_category_update", "message_template_components_update"})
ACCOUNT_FIELDS = frozenset({"account_update", "account_alerts", "phone_number_quality_update",
                            "phone_number_name_update", "business_capability_update", "security",
                            "account_review_update", "business_status_update"})
LIMIT_FIELDS = frozenset({"phone_number_quality_update", "business_capability_update"})
"""Fields whose notice says whether the messaging limit went up or down (the stored event keeps the
limit before it)."""


def _digits(value: Any) -> str:
    return "".join(ch for ch in str(value or "") if ch.isdigit())


def _health_changes(field: str, value: dict[str, Any], account: WhatsAppAccount) -> dict[str, Any]:
    """What a number / account webhook changes on the number's health panel."""
    health = account.health
    changes: dict[str, Any] = {}
    if field == "phone_number_quality_update":
        event = value.get("event")
        limit = value.get("max_daily_conversations_per_business") or value.get("current_limit")
        if event == "THROUGHPUT_UPGRADE":
            changes["health.throughput_level"] = "HIGH"  # its "current_limit" is the throughput, not the tier
        elif limit:
            changes["health.messaging_limit_tier"] = tier_code(limit)
        if event == "FLAGGED":
            changes["health.quality_rating"] = "RED"
        elif event == "UNFLAGGED" and health.quality_rating == "RED":
            changes["health.quality_rating"] = None  # better, but how good Meta says at the next connection test
    if field == "business_capability_update":
        limit = value.get("max_daily_conversations_per_business")
        limit = limit if limit is not None else value.get("max_daily_conversation_per_phone")
        if limit is not None and tier_code(limit):
            changes["health.messaging_limit_tier"] = tier_code(limit)
    if field == "phone_number_name_update":
        if value.get("decision"):
            changes["health.name_status"] = value["decision"]
        if value.get("decision") == "APPROVED" and value.get("requested_verified_name"):
            changes["health.verified_name"] = value["requested_verified_name"]
    return changes


def _entry(field: str, value: dict[str, Any], at: datetime, key: str, account: WhatsAppAccount) -> dict[str, Any]:
    """The stored event: Meta's value as sent, and the notice it makes (severity, sentence) for the
    number's page and the admins' badge (``seen_at`` set when an admin marks it seen)."""
    previous = account.health.messaging_limit_tier if field in LIMIT_FIELDS else None
    notice = describe(field, value, previous_limit=previous)
    alert = value.get("alert_info")
    alert_type = alert.get("alert_type") if isinstance(alert, dict) else None
    entry = {"key": key, "field": field, "event": value.get("event") or value.get("decision") or alert_type,
             "summary": notice.text[:300], "severity": notice.severity, "seen_at": None, "at": at, "value": value}
    if previous:
        entry["previous_limit"] = previous
    return entry


async def record_account_update(workspace_id: PydanticObjectId, accounts: list[WhatsAppAccount], field: str,
                                value: dict[str, Any], at: datetime, key: str) -> int:
    """Record a number / account webhook on the accounts it concerns; returns how many changed."""
    display = _digits(value.get("display_phone_number") or value.get("phone_number"))
    targets = [a for a in accounts if not display or _digits(a.display_phone_number) == display] or accounts
    changed = 0
    now = utcnow()
    for account in targets:
        # Received now (``at`` is Meta's time of the event, which can be much older).
        changes: dict[str, Any] = {"health.last_webhook_at": now, "updated_at": now,
                                   **_health_changes(field, value, account)}
        entry = _entry(field, value, at, key, account)
        result = await WhatsAppAccount.get_motor_collection().update_one(
            {"_id": account.id, "workspace_id": workspace_id, "health.account_events.key": {"$ne": key}},
            {"$set": changes, "$push": {"health.account_events": {"$each": [entry], "$slice": -ACCOUNT_EVENTS_KEPT}}},
        )
        changed += result.modified_count
        if result.modified_count and entry["severity"] in NOTIFY:
            log.info("whatsapp notice", account_id=str(account.id), field=field, severity=entry["severity"],
                     notice=entry["summary"])
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
