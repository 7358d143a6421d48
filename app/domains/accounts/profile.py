"""A number's WhatsApp business profile: read and edit it through the Graph API.

Fields are checked against Meta's limits before the call, so an admin sees which field is wrong
next to it instead of Meta's generic (#100). The photo is checked by its bytes (not its name or
the browser's content type), its size and its dimensions, then uploaded through the GraphClient.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError

from app.domains.accounts.models import WhatsAppAccount
from app.domains.accounts.services import AccountService, describe_graph_error
from app.errors import AppError, IntegrationError, PayloadTooLarge, ValidationFailed
from app.whatsapp.errors import GraphError, ParameterError

PHOTO_MAX_BYTES = 5 * 1024 * 1024
PHOTO_MIN_SIDE = 192
PHOTO_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png"}
VERTICALS = (
    "UNDEFINED", "OTHER", "AUTO", "BEAUTY", "APPAREL", "EDU", "ENTERTAIN", "EVENT_PLAN", "FINANCE", "GROCERY",
    "GOVT", "HOTEL", "HEALTH", "NONPROFIT", "PROF_SERVICES", "RETAIL", "TRAVEL", "RESTAURANT", "NOT_A_BIZ",
    "ALCOHOL", "ONLINE_GAMBLING", "PHYSICAL_GAMBLING", "OTC_DRUGS",
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LIMITS = {"about": 139, "address": 256, "description": 512, "email": 128}


@dataclass(frozen=True)
class ProfileChanges:
    """The profile fields an admin edits; None leaves a field as Meta has it."""

    about: str | None = None
    address: str | None = None
    description: str | None = None
    email: str | None = None
    websites: list[str] | None = None
    vertical: str | None = None

    def validate(self) -> dict[str, Any]:
        """The Graph body for these changes, or ValidationFailed naming each wrong field."""
        errors: dict[str, str] = {}
        body: dict[str, Any] = {}
        for field, limit in _LIMITS.items():
            value = getattr(self, field)
            if value is None:
                continue
            value = value.strip()
            if len(value) > limit:
                errors[field] = f"At most {limit} characters (this has {len(value)})."
            body[field] = value
        if self.about is not None and not self.about.strip():
            errors["about"] = "WhatsApp needs a non-empty About text (1 to 139 characters)."
        if body.get("email") and not _EMAIL.match(body["email"]):
            errors["email"] = "Enter an email address like hello@example.com."
        if self.websites is not None:
            sites = [site.strip() for site in self.websites if site and site.strip()]
            if len(sites) > 2:
                errors["websites"] = "At most 2 websites."
            for index, site in enumerate(sites):
                if not site.startswith(("http://", "https://")) or len(site) > 256:
                    errors[f"websites[{index}]"] = "An http:// or https:// address of at most 256 characters."
            body["websites"] = sites
        if self.vertical is not None:
            if self.vertical not in VERTICALS:
                errors["vertical"] = "Pick one of the listed business categories."
            body["vertical"] = self.vertical
        if errors:
            raise ValidationFailed("Check the highlighted fields.", details=errors)
        return body


def check_photo(data: bytes) -> str:
    """The photo's MIME type when WhatsApp accepts it as a profile photo; otherwise a clear 4xx."""
    if len(data) > PHOTO_MAX_BYTES:
        raise PayloadTooLarge(
            f"The photo is {len(data) / 1024 / 1024:.1f} MB; WhatsApp allows at most 5 MB.",
            error_code="PHOTO_TOO_LARGE", details={"photo": "At most 5 MB."})
    if not data:
        raise ValidationFailed("The photo file is empty.", details={"photo": "Choose a JPEG or PNG file."})
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind, (width, height) = image.format, image.size
    except (UnidentifiedImageError, OSError, ValueError):
        kind, width, height = None, 0, 0
    if kind not in PHOTO_TYPES:
        raise ValidationFailed("WhatsApp profile photos must be JPEG or PNG images.", error_code="PHOTO_TYPE",
                               details={"photo": "Only JPEG or PNG images."})
    if min(width, height) < PHOTO_MIN_SIDE:
        raise ValidationFailed(
            f"The photo is {width}×{height}; WhatsApp needs at least {PHOTO_MIN_SIDE}×{PHOTO_MIN_SIDE} pixels "
            "(640×640 looks best).", error_code="PHOTO_TOO_SMALL",
            details={"photo": f"At least {PHOTO_MIN_SIDE}×{PHOTO_MIN_SIDE} pixels."})
    return PHOTO_TYPES[kind]


def graph_failure(error: GraphError, graph_api_url: str) -> AppError:
    """A Graph error as our error: Meta's rejection of a value is the admin's to fix (422), the rest 502."""
    described = describe_graph_error(error, graph_api_url)
    if isinstance(error, ParameterError):
        return ValidationFailed(described["message"], error_code="META_REJECTED", details=described)
    return IntegrationError(described["message"], error_code="META_ERROR", details=described)


class BusinessProfiles:
    """Reads and edits business profiles with each number's own token."""

    def __init__(self, accounts: AccountService) -> None:
        self.accounts = accounts

    async def get(self, account: WhatsAppAccount) -> dict[str, Any]:
        try:
            profile = await self.accounts.graph(account).get_business_profile(account.phone_number_id)
        except GraphError as error:
            raise graph_failure(error, self.accounts.graph_api_url) from None
        profile.pop("messaging_product", None)
        return profile

    async def update(self, account: WhatsAppAccount, changes: ProfileChanges,
                     photo: tuple[bytes, str] | None = None) -> dict[str, Any]:
        """Validate, upload the photo (bytes, file name) if any, save the fields; returns the new profile."""
        body = changes.validate()
        graph = self.accounts.graph(account)
        try:
            if photo is not None:
                data, filename = photo
                mime = check_photo(data)
                # Meta takes a handle from its upload API; the media id of this upload is that handle here.
                body["profile_picture_handle"] = await graph.upload_media(
                    account.phone_number_id, data, mime, filename or "profile.jpg")
            if body:
                await graph.update_business_profile(account.phone_number_id, body)
        except GraphError as error:
            raise graph_failure(error, self.accounts.graph_api_url) from None
        return await self.get(account)
