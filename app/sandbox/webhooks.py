"""Webhook delivery: Meta's batched envelope, signed, in order per number, retried with backoff.

Events wait in a per-number outbox; delayed ones (delivered / read after the number's delays)
sit in one heap with a single loop timer armed for its head.  One sender task per number
drains its outbox: everything queued so far (up to ``batch_size``) becomes one envelope
(consecutive statuses share one change, as Meta batches them), signed with the number's app
secret over the exact bytes posted.  While a number is busy (it posted moments ago) the
sender lingers ``linger_s`` to gather a bigger batch; an idle number posts at once.
Anything but HTTP 200 is retried after ``retry_base_s * 2**n`` up to ``max_attempts``; the
next batch waits, so a number's events are never reordered.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import httpx
import msgspec

from app.retry import backoff
from app.whatsapp.signature import HEADER, sign

if TYPE_CHECKING:
    from app.sandbox.models import Number
    from app.sandbox.state import SandboxState

log = logging.getLogger("app.sandbox.webhooks")
_encode = msgspec.json.Encoder().encode

# ("status", (contact, status)) - one status; consecutive ones share a change, contacts[i] <-> statuses[i]
# ("statuses", (contacts, statuses)) - one change of its own (a group send's per-participant statuses)
# ("message", (contact | None, message)) - None for system messages (no contacts array)
# ("field", (field, value)) - another field of the number (group_lifecycle_update, ...): value + metadata
# ("template", (waba_id, value, time)) - message_template_status_update, in the WABA's own entry
Event = tuple[str, Any]


def build_envelope(number: Number, batch: list[Event]) -> dict[str, Any]:
    """Meta's ``whatsapp_business_account`` envelope for a batch of one number's events."""
    metadata = {"display_phone_number": number.display_digits, "phone_number_id": number.phone_number_id}
    entries: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    statuses: list[dict[str, Any]] | None = None
    contacts: list[dict[str, Any]] = []
    for kind, payload in batch:
        if kind == "status":
            contact, status = payload if isinstance(payload, tuple) else (None, payload)
            if statuses is None:
                statuses, contacts = [], []
                value: dict[str, Any] = {"messaging_product": "whatsapp", "metadata": metadata}
                if contact is not None:
                    value["contacts"] = contacts
                value["statuses"] = statuses
                changes.append({"value": value, "field": "messages"})
            if contact is not None:
                contacts.append(contact)
            statuses.append(status)
            continue
        statuses = None
        if kind == "statuses":
            group_contacts, group_statuses = payload
            changes.append({"value": {"messaging_product": "whatsapp", "metadata": metadata,
                                      "contacts": group_contacts, "statuses": group_statuses}, "field": "messages"})
        elif kind == "message":
            contact, message = payload
            value = {"messaging_product": "whatsapp", "metadata": metadata}
            if contact is not None:
                value["contacts"] = [contact]
            value["messages"] = [message]
            changes.append({"value": value, "field": "messages"})
        elif kind == "field":
            field_name, field_value = payload
            changes.append({"value": {"messaging_product": "whatsapp", "metadata": metadata, **field_value},
                            "field": field_name})
        elif kind == "template":
            waba_id, value, at = payload
            entries.append({"id": waba_id, "time": int(at),
                            "changes": [{"value": value, "field": "message_template_status_update"}]})
    if changes:
        entries.insert(0, {"id": number.waba_id, "changes": changes})
    return {"object": "whatsapp_business_account", "entry": entries}


class WebhookDispatcher:
    """Per-number ordered, batched, signed webhook delivery with retries."""

    def __init__(self, state: SandboxState, *, retry_base_s: float = 1.0, max_attempts: int = 6,
                 timeout_s: float = 10.0, batch_size: int = 100, max_delay_s: float = 300.0,
                 linger_s: float = 0.05) -> None:
        self._state = state
        self.retry_base_s = retry_base_s
        self.max_attempts = max_attempts
        self.timeout_s = timeout_s
        self.batch_size = batch_size
        self.max_delay_s = max_delay_s
        self.linger_s = linger_s
        self._outboxes: dict[str, deque[Event]] = {}
        self._heap: list[tuple[float, int, str, Event]] = []
        self._seq = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None
        self._wakeups: dict[str, asyncio.Event] = {}
        self._senders: dict[str, asyncio.Task[None]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._generation = 0  # bumped by clear(): batches taken before a reset are abandoned
        # The last deliveries, for GET /sandbox/control/deliveries and debugging.
        self.deliveries: deque[dict[str, Any]] = deque(maxlen=2000)

    # ---- producing ---------------------------------------------------------------------

    def emit(self, phone_number_id: str, event: Event, *, due: float | None = None) -> None:
        """Queue ``event`` for the number's webhook, now or at ``due`` (epoch seconds)."""
        number = self._state.numbers.get(phone_number_id)
        if number is None or not number.webhook_url:
            return  # nobody to tell: Meta drops events for apps without a subscription
        if due is None or due <= time.time():
            self._outboxes.setdefault(phone_number_id, deque()).append(event)
            self._notify(self._wake_sender, phone_number_id)
        else:
            item = (due, next(self._seq), phone_number_id, event)
            heapq.heappush(self._heap, item)
            if self._heap[0] is item:  # only a new earliest event needs the timer moved
                self._notify(self._arm_timer)

    def _notify(self, fn: Any, *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # not started yet: start() drains what queued up meanwhile
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            fn(*args)
        else:  # called from another thread (e.g. a test driving SandboxState directly)
            loop.call_soon_threadsafe(fn, *args)

    def _wake_sender(self, phone_number_id: str) -> None:
        wakeup = self._wakeups.get(phone_number_id)
        if wakeup is None:
            wakeup = self._wakeups[phone_number_id] = asyncio.Event()
        task = self._senders.get(phone_number_id)
        if task is None or task.done():
            self._senders[phone_number_id] = asyncio.create_task(self._sender(phone_number_id, wakeup))
        wakeup.set()

    def _arm_timer(self, min_delay: float = 0.0) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._heap and self._loop is not None:
            delay = max(min_delay, self._heap[0][0] - time.time())
            self._timer = self._loop.call_later(delay, self._release_due)

    def _release_due(self) -> None:
        """Timer callback: move every due event to its number's outbox, then re-arm."""
        self._timer = None
        heap, now = self._heap, time.time()
        woken: set[str] = set()
        while heap and heap[0][0] <= now:
            _, _, phone_number_id, event = heapq.heappop(heap)
            self._outboxes.setdefault(phone_number_id, deque()).append(event)
            woken.add(phone_number_id)
        for phone_number_id in woken:
            self._wake_sender(phone_number_id)
        # Under load a status falls due every few hundred microseconds; releasing them in
        # 10-ms ticks costs one timer per tick instead of one per status.
        self._arm_timer(min_delay=0.01)

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Arm the delay timer and start senders on the running loop (app startup)."""
        self._loop = asyncio.get_running_loop()
        self._client = httpx.AsyncClient(timeout=self.timeout_s, limits=httpx.Limits(max_connections=200))
        self._wakeups.clear()
        self._senders.clear()
        self._arm_timer()
        for phone_number_id, outbox in self._outboxes.items():
            if outbox:
                self._wake_sender(phone_number_id)

    async def stop(self) -> None:
        """Cancel delivery and close the HTTP client (app shutdown); queued events stay queued."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        tasks = list(self._senders.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._senders.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self._loop = None

    def clear(self) -> None:
        """Drop every queued and scheduled event, and stop retrying in-flight batches (reset)."""
        self._generation += 1
        self._heap.clear()
        if self._timer is not None:
            self._notify(self._arm_timer)  # nothing left to wait for
        for outbox in self._outboxes.values():
            outbox.clear()
        self.deliveries.clear()

    def pending(self) -> int:
        """Events not yet delivered (queued or scheduled)."""
        return len(self._heap) + sum(len(o) for o in self._outboxes.values())

    # ---- delivering ------------------------------------------------------------------------

    async def _sender(self, phone_number_id: str, wakeup: asyncio.Event) -> None:
        outbox = self._outboxes.setdefault(phone_number_id, deque())
        last_post = 0.0
        while True:
            if not outbox:
                wakeup.clear()
                await wakeup.wait()
                continue
            if len(outbox) < self.batch_size and time.monotonic() - last_post < 0.1:
                await asyncio.sleep(self.linger_s)  # busy: one bigger post beats many small ones
            batch = [outbox.popleft() for _ in range(min(len(outbox), self.batch_size))]
            try:
                await self._deliver(phone_number_id, batch)
                last_post = time.monotonic()
            except asyncio.CancelledError:
                outbox.extendleft(reversed(batch))  # keep them for a later start()
                raise
            except Exception:  # never let one bad batch kill the number's delivery
                log.exception("sandbox webhook delivery crashed for %s", phone_number_id)

    async def _deliver(self, phone_number_id: str, batch: list[Event]) -> None:
        generation = self._generation
        for attempt in range(1, self.max_attempts + 1):
            number = self._state.numbers.get(phone_number_id)
            if generation != self._generation or number is None or not number.webhook_url or self._client is None:
                return  # reset or unregistered meanwhile
            # Built per attempt: the URL or app secret may have been rotated in between.
            body = _encode(build_envelope(number, batch))
            headers = {"Content-Type": "application/json", HEADER: sign(number.app_secret, body),
                       "User-Agent": "facebookexternalua"}
            status: int | None = None
            try:
                response = await self._client.post(number.webhook_url, content=body, headers=headers)
                status = response.status_code
            except httpx.HTTPError as exc:
                log.info("sandbox webhook to %s failed: %r", number.webhook_url, exc)
            if generation != self._generation:
                return
            self.deliveries.append({"phone_number_id": phone_number_id, "url": number.webhook_url,
                                    "attempt": attempt, "status_code": status, "events": len(batch),
                                    "ok": status == 200, "at": time.time()})
            if status == 200:
                return
            if attempt < self.max_attempts:
                await asyncio.sleep(backoff(attempt, base=self.retry_base_s, cap=self.max_delay_s))
        log.warning("sandbox gave up on %d webhook events for %s after %d attempts",
                    len(batch), phone_number_id, self.max_attempts)
