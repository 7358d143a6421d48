"""Typed values of the non-message webhook fields the product reacts to.

Templates (status, quality, category), the phone number (quality, display name) and account
updates. Like every webhook model they keep unknown fields, so storing
``model_dump(by_alias=True, exclude_unset=True)`` loses nothing.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

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


class PhoneNumberNameUpdate(WebhookModel):
    """``phone_number_name_update``: Meta's decision on a requested display name."""

    display_phone_number: str | None = None
    decision: str | None = None
    requested_verified_name: str | None = None
    rejection_reason: str | None = None


class AccountUpdate(WebhookModel):
    """``account_update``: bans, restrictions, violations, partner and pricing events."""

    event: str | None = None
    phone_number: str | None = None
    ban_info: dict[str, Any] | None = None
    restriction_info: list[dict[str, Any]] | None = None
    violation_info: dict[str, Any] | None = None
    waba_info: dict[str, Any] | None = None
