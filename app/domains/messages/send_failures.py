"""What a drainer does when WhatsApp refuses a send, and the number's own state (token, circuit).

Follows WHATSAPP.md's table: transient errors are retried with exponential backoff and jitter
(through the limiter, within ``send_retry_window_seconds``), 130429 pauses the whole number and
131056 the one customer, permanent ones fail the message with Meta's code and words, 0/190 holds
the number's sends until a new token is set, and a run of transient failures opens the circuit
breaker (sends held; a single probe closes it again).

:class:`SendFailures` is a mixin of :class:`~app.domains.messages.drainer.Drainer` (it works on
the drainer's conversations, timers and hold flag); :class:`CircuitBreaker` is the breaker's state.
"""

from __future__ import annotations

import heapq
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from beanie import PydanticObjectId
from beanie.operators import In

from app.db import as_utc, utcnow
from app.domains.accounts.models import SendError, WhatsAppAccount
from app.domains.messages.models import Message, MessageError, MessageStatus
from app.domains.messages.outbox_queue import RetryState
from app.domains.messages.status import advance_status
from app.logging import get_logger
from app.metrics import CIRCUIT_OPENED, RETRIES, SENDS
from app.whatsapp.errors import (
    AccountError,
    AuthError,
    GraphError,
    GraphPermissionError,
    RateLimitError,
    RecipientRateLimitError,
)

if TYPE_CHECKING:
    from app.domains.messages.drainer import Conv, Item

log = get_logger(__name__)

CIRCUIT_MAX_SECONDS = 600.0


class CircuitBreaker:
    """Per number: opens after ``threshold`` transient failures in a row and holds the sends for a
    span (doubled after a failed probe, up to CIRCUIT_MAX_SECONDS); then one probe is let through,
    and its success closes it."""

    def __init__(self, threshold: int, span: float) -> None:
        self.threshold = threshold
        self.base_span = span
        self.span = span
        self.failures = 0        # consecutive transient failures
        self.until = 0.0         # monotonic; 0 = closed
        self.probing = False

    def load(self, open_until: datetime | None) -> None:
        """Continue a breaker another drainer opened (stored on the account)."""
        if open_until is not None:
            left = (as_utc(open_until) - utcnow()).total_seconds()
            self.until = time.monotonic() + max(0.0, left)

    def holds(self, now: float, busy: bool) -> bool:
        """True while sends must wait; once the span is over (and nothing is in flight) it lets one probe go."""
        if not self.until:
            return False
        if now < self.until or busy:
            return True
        self.probing = True
        return False

    def wait_hint(self, now: float, timeout: float) -> float:
        """How long an idle loop may sleep: past the end of the open span, but at least once a second."""
        if self.until > now:
            return min(max(timeout, self.until - now), 1.0)
        return timeout

    def succeeded(self) -> bool:
        """A send was accepted; True when that closed the breaker (the probe worked)."""
        self.failures = 0
        if not self.probing:
            return False
        self.probing = False
        self.until = 0.0
        self.span = self.base_span
        return True

    def failed(self, now: float) -> bool:
        """A transient failure; True when that opened the breaker (a run of them, or the probe failed)."""
        self.failures += 1
        if not (self.probing or self.failures >= self.threshold):
            return False
        if self.probing:
            self.span = min(self.span * 2, CIRCUIT_MAX_SECONDS)
        self.probing = False
        self.failures = 0
        self.until = now + self.span
        return True


