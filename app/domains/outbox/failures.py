"""What a drainer does when WhatsApp refuses a send, and the number's own state (token, circuit).

Follows the error table (app/whatsapp/error_table.py): transient errors (and a throttled Flow,
132069) are retried with exponential backoff and jitter (through the limiter, within
``send_retry_window_seconds``), 130429 pauses the whole number and 131056 the one customer,
permanent ones fail the message with Meta's code and words (131050 also marks the customer opted
out of marketing), 0/190 holds the number's sends until a new token is set, 368/131031 (Meta
restricted the number) hold them until an admin resumes sending, and a run of transient failures
opens the circuit breaker (sends held; a single probe closes it again).

:class:`Failures` decides what a refusal means (``Retry``, ``GiveUp`` or ``Hold``) and records
a failed message; the drainer applies the decision to its own conversations and timers; the
number's state (token, circuit, account) is :class:`~app.domains.outbox.number.NumberState`;
:class:`~app.domains.outbox.number.CircuitBreaker` is the breaker's state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from beanie import PydanticObjectId
from beanie.operators import In

from app.domains.contacts.services import ContactService
from app.domains.messages.models import Message, MessageError, MessageStatus
from app.domains.messages.status import advance_status
from app.metrics import RETRIES, count_send
from app.whatsapp.errors import (
    AccountError,
    AuthError,
    CallingError,
    FlowError,
    GraphError,
    GraphPermissionError,
    GroupError,
    RateLimitError,
    RecipientRateLimitError,
)

if TYPE_CHECKING:
    from app.domains.outbox.items import Item
    from app.domains.outbox.number import NumberState
    from app.domains.outbox.sender import OutboxSender


@dataclass(frozen=True)
class Retry:
    """Send it again after ``delay`` seconds (the conversation waits; its order is kept)."""

    delay: float


@dataclass(frozen=True)
class GiveUp:
    """The message failed: permanently, or ``gave_up`` after retrying within the retry window."""

    gave_up: bool = False


class Hold:
    """Not the message's fault (the token, or Meta restricted the number): it stays queued at the head
    and the number's sends are held."""


HOLD = Hold()
SPAM_RATE_LIMIT = 131048
_OWN_THROTTLES = (FlowError, GroupError, CallingError)


class Failures:
    """What a refusal from WhatsApp means for one number's drainer."""

    def __init__(self, sender: OutboxSender, number: NumberState) -> None:
        self.s = sender
        self.number = number

    async def decide(self, item: Item, error: GraphError) -> Retry | GiveUp | Hold:
        number = self.number
        if isinstance(error, AuthError) or error.code in (0, 190):
            if number.hold is None:
                number.hold = "token"
                await number.mark_token_invalid(error)
            return HOLD
        if error.stops_number:  # 368 / 131031: nothing more leaves this number until an admin resumes it
            if number.hold is None:
                number.hold = "restricted"
                await number.mark_sending_stopped(error)
            return HOLD
        if not error.retryable:
            if error.concerns == "number" or isinstance(error, (GraphPermissionError, AccountError)):
                await number.record_account_error(error)
            return GiveUp()
        item.attempts += 1
        reason = str(error.code) if error.code is not None else (
            f"http_{error.http_status}" if error.http_status else type(error).__name__)
        delay = self.s.backoff(error, item.attempts)
        if isinstance(error, RecipientRateLimitError):
            await self.s.limiter.pause_recipient(number.account.phone_number_id, item.message.recipient or "", delay)
        elif isinstance(error, RateLimitError):
            await self.s.limiter.pause_number(number.account.phone_number_id, delay)
            if error.code == SPAM_RATE_LIMIT:
                await number.mark_spam_limited(error, delay)
        elif not isinstance(error, _OWN_THROTTLES) and number.breaker.failed(time.monotonic()):
            # A throttled Flow (132069), group or call says nothing about the number's health.
            await number.circuit_opened()
        cap = 2 if error.code == 1 else self.s.settings.send_max_attempts
        if item.attempts >= cap or time.time() + delay - item.first_at > self.s.settings.send_retry_window_seconds:
            return GiveUp(gave_up=True)
        RETRIES.labels(reason=reason).inc()
        count_send(item.message.type, "retry")
        return Retry(delay)

    async def record_failed(self, item: Item, error: GraphError, *, gave_up: bool, sentence: str | None = None) -> None:
        """Store the message as failed, with Meta's code and the sentence agents see, and say so live."""
        if sentence is None:
            sentence = error.agent_message
        if gave_up and sentence == error.agent_message:
            sentence = f"WhatsApp kept failing ({error.title or error.code}); gave up after {item.attempts} attempts."
        message_error = MessageError(code=error.code, title=error.title or type(error).__name__,
                                     detail=error.details or "", agent_message=sentence)
        attempts = item.attempts + (0 if gave_up else 1)
        message = await Message.get(item.message.id)
        if message is not None and error.opts_out_marketing:  # 131050: never send them marketing again
            await ContactService().set_marketing_opt_out(message.workspace_id, message.contact_id, True,
                                                         source="failed_send", by=str(error.code) if error.code else None,
                                                         note=error.title or "")
        if message is not None:
            message.attempts = attempts
            await Message.find_one(Message.id == message.id).update({"$set": {"attempts": attempts}})
            if await advance_status(message, MessageStatus.FAILED, error=message_error):
                await self.s.runtime.live.publish(message.workspace_id, "message.updated",
                                                  message_id=str(message.id),
                                                  conversation_id=str(message.conversation_id), status="failed",
                                                  error_code=error.code,
                                                  broadcast_id=message.broadcast.get("id") if message.broadcast else None)
        count_send(item.message.type, "failed")


async def fail_all_for_missing_account(queue: Any, account_id: str, token: str) -> str:
    """The number was deleted: its queued messages can never go."""
    error = MessageError(title="number disconnected", agent_message="This number was disconnected; the "
                         "message was not sent.")
    while entries := await queue.pop(account_id, token, 500, 500):
        ids = [PydanticObjectId(e.message_id) for e in entries]
        for message in await Message.find(In(Message.id, ids)).to_list():
            if message.status is MessageStatus.QUEUED:
                await advance_status(message, MessageStatus.FAILED, error=error)
        await queue.done(account_id, entries)
    await queue.release(account_id, token)
    return "missing"
