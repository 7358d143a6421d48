"""The worker side of the outbox: the per-process sender that runs each number's drain job.

:class:`OutboxSender` lives once per worker process (``OutboxSender.of(runtime)``): it holds the
shared limiter, one small HTTP pool per number (an aiohttp session, closed by
:meth:`OutboxSender.aclose` when the runtime stops) and the retry policy, and runs drain jobs
(drainer.py: the loop that sends a number's queue in order at its rate; acceptance.py: bulk
recording of what WhatsApp accepted; failures.py: refusals, the circuit breaker, the
number's token) and read receipts.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from beanie import PydanticObjectId

from app.domains.accounts.models import WhatsAppAccount
from app.domains.outbox.lanes import OutboxQueue
from app.domains.outbox.pacing import SendLimiter, SendWindow
from app.logging import get_logger
from app.metrics import observe_graph, watch_window
from app.retry import backoff as retry_delay  # the method is also called backoff
from app.whatsapp.aiohttp_client import AiohttpClient
from app.whatsapp.client import GraphClient
from app.whatsapp.errors import MAX_BACKOFF_SECONDS, GraphError

if TYPE_CHECKING:
    from app.runtime import Runtime

log = get_logger(__name__)


class OutboxSender:
    """Per worker process: the limiter, the lanes, the retry policy; runs drain jobs and sweeps."""

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self.runtime = runtime
        self.settings = settings
        self.queue = OutboxQueue(runtime.redis)
        self._http: dict[str, AiohttpClient] = {}
        self._windows: dict[str, SendWindow] = {}
        self.limiter = SendLimiter(runtime.redis, recipient_burst=settings.recipient_burst,
                                   recipient_interval=settings.recipient_interval_seconds)

    @classmethod
    def of(cls, runtime: Runtime) -> OutboxSender:
        sender = getattr(runtime, "_outbox_sender", None)
        if sender is None:
            sender = cls(runtime)
            runtime._outbox_sender = sender  # type: ignore[attr-defined]
        return sender

    def graph(self, account: WhatsAppAccount, http: Any = None) -> GraphClient:
        accounts = self.runtime.accounts
        return GraphClient(accounts.access_token(account), base_url=accounts.graph_api_url,
                           api_version=accounts.graph_api_version, http=http or self.runtime.http,
                           timeout=self.settings.send_timeout_seconds)

    def http_for(self, account: WhatsAppAccount) -> AiohttpClient:
        """The number's own keep-alive connections, kept for the process's life (closed by :meth:`aclose`).

        Sends, media uploads and read receipts go through aiohttp (httpx costs 0.8-2.3 ms of CPU
        per request, more than the rest of a send; see app/whatsapp/aiohttp_client.py).
        One pool per number, so a number with a backlog never takes another's connections:
        enough for its mps at ~300 ms of Meta latency, at least 4.
        """
        client = self._http.get(str(account.id))
        if client is None:
            size = max(4, min(256, math.ceil(account.mps * 0.3)))
            client = AiohttpClient(size=size, timeout=self.settings.send_timeout_seconds)
            self._http[str(account.id)] = client
        return client

    async def aclose(self) -> None:
        """Close every number's connections (the runtime's stop)."""
        clients, self._http = list(self._http.values()), {}
        for client in clients:
            await client.aclose()

    def window_for(self, account: WhatsAppAccount) -> SendWindow:
        """The number's recent sends from this process, kept across drain jobs: the next slice's
        drainer must count what the last one sent in the past second."""
        window = self._windows.get(account.phone_number_id)
        if window is None:
            window = self._windows[account.phone_number_id] = SendWindow(max(1, account.mps))
            watch_window(account.phone_number_id, window)
        return window

    def backoff(self, error: GraphError, attempt: int) -> float:
        """Meta's suggested delay for this attempt (else 2 s doubling), capped, scaled, with jitter (half to all of it)."""
        return retry_delay(attempt, base=2.0, cap=MAX_BACKOFF_SECONDS, suggested=error.backoff(attempt),
                           scale=self.settings.send_backoff_scale, jitter=(0.5, 1.0))

    async def send_read_receipt(self, account_id: str, wamid: str) -> bool:
        account = await WhatsAppAccount.get(PydanticObjectId(account_id))
        if account is None or not account.enabled or account.health.token_state == "invalid":
            return False
        started = time.perf_counter()
        try:
            return await self.graph(account, self.http_for(account)).mark_read(account.phone_number_id, wamid)
        except GraphError as error:
            log.info("read receipt not sent", account_id=account_id, code=error.code)
            if error.retryable:
                raise
            return False
        finally:
            observe_graph("mark_read", time.perf_counter() - started)
