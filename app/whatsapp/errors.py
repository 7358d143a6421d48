"""The Graph API error hierarchy and the table saying what to do with each error code.

Meta reports the same error synchronously (``{"error": {...}}`` with an HTTP status) or later in a
``failed`` status webhook (``errors[]``), so both paths end in :func:`error_for`, which picks the
class, the retry policy and the sentence shown to agents from :data:`ERROR_RULES`. Logic is keyed
on ``code`` (see WHATSAPP.md); ``details`` is only shown, never matched, because Meta rewords it.

Nothing here stores the access token; ``str()`` and ``repr()`` of every error are safe to log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_BACKOFF_SECONDS = 3600.0


class GraphError(Exception):
    """An error from (or on the way to) the WhatsApp Cloud API.

    ``retryable`` says whether the send worker should try again by itself; ``retry_after`` is the
    first suggested delay in seconds (see :meth:`backoff` for later attempts); ``agent_message`` is
    a plain sentence for the inbox UI; ``title`` and ``details`` are Meta's own words.
    """

    retryable: bool = False
    default_retry_after: float | None = None
    default_agent_message = "WhatsApp rejected the request: {detail}"

    def __init__(
        self,
        title: str = "",
        *,
        code: int | None = None,
        subcode: int | None = None,
        details: str | None = None,
        fbtrace_id: str | None = None,
        http_status: int | None = None,
        error_type: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        max_retries: int | None = None,
        agent_message: str | None = None,
    ) -> None:
        self.title = title
        self.code = code
        self.subcode = subcode
        self.details = details
        self.fbtrace_id = fbtrace_id
        self.http_status = http_status
        self.error_type = error_type
        self.retryable = type(self).retryable if retryable is None else retryable
        self.retry_after = type(self).default_retry_after if retry_after is None else retry_after
        self.max_retries = max_retries if max_retries is not None else (5 if self.retryable else 0)
        self.agent_message = agent_message or self.default_agent_message.format(
            detail=_describe(title, details)
        )
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f" (HTTP {self.http_status})" if self.http_status else ""
        code = f" {self.code}" if self.code is not None else ""
        detail = f": {self.details}" if self.details and self.details != self.title else ""
        return f"{type(self).__name__}{code}{where} {self.title or 'no message'}{detail}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, http_status={self.http_status!r}, title={self.title!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # arq pickles job exceptions; Exception's default pickling would call cls(*args) and lose
        # every keyword attribute, so rebuild from the full attribute set instead.
        return (_rebuild, (type(self), self.to_dict()))

    def backoff(self, attempt: int) -> float | None:
        """Suggested delay before retry number ``attempt`` (1-based); None when not retryable.

        Doubles from ``retry_after`` each attempt; the per-recipient limit (131056) grows as 4^n,
        which is what Meta recommends. The caller adds jitter.
        """
        if not self.retryable or self.retry_after is None:
            return None
        factor = 4.0 if isinstance(self, RecipientRateLimitError) else 2.0
        return min(self.retry_after * factor ** max(attempt - 1, 0), MAX_BACKOFF_SECONDS)

    def to_dict(self) -> dict[str, Any]:
        """Every attribute, JSON-serialisable: what the outbox stores for a failed message."""
        return {
            "title": self.title,
            "code": self.code,
            "subcode": self.subcode,
            "details": self.details,
            "fbtrace_id": self.fbtrace_id,
            "http_status": self.http_status,
            "error_type": self.error_type,
            "retryable": self.retryable,
            "retry_after": self.retry_after,
            "max_retries": self.max_retries,
            "agent_message": self.agent_message,
        }


def _rebuild(cls: type[GraphError], state: dict[str, Any]) -> GraphError:
    return cls(state.pop("title"), **state)


def _describe(title: str | None, details: str | None) -> str:
    if title and details and details != title:
        return f"{title} ({details})"
    return details or title or "no reason given"


class AuthError(GraphError):
    """The access token is invalid or expired: the account is unhealthy until an admin fixes it."""


class GraphPermissionError(GraphError):
    """The token lacks a permission for this call or asset: the account is unhealthy."""


class RateLimitError(GraphError):
    """Too many calls or messages: slow down and retry later (unless ``retryable`` is False)."""

    retryable = True


class RecipientRateLimitError(RateLimitError):
    """Too many messages to one recipient (131056); other recipients are unaffected."""


class RecipientError(GraphError):
    """This recipient cannot receive this message; retrying will not help."""


class WindowClosedError(RecipientError):
    """The 24-hour customer service window is closed (131047): only templates may be sent."""


class TemplateError(GraphError):
    """The template is missing, unapproved, paused, disabled, or its parameters do not match."""


class MediaError(GraphError):
    """Media could not be uploaded, downloaded or verified."""


class MediaTooLarge(MediaError):
    """A download went past the size cap for its media kind; we stopped reading."""

    default_agent_message = "The media file is larger than WhatsApp allows for its kind ({detail})."


class MediaChecksumMismatch(MediaError):
    """A downloaded file's SHA-256 differs from the one Meta announced."""

    retryable = True
    default_retry_after = 5.0
    default_agent_message = "The downloaded media did not match WhatsApp's checksum; it will be fetched again."


