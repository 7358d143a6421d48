"""Meta's account and number webhooks in words an admin understands, each with a severity.

``describe(field, value)`` reads a stored change through the typed views of
app/whatsapp/webhook_values.py and says what happened in one sentence:

- critical: the account or number cannot do its job any more (restricted, banned, deleted, review rejected);
- warning: something to look at soon (a policy violation, the quality flag, a lowered limit ...);
- info: news (a raised limit, an approved display name, a pricing tier ...).

A field or event we do not know yet is shown with Meta's raw event type (``known`` False); its
payload is kept with the event. A number's stored events become the notices its admin page lists
in app/domains/notifications/notices.py. Nothing here reads or writes the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from app.db import utcnow
from app.whatsapp.webhook_values import (
    AccountAlert,
    AccountReviewUpdate,
    AccountUpdate,
    BusinessCapabilityUpdate,
    PhoneNumberNameUpdate,
    PhoneNumberQualityUpdate,
    SecurityUpdate,
)

ACCOUNT_QUALITY = "Details and appeals: Meta's WhatsApp Manager → Account tools → Account quality."

RESTRICTIONS = {
    "RESTRICTED_BIZ_INITIATED_MESSAGING": "starting conversations",
    "RESTRICTED_CUSTOMER_INITIATED_MESSAGING": "replying to customers",
    "RESTRICTED_ADD_PHONE_NUMBER_ACTION": "adding phone numbers",
}

TIER_WORDS = {"TIER_50": "50", "TIER_250": "250", "TIER_1K": "1K", "TIER_2K": "2K", "TIER_10K": "10K",
              "TIER_100K": "100K", "TIER_UNLIMITED": "unlimited"}
TIER_ORDER = ("TIER_NOT_SET", "TIER_50", "TIER_250", "TIER_1K", "TIER_2K", "TIER_10K", "TIER_100K", "TIER_UNLIMITED")
_TIER_OF_NUMBER = {50: "TIER_50", 250: "TIER_250", 1000: "TIER_1K", 2000: "TIER_2K", 10000: "TIER_10K",
                   100000: "TIER_100K"}

ALERTS = {
    "INCREASED_CAPABILITIES_ELIGIBILITY_DEFERRED": "Meta has not decided yet whether to raise the messaging limit",
    "INCREASED_CAPABILITIES_ELIGIBILITY_FAILED": "Meta will not raise the messaging limit for now",
    "INCREASED_CAPABILITIES_ELIGIBILITY_NEED_MORE_INFO":
        "Meta needs more information (identity verification) before raising the messaging limit",
    "OBA_APPROVED": "Official Business Account approved: the number now shows Meta's verified badge",
    "OBA_REJECTED": "Official Business Account request rejected",
    "PROFILE_PICTURE_LOST": "The business profile photo was removed: upload a new one",
}
_ALERT_SEVERITY = {"CRITICAL": "critical", "WARNING": "warning"}


@dataclass(frozen=True)
class NoticeText:
    """One webhook in words."""

    severity: str
    text: str
    detail: str = ""
    """Meta's own words, or what the admin can do about it."""
    known: bool = True
    """False: a field or event we do not describe yet; ``text`` names Meta's raw event type."""


@dataclass
class _Context:
    now: datetime
    previous_limit: str | None = None
    """The number's messaging limit before this webhook (raised or lowered?)."""
    violation: str | None = None
    """The policy violation Meta reported shortly before (a restriction names it)."""


# -- words --------------------------------------------------------------------------------------