class SendFailures:
    """Error handling and account state of a drainer (mixed into Drainer)."""

    # Provided by Drainer.
    s: Any
    account: WhatsAppAccount
    account_id: str
    breaker: CircuitBreaker
    hold: str | None
    queue: Any
    timers: list[tuple[float, str]]
    batch: Any
    known: set[str]
    in_memory: int
    graph: Any
    http: Any
    window: Any

    async def _on_error(self, conv_id: str, conv: Conv, item: Item, error: GraphError) -> None:
        now = time.monotonic()
        if isinstance(error, AuthError) or error.code in (0, 190):
            # Not the message's fault: keep it queued (at the head) and hold the number.
            if self.hold is None:
                self.hold = "token"
                await self._mark_token_invalid(error)
            return
        if not error.retryable:
            if isinstance(error, (GraphPermissionError, AccountError)):
                await self._record_account_error(error)
            await self._fail(conv, item, error)
            return
        item.attempts += 1
        reason = str(error.code) if error.code is not None else (
            f"http_{error.http_status}" if error.http_status else type(error).__name__)
        delay = self.s.backoff(error, item.attempts)
        if isinstance(error, RecipientRateLimitError):
            await self.s.limiter.pause_recipient(self.account.phone_number_id, item.message.recipient or "", delay)
        elif isinstance(error, RateLimitError):
            await self.s.limiter.pause_number(self.account.phone_number_id, delay)
        elif self.breaker.failed(now):
            await self._circuit_opened()
        cap = 2 if error.code == 1 else self.s.settings.send_max_attempts
        if item.attempts >= cap or time.time() + delay - item.first_at > self.s.settings.send_retry_window_seconds:
            await self._fail(conv, item, error, gave_up=True)
            return
        RETRIES.labels(reason=reason).inc()
        SENDS.labels(type=item.message.type, result="retry").inc()
        conv.blocked_until = now + delay
        heapq.heappush(self.timers, (conv.blocked_until, conv_id))
        await self.queue.save_retry_state(self.account_id, item.entry.message_id,
                                          RetryState(item.attempts, item.first_at, time.time() + delay))

    async def _fail(self, conv: Conv, item: Item, error: GraphError, *, gave_up: bool = False) -> None:
        conv.items.popleft()
        self.in_memory -= 1
        sentence = error.agent_message
        if gave_up:
            sentence = f"WhatsApp kept failing ({error.title or error.code}); gave up after {item.attempts} attempts."
        message_error = MessageError(code=error.code, title=error.title or type(error).__name__,
                                     detail=error.details or "", agent_message=sentence)
        attempts = item.attempts + (0 if gave_up else 1)
        message = await Message.get(item.message.id)
        if message is not None:
            message.attempts = attempts
            await Message.find_one(Message.id == message.id).update({"$set": {"attempts": attempts}})
            if await advance_status(message, MessageStatus.FAILED, error=message_error):
                await self.s.runtime.live.publish(message.workspace_id, "message.updated",
                                                  message_id=str(message.id),
                                                  conversation_id=str(message.conversation_id), status="failed")
        SENDS.labels(type=item.message.type, result="failed").inc()
        self.batch.finished.append(item.entry)
        self.known.discard(item.entry.message_id)  # stored as failed: a retry of it is a new send

    # -- account state --------------------------------------------------------------------------

    def _load_account_state(self, account: WhatsAppAccount) -> None:
        if not account.enabled:
            self.hold = "disabled"
        elif account.health.token_state == "invalid":
            self.hold = "token"
        self.breaker.load(account.health.circuit_open_until)

    async def _reload_account(self) -> None:
        """Notice a disabled number or a new token while draining."""
        account = await WhatsAppAccount.get(self.account.id)
        if account is None or not account.enabled:
            self.hold = "disabled"
            return
        if account.access_token_encrypted != self.account.access_token_encrypted:
            self.graph = self.s.graph(account, self.http)
        self.account = account
        self.window.limit = max(1, account.mps)
        if account.health.token_state == "invalid":
            self.hold = "token"

    async def _circuit_opened(self) -> None:
        CIRCUIT_OPENED.inc()
        log.warning("circuit open: sends held", account_id=self.account_id, seconds=self.breaker.span)
        await self._store_circuit(utcnow() + timedelta(seconds=self.breaker.span))

    async def _circuit_closed(self) -> None:
        log.info("circuit closed: probe accepted", account_id=self.account_id)
        await self._store_circuit(None)

    async def _store_circuit(self, until: Any) -> None:
        await WhatsAppAccount.get_motor_collection().update_one(
            {"_id": self.account.id}, {"$set": {"health.circuit_open_until": until}})

    async def _mark_token_invalid(self, error: GraphError) -> None:
        log.warning("token refused by WhatsApp: sends held until it is replaced", account_id=self.account_id)
        await WhatsAppAccount.get_motor_collection().update_one(
            {"_id": self.account.id, "access_token_encrypted": self.account.access_token_encrypted},
            {"$set": {"health.token_state": "invalid", "health.last_send_error": _send_error(error).model_dump()}})

    async def _record_account_error(self, error: GraphError) -> None:
        await WhatsAppAccount.get_motor_collection().update_one(
            {"_id": self.account.id}, {"$set": {"health.last_send_error": _send_error(error).model_dump()}})


async def fail_all_for_missing_account(queue: Any, account_id: str, token: str) -> str:
    """The number was deleted: its queued messages can never go."""
    error = MessageError(title="number disconnected", agent_message="This number was disconnected; the "
                         "message was not sent.")
    while entries := await queue.pop(account_id, 500, 500):
        ids = [PydanticObjectId(e.message_id) for e in entries]
        for message in await Message.find(In(Message.id, ids)).to_list():
            if message.status is MessageStatus.QUEUED:
                await advance_status(message, MessageStatus.FAILED, error=error)
        await queue.done(account_id, entries)
    await queue.release(account_id, token)
    return "missing"


def _send_error(error: GraphError) -> SendError:
    return SendError(code=error.code, title=error.title or type(error).__name__, detail=error.agent_message)