class MediaUrlExpired(MediaError):
    """The media download URL answered 404; retrieve a fresh URL (they live 5 minutes)."""

    retryable = True
    default_retry_after = 1.0
    default_agent_message = "The media link had expired; a fresh one will be requested."


class ParameterError(GraphError):
    """The request body is invalid; Meta's ``details`` says which part."""

    default_agent_message = "WhatsApp rejected the message's content: {detail}"


class AccountError(GraphError):
    """The business account or number cannot send (locked, unpaid, unregistered, restricted)."""


class TransientError(GraphError):
    """A temporary failure on Meta's side or on the way there; retry with backoff."""

    retryable = True
    default_retry_after = 5.0
    default_agent_message = "WhatsApp had a temporary problem ({detail}); we will retry automatically."


class GraphTimeout(TransientError):
    """No answer in time. A send may still have been accepted, so a retry can duplicate it."""

    default_retry_after = 2.0
    default_agent_message = "WhatsApp did not answer in time; we will retry automatically."


class GraphConnectionError(TransientError):
    """Could not connect to, or lost the connection with, the Graph API."""

    default_retry_after = 2.0
    default_agent_message = "Could not reach WhatsApp; we will retry automatically."


class UnknownError(GraphError):
    """A code our table does not know, on a non-5xx answer: treated as permanent."""


@dataclass(frozen=True)
class ErrorRule:
    """What to do with one Meta error code."""

    error_class: type[GraphError]
    retryable: bool
    retry_after: float | None
    max_retries: int
    agent_message: str  # may contain {detail}: Meta's message and details


def _rule(
    error_class: type[GraphError], agent_message: str, retry_after: float | None = None, max_retries: int = 0
) -> ErrorRule:
    """A rule; giving a delay makes it retryable."""
    return ErrorRule(error_class, retry_after is not None, retry_after, max_retries, agent_message)


_NO_PERMISSION = _rule(
    GraphPermissionError,
    "This WhatsApp account is missing a permission needed for this action; an admin must grant it.",
)
_APP_RATE_LIMIT = _rule(
    RateLimitError,
    "Too many requests to WhatsApp for this account right now; sending slows down and resumes by itself.",
    60.0, 8,
)
_TEMPLATE = "This template {}; choose another template."

