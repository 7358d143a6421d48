"""Typed values of the non-message webhook fields the product reacts to.

Templates (status, quality, category), the phone number (quality, display name) and account
updates. Like every webhook model they keep unknown fields, so storing
``model_dump(by_alias=True, exclude_unset=True)`` loses nothing.

The account-level news (``account_update``, ``account_alerts``, ``business_capability_update``,
``security``, ``account_review_update``) also have typed parts (restrictions, ban, violation,
alert ...): read them through the properties, which never fail on a shape Meta changed (a part
that does not fit is None / left out; the raw value is kept by the caller anyway).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

TemplateId = int | str  # an integer in Meta's payloads; tolerate the string form


class WebhookModel(BaseModel):
    """Base of every webhook model: unknown fields are kept, never dropped or refused.

    A number where we expect text (an id sent as 12345) is accepted as text rather than failing
    the whole envelope: the raw body is stored anyway, so ingesting it matters more.
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True, coerce_numbers_to_str=True)


class _TemplateRef(WebhookModel):
    message_template_id: TemplateId | None = None
    message_template_name: str | None = None
    message_template_language: str | None = None


class TemplateStatusUpdate(_TemplateRef):
    """``message_template_status_update``: APPROVED, REJECTED, PAUSED, DISABLED ... and why."""

    event: str | None = None
    reason: str | None = None
    message_template_category: str | None = None
    other_info: dict[str, Any] | None = None
    rejection_info: dict[str, Any] | None = None

    @property
    def usable(self) -> bool:
        """Only approved (or reinstated) templates can be sent."""
        return self.event in ("APPROVED", "REINSTATED")


class TemplateQualityUpdate(_TemplateRef):
    """``message_template_quality_update``: GREEN / YELLOW / RED / UNKNOWN."""

    previous_quality_score: str | None = None
    new_quality_score: str | None = None


class TemplateCategoryUpdate(_TemplateRef):
    """``template_category_update``: Meta re-categorised a template (affects pricing)."""

    previous_category: str | None = None
    new_category: str | None = None
    correct_category: str | None = None


class PhoneNumberQualityUpdate(WebhookModel):
    """``phone_number_quality_update``: FLAGGED / UNFLAGGED / UPGRADE / DOWNGRADE and the limit tier."""

    display_phone_number: str | None = None
    event: str | None = None
    current_limit: str | None = None
    old_limit: str | None = None
    max_daily_conversation_per_phone: int | None = None
    max_daily_conversations_per_business: int | str | None = None
    """The portfolio's messaging limit ("TIER_2K"); replaces current_limit / old_limit from 2026."""


class PhoneNumberNameUpdate(WebhookModel):
    """``phone_number_name_update``: Meta's decision on a requested display name."""

    display_phone_number: str | None = None
    decision: str | None = None
    requested_verified_name: str | None = None
    rejection_reason: str | None = None


_Part = TypeVar("_Part", bound=WebhookModel)


def _part(model: type[_Part], raw: Any) -> _Part | None:
    """``raw`` typed as ``model``; None when it is missing or does not fit."""
    if not isinstance(raw, dict):
        return None
    try:
        return model.model_validate(raw)
    except ValidationError:
        return None


class Restriction(WebhookModel):
    """One entry of ``restriction_info``: what the account may not do, until when (epoch seconds)."""

    restriction_type: str | None = None
    """RESTRICTED_BIZ_INITIATED_MESSAGING, RESTRICTED_CUSTOMER_INITIATED_MESSAGING, RESTRICTED_ADD_PHONE_NUMBER_ACTION ..."""
    expiration: int | None = None


class BanInfo(WebhookModel):
    """``ban_info`` of DISABLED_UPDATE."""

    waba_ban_state: str | None = None
    """SCHEDULE_FOR_DISABLE, DISABLE or REINSTATE."""
    waba_ban_date: str | None = None
    """As Meta writes it ("April 17, 2025")."""


class ViolationInfo(WebhookModel):
    violation_type: str | None = None


class VolumeTierInfo(WebhookModel):
    """``volume_tier_info`` of VOLUME_BASED_PRICING_TIER_UPDATE."""

    tier_update_time: int | None = None
    pricing_category: str | None = None
    tier: str | None = None
    """"25000001:50000000": the monthly message volume band."""
    effective_month: str | None = None
    region: str | None = None


