"""The Graph API error hierarchy and what to do with each error code.

Meta reports the same error synchronously (``{"error": {...}}`` with an HTTP status) or later in a
``failed`` status webhook (``errors[]``), so both paths end in :func:`error_for`, which picks the
class, the retry policy, the sentence shown to agents and what the error concerns (the message, the
customer, or the number; whether it stops the number) from :data:`ERROR_RULES`. Logic is keyed on
``code`` (see WHATSAPP.md); ``details`` is only shown, never matched, because Meta rewords it.

The classes live in ``error_classes.py`` and the table in ``error_table.py``; both are re-exported
here, so callers import from this module only. Nothing here stores the access token; ``str()`` and
``repr()`` of every error are safe to log.
"""

from __future__ import annotations

import json
from typing import Any

from app.whatsapp.error_classes import (
    MAX_BACKOFF_SECONDS,
    AccountError,
    AuthError,
    CallingError,
    Concern,
    FlowError,
    GraphConnectionError,
    GraphError,
    GraphPermissionError,
    GraphTimeout,
    GroupError,
    MediaChecksumMismatch,
    MediaError,
    MediaTooLarge,
    MediaUrlExpired,
    ParameterError,
    RateLimitError,
    RecipientError,
    RecipientRateLimitError,
    TemplateError,
    TransientError,
    UnknownError,
    WindowClosedError,
)
from app.whatsapp.error_classes import describe as _describe
from app.whatsapp.error_table import (
    ERROR_RULES,
    HTTP_STATUS_RULES,
    RANGE_RULES,
    SERVER_ERROR,
    UNKNOWN,
    ErrorRule,
)

__all__ = [
    "ERROR_RULES", "MAX_BACKOFF_SECONDS", "AccountError", "AuthError", "CallingError", "Concern", "ErrorRule",
    "FlowError", "GraphConnectionError", "GraphError", "GraphPermissionError", "GraphTimeout", "GroupError",
    "MediaChecksumMismatch", "MediaError", "MediaTooLarge", "MediaUrlExpired", "ParameterError", "RateLimitError",
    "RecipientError", "RecipientRateLimitError", "TemplateError", "TransientError", "UnknownError",
    "WindowClosedError", "error_for", "error_from_code", "error_from_response", "rule_for_code",
]


def rule_for_code(code: int | None, http_status: int | None = None) -> ErrorRule:
    """The rule for ``code``; unknown codes are transient on 5xx and permanent otherwise."""
    if code is not None:
        if code in ERROR_RULES:
            return ERROR_RULES[code]
        for codes, rule in RANGE_RULES:
            if code in codes:
                return rule
    if http_status is not None and http_status >= 500:
        return SERVER_ERROR
    if http_status in HTTP_STATUS_RULES:
        return HTTP_STATUS_RULES[http_status]
    return UNKNOWN


def error_for(
    code: int | None,
    title: str | None = None,
    details: str | None = None,
    *,
    http_status: int | None = None,
    subcode: int | None = None,
    fbtrace_id: str | None = None,
    error_type: str | None = None,
) -> GraphError:
    """Build the right :class:`GraphError` subclass for a code, keeping Meta's words."""
    rule = rule_for_code(code, http_status)
    title = title or ""
    return rule.error_class(
        title,
        code=code,
        subcode=subcode,
        details=details,
        fbtrace_id=fbtrace_id,
        http_status=http_status,
        error_type=error_type,
        retryable=rule.retryable,
        retry_after=rule.retry_after,
        max_retries=rule.max_retries,
        agent_message=rule.agent_message.format(detail=_describe(title, details)),
        concerns=rule.concerns,
        stops_number=rule.stops_number,
        opts_out_marketing=rule.opts_out_marketing,
    )


def error_from_code(code: int | None, title: str | None = None, details: str | None = None) -> GraphError:
    """The error for one entry of a webhook's ``errors[]`` (failed status or inbound message)."""
    return error_for(_as_int(code), title, details)


def error_from_response(http_status: int, body: dict[str, Any] | bytes | str | None) -> GraphError:
    """The error for a non-2xx Graph answer; ``body`` may be JSON bytes, a dict, or junk."""
    payload = _load_json(body)
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        # Proxies and load balancers answer with HTML or nothing: keep a short excerpt to show.
        excerpt = _excerpt(body)
        return error_for(None, f"HTTP {http_status}", excerpt, http_status=http_status)
    raw_data = error.get("error_data")
    error_data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
    details = error_data.get("details") or error.get("error_user_msg")
    return error_for(
        _as_int(error.get("code")),
        _as_str(error.get("message")),
        _as_str(details),
        http_status=http_status,
        subcode=_as_int(error.get("error_subcode")),
        fbtrace_id=_as_str(error.get("fbtrace_id")),
        error_type=_as_str(error.get("type")),
    )


def _load_json(body: dict[str, Any] | bytes | str | None) -> Any:
    if body is None or isinstance(body, dict):
        return body
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _excerpt(body: object, limit: int = 200) -> str | None:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not body or not isinstance(body, str):
        return None
    text = " ".join(body.split())
    return text[:limit] + ("…" if len(text) > limit else "")


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _as_str(value: object) -> str | None:
    return None if value is None else str(value)