# (codes, rule). Codes 200-299 are permissions too; rule_for_code() handles the range.
_RULE_TABLE: list[tuple[tuple[int, ...], ErrorRule]] = [
    ((0, 190), _rule(AuthError, "WhatsApp no longer accepts this account's access token; an admin must "
                                "enter a new one. Messages stay queued until then.")),
    ((3, 10, 131005), _NO_PERMISSION),
    ((4, 80007), _APP_RATE_LIMIT),
    ((1,), _rule(TransientError, "WhatsApp reported an unknown error; the message will be tried once more.", 2.0, 1)),
    ((2, 131016), _rule(TransientError, "WhatsApp is temporarily unavailable; the message will be retried "
                                        "automatically.", 15.0, 5)),
    ((131057,), _rule(TransientError, "This number is in a WhatsApp throughput upgrade; the message will be "
                                      "retried shortly.", 60.0, 5)),
    ((131000,), _rule(TransientError, "WhatsApp hit an unexpected error; the message will be retried a few "
                                      "times.", 5.0, 3)),
    ((130429,), _rule(RateLimitError, "This number is sending faster than WhatsApp allows; the message will be "
                                      "retried in a moment.", 1.0, 8)),
    ((131056,), _rule(RecipientRateLimitError, "Too many messages to this customer in a short time; this one "
                                               "will be retried shortly.", 4.0, 5)),
    ((131048,), _rule(RateLimitError, "WhatsApp limited this number because customers flagged messages as spam; "
                                      "sending slows down. Check the number's quality rating.", 600.0, 3)),
    # Retrying within 24 h is pointless: not retryable, but the 24 h are kept as a hint.
    ((131049,), ErrorRule(RateLimitError, False, 86400.0, 0, "WhatsApp held back this marketing message to avoid "
                          "overwhelming the customer; do not resend it within 24 hours.")),
    ((131050,), _rule(RecipientError, "The customer has stopped marketing messages from this business; do not "
                                      "send them marketing templates.")),
    ((100, 131008, 131009, 135000), _rule(ParameterError, "WhatsApp rejected the message's content: {detail}")),
    ((131021,), _rule(RecipientError, "The recipient is this business's own number; a number cannot message itself.")),
    ((131026,), _rule(RecipientError, "The message could not be delivered: the customer may not use WhatsApp, may "
                                      "have an old app, or has not accepted WhatsApp's latest terms.")),
    ((131031, 368), _rule(AccountError, "WhatsApp has locked or restricted this business account for a policy "
                                        "reason; sending is stopped until an admin resolves it.")),
    ((131042,), _rule(AccountError, "There is a payment problem on the WhatsApp Business account; fix billing "
                                    "before sending again.")),
    ((131045, 133010), _rule(AccountError, "This phone number is not registered with WhatsApp's Cloud API; an "
                                           "admin must register it.")),
    ((131047,), _rule(WindowClosedError, "More than 24 hours have passed since the customer last wrote; send a "
                                         "template instead.")),
    ((131051,), _rule(ParameterError, "WhatsApp does not support this message type.")),
    ((131052,), _rule(MediaError, "The customer's media could not be downloaded; ask them to send it again.")),
    ((131053,), _rule(MediaError, "The media could not be uploaded to WhatsApp; check its file type and size.")),
    # The experiment concerns the customer's number, so it is a recipient matter ...
    ((130472,), _rule(RecipientError, "The customer's number is part of a WhatsApp marketing experiment, so this "
                                      "marketing message was not delivered.")),
    # ... while a country restriction limits what this business may send: an account matter.
    ((130497,), _rule(AccountError, "This business may not send this kind of message to customers in the "
                                    "recipient's country.")),
    ((132000,), _rule(TemplateError, "The number of template values does not match the template's "
                                     "placeholders: {detail}")),
    ((132012,), _rule(TemplateError, "A template value has the wrong format: {detail}")),
    ((132001,), _rule(TemplateError, "This template does not exist or is not approved in this language.")),
    ((132005,), _rule(TemplateError, _TEMPLATE.format("is too long once its values are filled in"))),
    ((132007,), _rule(TemplateError, _TEMPLATE.format("breaks WhatsApp's content policy"))),
    ((132015,), _rule(TemplateError, _TEMPLATE.format("is paused because of low quality"))),
    ((132016,), _rule(TemplateError, _TEMPLATE.format("is disabled because of low quality"))),
]
ERROR_RULES: dict[int, ErrorRule] = {code: rule for codes, rule in _RULE_TABLE for code in codes}

_SERVER_ERROR = _rule(TransientError, "WhatsApp had a server problem ({detail}); we will retry automatically.", 5.0, 5)
_HTTP_STATUS_RULES: dict[int, ErrorRule] = {
    401: ERROR_RULES[190],
    403: _NO_PERMISSION,
    429: _APP_RATE_LIMIT,
}
_UNKNOWN = ErrorRule(UnknownError, False, None, 0, GraphError.default_agent_message)


def rule_for_code(code: int | None, http_status: int | None = None) -> ErrorRule:
    """The rule for ``code``; unknown codes are transient on 5xx and permanent otherwise."""
    if code is not None:
        if code in ERROR_RULES:
            return ERROR_RULES[code]
        if 200 <= code <= 299:
            return _NO_PERMISSION
    if http_status is not None and http_status >= 500:
        return _SERVER_ERROR
    if http_status in _HTTP_STATUS_RULES:
        return _HTTP_STATUS_RULES[http_status]
    return _UNKNOWN


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