def when(epoch: Any) -> str:
    """Epoch seconds as "4 Jan 2022 21:08 UTC" (Meta's value as it is when it is not one)."""
    try:
        moment = datetime.fromtimestamp(int(epoch), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return str(epoch)
    return f"{moment.day} {moment:%b %Y %H:%M} UTC"


def tier_code(value: Any) -> str | None:
    """A messaging limit as Meta's tier code: business_capability_update sends numbers (2000, -1)."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        number = int(text)
        return "TIER_UNLIMITED" if number < 0 else _TIER_OF_NUMBER.get(number, str(number))
    return text


def limit_words(value: Any) -> str:
    """ "10K customers/24h" for TIER_10K (or 10000)."""
    code = tier_code(value)
    if code is None:
        return "unknown"
    if code == "TIER_NOT_SET":
        return "not set yet (nothing sent so far)"
    words = TIER_WORDS.get(code) or (f"{int(code):,}" if code.isdigit() else code)
    return f"{words} customers/24h"


def _rank(value: Any) -> int | None:
    code = tier_code(value)
    return TIER_ORDER.index(code) if code in TIER_ORDER else None


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _until(epoch: int | None, now: datetime) -> str:
    if epoch is None:
        return ""
    ended = " (now over)" if epoch < now.timestamp() else ""
    return f" until {when(epoch)}{ended}"


def _raw(field: str, value: Any) -> NoticeText:
    """What we cannot describe: Meta's field and raw event type, as sent."""
    event = None
    if isinstance(value, dict):
        for key in ("event", "decision", "alert_type"):
            if isinstance(value.get(key), str | int) and value.get(key) != "":
                event = str(value[key])
                break
        alert = value.get("alert_info")
        if event is None and isinstance(alert, dict) and alert.get("alert_type"):
            event = str(alert["alert_type"])
    return NoticeText("info", f"Meta sent {field}" + (f": {event}" if event else ""), known=False)


# -- one function per field ---------------------------------------------------------------------

def _account_update(value: dict[str, Any], ctx: _Context) -> NoticeText:
    update = AccountUpdate.model_validate(value)
    event = update.event or ""
    if event == "ACCOUNT_RESTRICTION":
        return _restriction(update, ctx)
    if event == "ACCOUNT_VIOLATION":
        kind = update.violation.violation_type if update.violation else None
        return NoticeText("warning", "Meta reported a policy violation on this WhatsApp Business account"
                          + (f": {kind}" if kind else ""),
                          "Repeated violations lead to restrictions or a ban. " + ACCOUNT_QUALITY)
    if event == "DISABLED_UPDATE":
        return _ban(update)
    if event == "VOLUME_BASED_PRICING_TIER_UPDATE" and update.volume_tier:
        tier = update.volume_tier
        band = "–".join(f"{int(b):,}" if b.isdigit() else b for b in (tier.tier or "?").split(":"))
        where = f" in {tier.region}" if tier.region else ""
        since = f", from {tier.effective_month}" if tier.effective_month else ""
        return NoticeText("info", f"Volume pricing tier for {tier.pricing_category or 'some'} messages{where}: "
                                  f"{band} messages a month{since}")
    if event == "BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE":
        return NoticeText("info", f"Meta set the business's primary location to {update.country or 'a country'}")
    if event == "AUTH_INTL_PRICE_ELIGIBILITY_UPDATE":
        start = update.auth_international_start
        return NoticeText("info", "Authentication-international rates apply to this account"
                          + (f" from {when(start)}" if start is not None else ""))
    if event == "PARTNER_CLIENT_CERTIFICATION_STATUS_UPDATE" and update.certification:
        status = (update.certification.status or "").upper()
        reasons = [r for r in update.certification.rejection_reasons or () if r and r != "NONE"]
        if status == "FAILED":
            return NoticeText("warning", "Partner-led business verification was rejected", ", ".join(reasons))
        return NoticeText("info", f"Partner-led business verification: {status.lower() or 'updated'}")
    if event == "PARTNER_REMOVED":
        gone = update.disconnection
        why = ""
        if gone and (gone.reason or gone.initiated_by):
            why = f"Reason: {gone.reason or 'not given'}" + (f", by {gone.initiated_by}" if gone.initiated_by else "")
        return NoticeText("warning", "This WhatsApp Business account is no longer shared with a solution partner", why)
    if event in ("PARTNER_APP_INSTALLED", "PARTNER_APP_UNINSTALLED"):
        app = f" (app {update.partner_app_id})" if update.partner_app_id else ""
        if event == "PARTNER_APP_INSTALLED":
            return NoticeText("info", f"An app was given access to this WhatsApp Business account{app}")
        return NoticeText("warning", f"An app's access to this WhatsApp Business account was removed{app}",
                          "If it is the app this inbox uses, Meta stops its webhooks and refuses its sends.")
    known = _ACCOUNT_EVENTS.get(event)
    if known is not None:
        return NoticeText(*known)
    return _raw("account_update", value)


_ACCOUNT_EVENTS: dict[str, tuple[str, str, str]] = {
    "ACCOUNT_DELETED": ("critical", "The WhatsApp Business account was deleted: its numbers can no longer send",
                        ""),
    "ACCOUNT_OFFBOARDED": ("critical", "The WhatsApp Business account was offboarded from this app",
                           "Sends and webhooks stop until it is connected again."),
    "ACCOUNT_RECONNECTED": ("info", "The WhatsApp Business account was reconnected", ""),
    "PARTNER_ADDED": ("info", "This WhatsApp Business account was shared with a solution partner", ""),
    "AD_ACCOUNT_LINKED": ("info", "An ad account was linked to this WhatsApp Business account", ""),
    "MM_LITE_TERMS_SIGNED": ("info", "The Marketing Messages Lite terms were accepted", ""),
}


def _restriction(update: AccountUpdate, ctx: _Context) -> NoticeText:
    restrictions = update.restrictions
    reason = f" (policy violation: {ctx.violation})" if ctx.violation else ""
    if not restrictions:
        return NoticeText("critical", f"Meta restricted this WhatsApp Business account{reason}", ACCOUNT_QUALITY)
    expirations = {r.expiration for r in restrictions}
    one_end = len(expirations) == 1
    parts = []
    for item in restrictions:
        what = RESTRICTIONS.get(item.restriction_type or "", item.restriction_type or "some actions")
        parts.append(what if one_end else what + _until(item.expiration, ctx.now))
    text = "Meta restricted this WhatsApp Business account from " + _join(parts)
    if one_end:
        text += _until(next(iter(expirations)), ctx.now)
    return NoticeText("critical", text + reason, ACCOUNT_QUALITY)


def _ban(update: AccountUpdate) -> NoticeText:
    ban = update.ban
    state = (ban.waba_ban_state if ban else None) or ""
    date = ban.waba_ban_date if ban else None
    if state == "DISABLE":
        return NoticeText("critical", "Meta banned (disabled) this WhatsApp Business account"
                          + (f" on {date}" if date else "") + ": its numbers can no longer send", ACCOUNT_QUALITY)
    if state == "SCHEDULE_FOR_DISABLE":
        return NoticeText("critical", "Meta will ban (disable) this WhatsApp Business account"
                          + (f" on {date}" if date else "") + " unless the violation is resolved", ACCOUNT_QUALITY)
    if state == "REINSTATE":
        return NoticeText("info", "Meta reinstated this WhatsApp Business account"
                          + (f" (it was disabled on {date})" if date else ""))
    return NoticeText("warning", f"Meta changed this WhatsApp Business account's ban state: {state or 'unknown'}",
                      ACCOUNT_QUALITY, known=False)


def _limit_change(new: Any, old: Any, event: str = "") -> NoticeText:
    new_rank, old_rank = _rank(new), _rank(old)
    was = f" (was {limit_words(old)})" if old and tier_code(old) != tier_code(new) else ""
    moved = new_rank - old_rank if new_rank is not None and old_rank is not None else 0
    if event == "DOWNGRADE" or (event != "UPGRADE" and moved < 0):
        return NoticeText("warning", f"Messaging limit lowered to {limit_words(new)}{was}",
                          "Fewer customers can be sent templates per 24 hours. " + ACCOUNT_QUALITY)
    if event == "UPGRADE" or moved > 0:
        return NoticeText("info", f"Messaging limit raised to {limit_words(new)}{was}")
    return NoticeText("info", f"Messaging limit: {limit_words(new)}")


def _quality_update(value: dict[str, Any], ctx: _Context) -> NoticeText:
    update = PhoneNumberQualityUpdate.model_validate(value)
    event = update.event or ""
    limit = update.max_daily_conversations_per_business or update.current_limit
    if event == "FLAGGED":
        return NoticeText("warning", "Quality rating dropped to LOW (RED): Meta flagged this number",
                          "Customers blocked or reported recent messages. Send fewer, more relevant templates; "
                          + ACCOUNT_QUALITY)
    if event == "UNFLAGGED":
        return NoticeText("info", "Quality rating recovered: Meta removed the flag on this number")
    if event == "THROUGHPUT_UPGRADE":
        return NoticeText("info", "Throughput raised: this number may now send up to 1,000 messages per second")
    if event == "ONBOARDING":
        return NoticeText("info", f"Number onboarding: messaging limit {limit_words(limit)}")
    if limit is not None:
        return _limit_change(limit, update.old_limit or ctx.previous_limit, event)
    return _raw("phone_number_quality_update", value)


def _capability_update(value: dict[str, Any], ctx: _Context) -> NoticeText:
    update = BusinessCapabilityUpdate.model_validate(value)
    limit = (update.max_daily_conversations_per_business if update.max_daily_conversations_per_business is not None
             else update.max_daily_conversation_per_phone)
    phones = update.max_phone_numbers_per_waba or update.max_phone_numbers_per_business
    more = f"Up to {phones} phone numbers." if phones else ""
    if limit is not None:
        notice = _limit_change(limit, ctx.previous_limit)
        return NoticeText(notice.severity, notice.text, " ".join(p for p in (more, notice.detail) if p))
    if phones:
        return NoticeText("info", f"This business may now have up to {phones} phone numbers")
    return _raw("business_capability_update", value)


def _alert(value: dict[str, Any], ctx: _Context) -> NoticeText:
    alert = AccountAlert.model_validate(value).alert
    if not alert.alert_type and not alert.alert_description:
        return _raw("account_alerts", value)
    severity = _ALERT_SEVERITY.get((alert.alert_severity or "").upper(), "info")
    text = ALERTS.get(alert.alert_type or "")
    if text is None:
        return NoticeText(severity, f"Meta alert: {alert.alert_type or 'no type'}", alert.alert_description or "",
                          known=False)
    return NoticeText(severity, text, alert.alert_description or "")


def _name_update(value: dict[str, Any], ctx: _Context) -> NoticeText:
    update = PhoneNumberNameUpdate.model_validate(value)
    name = f'"{update.requested_verified_name}"' if update.requested_verified_name else "the requested one"
    decision = (update.decision or "").upper()
    if decision == "APPROVED":
        return NoticeText("info", f"Display name {name} approved")
    if decision == "REJECTED":
        return NoticeText("warning", f"Display name {name} rejected", update.rejection_reason or
                          "Check Meta's display name guidelines, then request a new name.")
    if decision == "DEFERRED":
        return NoticeText("info", f"Meta deferred its review of the display name {name}")
    if decision == "PENDING":
        return NoticeText("info", f"Display name {name} is being reviewed")
    return _raw("phone_number_name_update", value)


def _security(value: dict[str, Any], ctx: _Context) -> NoticeText:
    event = (SecurityUpdate.model_validate(value).event or "").upper()
    if event == "PIN_CHANGED":
        return NoticeText("warning", "The number's two-step verification PIN was changed",
                          "If nobody on your team did it, reset the PIN in Meta's WhatsApp Manager.")
    if event == "PIN_RESET_REQUEST":
        return NoticeText("warning", "Someone asked to reset the number's two-step verification PIN",
                          "If nobody on your team did it, check who has access in Meta's Business Manager.")
    return _raw("security", value)


def _review(value: dict[str, Any], ctx: _Context) -> NoticeText:
    decision = (AccountReviewUpdate.model_validate(value).decision or "").upper()
    if decision == "APPROVED":
        return NoticeText("info", "Meta approved its review of this WhatsApp Business account")
    if decision == "REJECTED":
        return NoticeText("critical", "Meta rejected its review of this WhatsApp Business account: it cannot send",
                          "Ask for another review in Meta's Business Support Home.")
    if decision in ("PENDING", "DEFERRED"):
        return NoticeText("info", f"Meta's review of this WhatsApp Business account is {decision.lower()}")
    return _raw("account_review_update", value)


def _message_errors(value: dict[str, Any], ctx: _Context) -> NoticeText:
    errors = [e for e in value.get("errors") or () if isinstance(e, dict)]
    if not errors:
        return _raw("messages", value)
    first = errors[0]
    code = f" (code {first['code']})" if first.get("code") is not None else ""
    data = first.get("error_data")
    details = data.get("details") if isinstance(data, dict) else None
    title = first.get("title") or first.get("message") or "an error"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return NoticeText("warning", f"Meta reported an error on this number: {title}{code}{more}", str(details or ""))


_FIELDS: dict[str, Callable[[dict[str, Any], _Context], NoticeText]] = {
    "account_update": _account_update,
    "phone_number_quality_update": _quality_update,
    "business_capability_update": _capability_update,
    "account_alerts": _alert,
    "phone_number_name_update": _name_update,
    "security": _security,
    "account_review_update": _review,
    "messages.errors": _message_errors,
}


def describe(field: str, value: Any, *, previous_limit: str | None = None, violation: str | None = None,
             now: datetime | None = None) -> NoticeText:
    """One stored change in words; Meta's raw field and event when we do not know it (or it does not fit)."""
    handler = _FIELDS.get(field)
    if handler is None or not isinstance(value, dict):
        return _raw(field, value)
    context = _Context(now or utcnow(), previous_limit, violation)
    try:
        return handler(value, context)
    except ValidationError as error:
        reshaped = {str(e["loc"][0]) for e in error.errors() if e["loc"]}
    # A part Meta reshaped: say what the rest (the event ...) says; the payload is shown as sent.
    try:
        notice = handler({k: v for k, v in value.items() if k not in reshaped}, context)
    except ValidationError:
        return _raw(field, value)
    return NoticeText(notice.severity, notice.text, notice.detail, known=False)
