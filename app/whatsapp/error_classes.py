"""The Graph API error hierarchy: what :func:`app.whatsapp.errors.error_for` builds for each code.

Kept apart from the table (``error_table.py``) and the functions that read Meta's answers
(``errors.py``, which re-exports everything here); import from ``app.whatsapp.errors``.

Nothing here stores the access token; ``str()`` and ``repr()`` of every error are safe to log.
"""

from __future__ import annotations

from typing import Any, Literal

MAX_BACKOFF_SECONDS = 3600.0

Concern = Literal["message", "contact", "number"]
"""What an error is about: this message (its content, template, media), the customer it was for,
or the business number / account that sent it (every send from it is affected)."""


class GraphError(Exception):
    """An error from (or on the way to) the WhatsApp Cloud API.

    ``retryable`` says whether the send worker should try again by itself; ``retry_after`` is the
    first suggested delay in seconds (see :meth:`backoff` for later attempts); ``agent_message`` is
    a plain sentence for the inbox UI; ``title`` and ``details`` are Meta's own words.
    ``concerns`` says what the error is about; ``stops_number`` means the number must stop sending
    until an admin acts (its messages stay queued); ``opts_out_marketing`` means the customer has
    stopped marketing messages from this business.
    """

    retryable: bool = False
    default_retry_after: float | None = None
    default_agent_message = "WhatsApp rejected the request: {detail}"
    default_concerns: Concern = "message"

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
        concerns: Concern | None = None,
        stops_number: bool = False,
        opts_out_marketing: bool = False,
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
            detail=describe(title, details)
        )
        self.concerns: Concern = concerns or type(self).default_concerns
        self.stops_number = stops_number
        self.opts_out_marketing = opts_out_marketing
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
            "concerns": self.concerns,
            "stops_number": self.stops_number,
            "opts_out_marketing": self.opts_out_marketing,
        }


def _rebuild(cls: type[GraphError], state: dict[str, Any]) -> GraphError:
    return cls(state.pop("title"), **state)


def describe(title: str | None, details: str | None) -> str:
    """Meta's title and details as one phrase (what ``{detail}`` in an agent sentence becomes)."""
    if title and details and details != title:
        return f"{title} ({details})"
    return details or title or "no reason given"


class AuthError(GraphError):
    """The access token is invalid or expired: the account is unhealthy until an admin fixes it."""

    default_concerns: Concern = "number"


class GraphPermissionError(GraphError):
    """The token lacks a permission for this call or asset: the account is unhealthy."""

    default_concerns: Concern = "number"


class RateLimitError(GraphError):
    """Too many calls or messages: slow down and retry later (unless ``retryable`` is False)."""

    retryable = True
    default_concerns: Concern = "number"


class RecipientRateLimitError(RateLimitError):
    """Too many messages to one recipient (131056); other recipients are unaffected."""

    default_concerns: Concern = "contact"


class RecipientError(GraphError):
    """This recipient cannot receive this message; retrying will not help."""

    default_concerns: Concern = "contact"


class WindowClosedError(RecipientError):
    """The 24-hour customer service window is closed (131047): only templates may be sent."""


class TemplateError(GraphError):
    """The template is missing, unapproved, paused, disabled, or its parameters do not match."""


class FlowError(GraphError):
    """A WhatsApp Flow is blocked, throttled, or could not be created, published or changed."""


class GroupError(GraphError):
    """A WhatsApp Groups API call was refused (unknown group, not a participant, limits, eligibility)."""


class CallingError(GraphError):
    """A WhatsApp Calling API call was refused (calling off, no permission, limits)."""


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

    default_concerns: Concern = "number"


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
