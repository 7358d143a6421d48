"""The sandbox's in-memory records: numbers, media, sent messages and fault settings.

Plain dataclasses; the behaviour lives in ``state.py``.  A ``Number`` carries its own
runtime counters (send window, per-recipient buckets, service windows) so the send path
touches one object and a few dicts, never a scan.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

DEFAULT_DELIVERED_AFTER_MS = 200
DEFAULT_READ_AFTER_MS = 1000
SERVICE_WINDOW_S = 24 * 3600
QUALITY_RATINGS = frozenset({"GREEN", "YELLOW", "RED", "NA", "UNKNOWN"})
LIMIT_TIERS = frozenset({"TIER_50", "TIER_250", "TIER_1K", "TIER_2K", "TIER_10K", "TIER_100K", "TIER_UNLIMITED"})
PROFILE_FIELDS = ("about", "address", "description", "email", "profile_picture_url", "websites", "vertical")


def digits_only(value: str) -> str:
    """``+1 555-078-3881`` -> ``15550783881`` (webhook metadata carries digits only)."""
    return re.sub(r"\D", "", value)


@dataclass
class Number:
    """A registered business phone number and its runtime counters."""

    phone_number_id: str
    waba_id: str
    display_phone_number: str
    access_token: str
    app_secret: str
    webhook_url: str | None
    mps: int = 80
    delivered_after_ms: int | None = DEFAULT_DELIVERED_AFTER_MS
    read_after_ms: int | None = DEFAULT_READ_AFTER_MS
    verified_name: str = "Sandbox Business"
    quality_rating: str = "GREEN"
    messaging_limit_tier: str = "TIER_1K"
    recipient_burst: int = 45
    recipient_interval_s: float = 6.0
    groups_enabled: bool = True
    profile: dict[str, Any] = field(default_factory=lambda: {
        "about": "", "address": "", "description": "", "email": "",
        "profile_picture_url": "", "websites": [], "vertical": "UNDEFINED",
    })
    # Runtime: accept times in the last second (130429), per-recipient token buckets
    # [tokens, updated_at] (131056), last inbound per customer (24-h window) and last inbound
    # from a click-to-WhatsApp ad (72-h free entry point), keyed by ``Customer.key`` (the phone
    # when known, else the BSUID); the last wamid sent to each (interactive replies quote it).
    sends: deque[float] = field(default_factory=deque)
    pairs: dict[str, list[float]] = field(default_factory=dict)
    last_inbound: dict[str, float] = field(default_factory=dict)
    entry_points: dict[str, float] = field(default_factory=dict)
    last_sent: dict[str, str] = field(default_factory=dict)

    @property
    def display_digits(self) -> str:
        return digits_only(self.display_phone_number)

    def view(self) -> dict[str, Any]:
        """The registration as the control API echoes it; secrets as their last 4 characters only."""
        return {
            "phone_number_id": self.phone_number_id, "waba_id": self.waba_id,
            "display_phone_number": self.display_phone_number, "access_token_last4": self.access_token[-4:],
            "app_secret_last4": self.app_secret[-4:], "webhook_url": self.webhook_url, "mps": self.mps,
            "delivered_after_ms": self.delivered_after_ms, "read_after_ms": self.read_after_ms,
            "verified_name": self.verified_name, "quality_rating": self.quality_rating,
            "messaging_limit_tier": self.messaging_limit_tier, "recipient_burst": self.recipient_burst,
            "recipient_interval_s": self.recipient_interval_s, "groups_enabled": self.groups_enabled,
        }

    def graph_fields(self) -> dict[str, Any]:
        """Every field ``GET /{phone_number_id}`` can return."""
        return {
            "verified_name": self.verified_name,
            "display_phone_number": self.display_phone_number,
            "quality_rating": self.quality_rating,
            "messaging_limit_tier": self.messaging_limit_tier,
            # Meta reports throughput as a level: STANDARD is 80 mps, HIGH the 1,000 upgrade.
            "throughput": {"level": "HIGH" if self.mps > 80 else "STANDARD"},
            "status": "CONNECTED",
            "code_verification_status": "VERIFIED",
            "name_status": "APPROVED",
            "platform_type": "CLOUD_API",
            "is_official_business_account": False,
            "id": self.phone_number_id,
        }


@dataclass(slots=True)
class MediaItem:
    """Bytes stored under a media id (uploaded, or generated for an inbound message)."""

    id: str
    phone_number_id: str
    waba_id: str
    data: bytes
    mime_type: str
    sha256_hex: str
    sha256_b64: str
    created_at: float
    expires_at: float
    filename: str | None = None

    @property
    def file_size(self) -> int:
        return len(self.data)


@dataclass(slots=True)
class SentRecord:
    """One accepted send, as ``GET /sandbox/control/sent`` lists it.

    ``to`` is the body's ``to`` (a phone, or the group id), None for a send by ``recipient``
    (BSUID); ``user_id`` is the recipient's BSUID (None for groups).
    """

    phone_number_id: str
    wamid: str
    to: str | None
    type: str
    body: Any
    accepted_at: float
    recipient: str | None = None
    recipient_type: str = "individual"
    user_id: str | None = None

    def view(self) -> dict[str, Any]:
        return {"wamid": self.wamid, "to": self.to, "recipient": self.recipient,
                "recipient_type": self.recipient_type, "user_id": self.user_id, "type": self.type,
                "body": self.body, "accepted_at": self.accepted_at}


@dataclass
class Faults:
    """Injected misbehaviour for graph routes (all numbers, or one)."""

    error_rate: float = 0.0
    http_status: int | None = None
    error_code: int | None = None
    latency_ms: int = 0
    timeout_rate: float = 0.0

    def view(self) -> dict[str, Any]:
        return {"error_rate": self.error_rate, "http_status": self.http_status, "error_code": self.error_code,
                "latency_ms": self.latency_ms, "timeout_rate": self.timeout_rate}
