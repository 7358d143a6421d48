"""The typing indicator: while an agent writes a reply, the customer sees "typing…" in WhatsApp.

Meta's form is a read receipt with ``typing_indicator`` (``payloads.mark_read``, sent through the
number's Graph client like the read receipts): it marks the customer's last message read and shows
the indicator until we answer (at most 25 s). The composer asks at most every 5 s while the agent
types (an htmx throttle); this sends at most once per ``TYPING_EVERY`` seconds per conversation across
every web process (Redis ``SET NX EX``), only while the 24-h window is open, only when the customer
wrote something to point at, and never from a number that cannot send. The Graph call runs after
the answer, so the agent never waits for it, and its failure is only logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from redis.exceptions import RedisError

from app.db import as_utc, utcnow
from app.domains.accounts.models import WhatsAppAccount
from app.domains.conversations.models import Conversation
from app.domains.messages.models import Message
from app.errors import NotFound
from app.logging import get_logger
from app.runtime import Runtime
from app.whatsapp.errors import GraphError

log = get_logger(__name__)

TYPING_EVERY = 20
"""Seconds between two indicators for one conversation (Meta shows one for up to 25 s)."""


def typing_key(conversation_id: object) -> str:
    return f"inbox:typing:{conversation_id}"


@dataclass(frozen=True)
class TypingDue:
    """An indicator to send now: from this number, pointing at the customer's last message."""

    account: WhatsAppAccount
    wamid: str


def _can_send(account: WhatsAppAccount, now: datetime) -> bool:
    health = account.health
    if not account.enabled or health.token_state == "invalid" or health.sending_stopped is not None:
        return False
    return health.circuit_open_until is None or as_utc(health.circuit_open_until) <= now


class TypingIndicator:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def due(self, conversation: Conversation) -> TypingDue | None:
        """The indicator to send for ``conversation`` now, or None (window closed, nothing inbound, the
        number cannot send, or one went out in the last ``TYPING_EVERY`` seconds)."""
        now = utcnow()
        if not conversation.window_open(now):
            return None
        try:
            account = await self.runtime.accounts.cached_scoped(conversation.workspace_id, conversation.account_id)
        except NotFound:
            return None
        if not _can_send(account, now):
            return None
        newest = await Message.find(
            Message.workspace_id == conversation.workspace_id, Message.conversation_id == conversation.id,
            Message.direction == "inbound", Message.wamid != None,  # noqa: E711 - Beanie's "exists and not null"
        ).sort(-Message.id).limit(1).to_list()  # type: ignore[operator]  # Beanie: -field sorts descending
        if not newest or not newest[0].wamid:
            return None
        try:
            first = await self.runtime.redis.set(typing_key(conversation.id), "1", nx=True, ex=TYPING_EVERY)
        except RedisError as error:  # a nicety: without Redis no process could keep to the 20 s, so none sends
            log.info("typing indicator skipped: redis unavailable", error=type(error).__name__)
            return None
        return TypingDue(account, newest[0].wamid) if first else None

    async def send(self, due: TypingDue) -> bool:
        """Meta's typing indicator (and read receipt); False when Meta refused it (logged, never raised)."""
        try:
            return await self.runtime.accounts.graph(due.account).mark_read(
                due.account.phone_number_id, due.wamid, typing_indicator=True)
        except GraphError as error:
            log.info("typing indicator not sent", account_id=str(due.account.id), code=error.code)
        except ValueError:  # the token cannot be decrypted (INBOX_SECRET_KEY changed): the health panel says so
            log.info("typing indicator not sent: token unreadable", account_id=str(due.account.id))
        return False
