"""A number's state as its drainer sees it: the account, its token and circuit, its connections and window.

Reloaded every ``ACCOUNT_RELOAD_SECONDS`` by the drainer so a disabled number, a new token or a
stopped number (Meta restricted it: 368 / 131031) is noticed while draining; the token, circuit and
restriction outcomes are written to the account's health, which the admin screens show.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from app.db import as_utc, stored_id, utcnow
from app.domains.accounts.models import SendError, WhatsAppAccount
from app.domains.outbox.pacing import SendWindow
from app.logging import get_logger
from app.metrics import CIRCUIT_OPENED
from app.whatsapp.aiohttp_client import AiohttpClient
from app.whatsapp.client import GraphClient
from app.whatsapp.errors import GraphError

if TYPE_CHECKING:
    from app.domains.outbox.sender import OutboxSender

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

    def close(self) -> None:
        """Closed from outside (an admin retried the number's failed messages: it works again)."""
        self.until = 0.0
        self.probing = False
        self.failures = 0
        self.span = self.base_span

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



class NumberState:
    def __init__(self, sender: OutboxSender, account_id: str) -> None:
        self.s = sender
        self.account_id = account_id
        self.hold: str | None = None       # "token" | "restricted" | "disabled" | "lost" | "redis"
        self.breaker = CircuitBreaker(sender.settings.circuit_failures, sender.settings.circuit_open_seconds)
        self.window = SendWindow(1)          # Meta's 1-s window as this process sees it
        self.account: WhatsAppAccount
        self._circuit_writes = 0             # reloads do not mistake our own write in flight for an admin's
        self.http: AiohttpClient
        self.graph: GraphClient

    def load(self, account: WhatsAppAccount) -> None:
        self.account = account
        self.window = self.s.window_for(account)
        self.window.limit = max(1, account.mps)
        self.http = self.s.http_for(account)
        self.graph = self.s.graph(account, self.http)
        if not account.enabled:
            self.hold = "disabled"
        elif account.health.token_state == "invalid":
            self.hold = "token"
        elif account.health.sending_stopped is not None:
            self.hold = "restricted"
        self.breaker.load(account.health.circuit_open_until)

    async def reload(self) -> None:
        """Notice a disabled number, a new token, or a circuit an admin closed, while draining."""
        writes = self._circuit_writes
        # Through the process's copy: every change of a number (an admin's, the circuit, the token)
        # drops it in every process (AccountService.changed), so this costs no read while nothing changes.
        account = await self.s.runtime.accounts.cached(self.account_id)
        if account is None or not account.enabled:
            self.hold = "disabled"
            return
        if account.access_token_encrypted != self.account.access_token_encrypted:
            self.graph = self.s.graph(account, self.http)
        self.account = account
        self.window.limit = max(1, account.mps)
        if account.health.token_state == "invalid":
            self.hold = "token"
        elif account.health.sending_stopped is not None:
            self.hold = "restricted"
        if (account.health.circuit_open_until is None and self.breaker.until and writes % 2 == 0
                and writes == self._circuit_writes):
            log.info("circuit closed from outside (failed messages retried)", account_id=self.account_id)
            self.breaker.close()

    async def circuit_opened(self) -> None:
        CIRCUIT_OPENED.inc()
        log.warning("circuit open: sends held", account_id=self.account_id, seconds=self.breaker.span)
        await self._store_circuit(utcnow() + timedelta(seconds=self.breaker.span))

    async def circuit_closed(self) -> None:
        log.info("circuit closed: probe accepted", account_id=self.account_id)
        await self._store_circuit(None)

    async def _store_circuit(self, until: Any) -> None:
        self._circuit_writes += 1  # odd while the write is in flight
        try:
            await WhatsAppAccount.find_one(WhatsAppAccount.id == self.account.id).update(
                {"$set": {"health.circuit_open_until": until}})
        finally:
            self._circuit_writes += 1
        await self.s.runtime.accounts.changed(self.account.id)

    async def mark_token_invalid(self, error: GraphError) -> None:
        log.warning("token refused by WhatsApp: sends held until it is replaced", account_id=self.account_id)
        await WhatsAppAccount.find_one(  # the token it refused: a new one saved meanwhile stays valid
            WhatsAppAccount.id == self.account.id,
            WhatsAppAccount.access_token_encrypted == self.account.access_token_encrypted,
        ).update({"$set": {"health.token_state": "invalid", "health.last_send_error": _send_error(error).model_dump()}})
        await self.s.runtime.accounts.changed(self.account.id)  # the API refuses new sends at once

    async def mark_spam_limited(self, error: GraphError, seconds: float) -> None:
        """Meta answered 131048: broadcasts on the number pause (app/domains/broadcasts/sending.py)."""
        log.warning("spam rate limit: bulk sending paused", account_id=self.account_id, seconds=round(seconds))
        await WhatsAppAccount.find_one(WhatsAppAccount.id == self.account.id).update(
            {"$set": {"health.spam_limited_at": utcnow(), "health.spam_limited_until": utcnow() + timedelta(seconds=seconds),
                      "health.last_send_error": _send_error(error).model_dump()}})
        await self.s.runtime.accounts.changed(self.account.id)

    async def mark_sending_stopped(self, error: GraphError) -> None:
        """Meta restricted or locked the number (368 / 131031): see AccountService.stop_sending."""
        await self.s.runtime.accounts.stop_sending(stored_id(self.account), error)

    async def record_account_error(self, error: GraphError) -> None:
        await WhatsAppAccount.find_one(WhatsAppAccount.id == self.account.id).update(
            {"$set": {"health.last_send_error": _send_error(error).model_dump()}})


def _send_error(error: GraphError) -> SendError:
    return SendError(code=error.code, title=error.title or type(error).__name__, detail=error.agent_message)