class DisconnectionInfo(WebhookModel):
    reason: str | None = None
    initiated_by: str | None = None


class CertificationInfo(WebhookModel):
    """``partner_client_certification_info``: partner-led business verification."""

    client_business_id: str | None = None
    status: str | None = None
    rejection_reasons: list[str] | None = None


class AccountUpdate(WebhookModel):
    """``account_update``: bans, restrictions, violations, partner and pricing events."""

    event: str | None = None
    phone_number: str | None = None
    ban_info: dict[str, Any] | None = None
    restriction_info: list[dict[str, Any]] | None = None
    violation_info: dict[str, Any] | None = None
    waba_info: dict[str, Any] | None = None

    def _extra(self, name: str) -> Any:
        return (self.model_extra or {}).get(name)

    @property
    def restrictions(self) -> list[Restriction]:
        """The restrictions that could be read (an odd entry is left out)."""
        return [r for r in (_part(Restriction, item) for item in self.restriction_info or ()) if r is not None]

    @property
    def ban(self) -> BanInfo | None:
        return _part(BanInfo, self.ban_info)

    @property
    def violation(self) -> ViolationInfo | None:
        return _part(ViolationInfo, self.violation_info)

    @property
    def volume_tier(self) -> VolumeTierInfo | None:
        return _part(VolumeTierInfo, self._extra("volume_tier_info"))

    @property
    def disconnection(self) -> DisconnectionInfo | None:
        return _part(DisconnectionInfo, self._extra("disconnection_info"))

    @property
    def certification(self) -> CertificationInfo | None:
        return _part(CertificationInfo, self._extra("partner_client_certification_info"))

    @property
    def country(self) -> str | None:
        value = self._extra("country")
        return str(value) if isinstance(value, str | int) else None

    @property
    def partner_app_id(self) -> str | None:
        value = (self.waba_info or {}).get("partner_app_id")
        return str(value) if value is not None else None

    @property
    def auth_international_start(self) -> int | None:
        """AUTH_INTL_PRICE_ELIGIBILITY_UPDATE: when the authentication-international rates start."""
        info = self._extra("auth_international_rate_eligibility")
        start = info.get("start_time") if isinstance(info, dict) else None
        return start if isinstance(start, int) else None


class AlertInfo(WebhookModel):
    alert_severity: str | None = None
    """CRITICAL, WARNING or INFORMATIONAL."""
    alert_status: str | None = None
    """ACTIVE or NONE."""
    alert_type: str | None = None
    """INCREASED_CAPABILITIES_ELIGIBILITY_DEFERRED, OBA_APPROVED, PROFILE_PICTURE_LOST ..."""
    alert_description: str | None = None
    """Meta's own sentence, meant for the business."""


class AccountAlert(WebhookModel):
    """``account_alerts``: messaging-limit increase decisions, Official Business Account, profile photo."""

    entity_type: str | None = None
    """BUSINESS, WABA, PHONE_NUMBER ..."""
    entity_id: str | None = None
    alert_info: dict[str, Any] | None = None

    @property
    def alert(self) -> AlertInfo:
        """``alert_info`` (Meta's dashboard test sends the same keys at the top level instead)."""
        return _part(AlertInfo, self.alert_info) or _part(AlertInfo, dict(self.model_extra or {})) or AlertInfo()


class BusinessCapabilityUpdate(WebhookModel):
    """``business_capability_update``: the portfolio's messaging limit and phone number limits."""

    max_daily_conversation_per_phone: int | None = None
    """250, 2000, 10000, 100000, or -1 for unlimited (replaced by the next field from 2026)."""
    max_daily_conversations_per_business: int | str | None = None
    """"TIER_2K" or 2000."""
    max_phone_numbers_per_business: int | None = None
    max_phone_numbers_per_waba: int | None = None


class SecurityUpdate(WebhookModel):
    """``security``: two-step verification PIN changes of a number."""

    display_phone_number: str | None = None
    event: str | None = None
    """PIN_CHANGED, PIN_RESET_REQUEST ..."""


class AccountReviewUpdate(WebhookModel):
    """``account_review_update``: Meta's policy review of the WhatsApp Business account."""

    decision: str | None = None
    """APPROVED, REJECTED, PENDING, DEFERRED."""
