"""OpenAPI shapes of the WhatsApp numbers API answers (``AccountService.view``, the connection test,
Meta's business profile). The handlers keep returning those dicts; see app/api_shapes.py."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from app.api_shapes import ApiShape, page_of


class SendingStoppedShape(ApiShape):
    """Meta restricted or locked the number (368 / 131031): its sends are held until an admin resumes them."""

    code: int | None = Field(None, examples=[368])
    title: str = Field("", description="Meta's words")
    detail: str = ""
    at: str | None = Field(None, description="When sending stopped")


class AccountHealthShape(ApiShape):
    token_state: str | None = Field(None, examples=["ok"])
    last_webhook_at: str | None = None
    last_send_error: dict[str, Any] | None = None
    quality_rating: str | None = None
    messaging_limit_tier: str | None = None
    verified_name: str | None = None
    name_status: str | None = None
    number_status: str | None = None
    throughput_level: str | None = None
    last_checked_at: str | None = None
    last_check_error: str | None = None
    sending_stopped: SendingStoppedShape | None = Field(
        None, description="Set while sends are held because Meta restricted the number; null otherwise "
                          "(POST /api/v1/accounts/{id}/resume-sending clears it)")


class AccountShape(ApiShape):
    """A connected number: never a secret, only the last 4 characters of each."""

    id: str
    name: str | None = None
    phone_number_id: str
    waba_id: str | None = None
    display_phone_number: str | None = None
    mps: int | None = Field(None, description="Messages per second we send at")
    enabled: bool
    webhook_url: str | None = Field(None, description="Paste into Meta's app: where Meta posts this number's events")
    verify_token: str | None = None
    access_token_last4: str | None = None
    app_secret_last4: str | None = None
    sandbox: bool | None = None
    health: AccountHealthShape
    created_at: str | None = None
    updated_at: str | None = None


class ConnectionCheckShape(ApiShape):
    ok: bool
    message: str = Field("", description="The outcome in words (Meta's error explained when it failed)")
    phone_number: dict[str, Any] | None = Field(None, description="What Meta knows of the number")
    error: dict[str, Any] | None = None


class BusinessProfileShape(ApiShape):
    """Meta's WhatsApp business profile of the number."""

    about: str | None = None
    address: str | None = None
    description: str | None = None
    email: str | None = None
    vertical: str | None = None
    websites: list[str] | None = None
    profile_picture_url: str | None = None


AccountPage = page_of(AccountShape, "AccountPage")
