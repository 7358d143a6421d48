"""Meta's Graph API error shapes and codes, as the sandbox answers them.

One exception type, ``GraphError``, carries everything a Graph error response needs; the
HTTP status for each code follows Meta's error-code reference (most are 400, a missing
template is 404, an invalid token 401, "service unavailable" 503).  The same table gives the
``title`` used in ``errors[]`` of failed status webhooks.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

ERROR_DOCS_URL = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"


@dataclass(frozen=True)
class ErrorSpec:
    """How Meta reports one error code: HTTP status, exception type and title."""

    http_status: int
    title: str
    type: str = "OAuthException"


# Titles are Meta's own wording (error-code reference); statuses from the same table.
CATALOG: dict[int, ErrorSpec] = {
    1: ErrorSpec(500, "An unknown error occurred"),
    2: ErrorSpec(503, "Service temporarily unavailable"),
    4: ErrorSpec(400, "Application request limit reached"),
    100: ErrorSpec(400, "Invalid parameter"),
    190: ErrorSpec(401, "Invalid OAuth access token - Cannot parse access token"),
    2500: ErrorSpec(400, "Unknown path components", "OAuthException"),
    130429: ErrorSpec(400, "Rate limit hit"),
    131000: ErrorSpec(500, "Something went wrong"),
    131008: ErrorSpec(400, "Required parameter is missing"),
    131009: ErrorSpec(400, "Parameter value is not valid"),
    131016: ErrorSpec(503, "Service unavailable"),
    131020: ErrorSpec(400, "Bad Group"),
    131021: ErrorSpec(400, "Recipient cannot be sender"),
    131026: ErrorSpec(400, "Message undeliverable"),
    131041: ErrorSpec(400, "Group unknown"),
    131047: ErrorSpec(400, "Re-engagement message"),
    131051: ErrorSpec(400, "Unsupported message type"),
    131053: ErrorSpec(400, "Media upload error"),
    131056: ErrorSpec(400, "(Business Account, Consumer Account) pair rate limit hit"),
    131062: ErrorSpec(400, "Business-scoped User ID recipients are not supported for this message"),
    # Groups API (developers.facebook.com/documentation/business-messaging/whatsapp/groups/error-codes/)
    131202: ErrorSpec(400, "Duplicate participant"),
    131204: ErrorSpec(400, "Participant overlimit"),
    131212: ErrorSpec(400, "Participant is not a part of the group."),
    131215: ErrorSpec(400, "This phone number is not eligible to access Groups APIs"),
    132000: ErrorSpec(400, "Number of parameters does not match the expected number of params"),
    132001: ErrorSpec(404, "Template name does not exist in the translation"),
    132012: ErrorSpec(400, "Parameter format does not match format in the created template"),
    132015: ErrorSpec(400, "Template is Paused"),
    132016: ErrorSpec(400, "Template is Disabled"),
}

# Codes whose message Meta does not prefix with "(#code)".
_UNPREFIXED = {190}


def spec_for(code: int) -> ErrorSpec:
    """The catalogue entry for ``code``; unknown codes default to a 400 OAuthException."""
    return CATALOG.get(code) or ErrorSpec(400, "Error")


def fbtrace_id() -> str:
    """An opaque trace id like Meta's (``AXsgnV2Cm3ZMGF3dF_cfYIn``)."""
    return secrets.token_urlsafe(16)


class GraphError(Exception):
    """An error the sandbox answers in Meta's exact shape.

    ``message`` defaults to the code's title (prefixed ``(#code)`` as Meta does);
    ``details`` lands in ``error_data.details`` and should name the offending field.
    """

    def __init__(
        self,
        code: int,
        details: str | None = None,
        *,
        message: str | None = None,
        http_status: int | None = None,
        subcode: int | None = None,
        type_: str | None = None,
    ) -> None:
        spec = spec_for(code)
        self.code = code
        self.details = details
        self.title = spec.title
        if message is None:
            message = spec.title if code in _UNPREFIXED else f"(#{code}) {spec.title}"
        self.message = message
        self.http_status = http_status or spec.http_status
        self.subcode = subcode
        self.type = type_ or spec.type
        super().__init__(f"{code}: {message} ({details})")

    def body(self) -> dict[str, Any]:
        """``{"error": {...}}`` exactly as graph.facebook.com returns it."""
        error: dict[str, Any] = {"message": self.message, "type": self.type, "code": self.code}
        if self.details is not None:
            error["error_data"] = {"messaging_product": "whatsapp", "details": self.details}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        error["fbtrace_id"] = fbtrace_id()
        return {"error": error}

    def webhook_error(self) -> dict[str, Any]:
        """The ``errors[]`` item of a failed status webhook for this error."""
        return webhook_error(self.code, self.details or self.title)


def webhook_error(code: int, details: str) -> dict[str, Any]:
    """``{code, title, message, error_data: {details}, href}`` as in failed status webhooks."""
    title = spec_for(code).title
    return {
        "code": code,
        "title": title,
        "message": title,
        "error_data": {"details": details},
        "href": ERROR_DOCS_URL,
    }


def invalid_param(details: str, *, code: int = 100, message: str | None = None) -> GraphError:
    """A 400 for a bad or missing parameter; ``details`` names the field."""
    return GraphError(code, details, message=message)


def unknown_object(object_id: str, method: str) -> GraphError:
    """Meta's answer for an id that does not exist or that the token may not see."""
    return GraphError(
        100,
        message=(
            f"Unsupported {method.lower()} request. Object with ID '{object_id}' does not exist, "
            "cannot be loaded due to missing permissions, or does not support this operation. "
            "Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
        ),
        subcode=33,
        type_="GraphMethodException",
    )
