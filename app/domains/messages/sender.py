"""The worker side of the outbox: one drainer per number sends its queued messages, in order, at its rate.

A drain job runs while its number has work (``drain_outbox``, enqueued by the outbox when no
drainer holds the number's lease). It pops entries in batches (agent lane first), loads the
messages in one query, keeps one FIFO per conversation, and asks the shared limiter for send
slots for the heads of ready conversations. One message per conversation is in flight at a
time, so a conversation's messages reach Meta in the order they were queued, across retries
and hand-overs. Acceptances are written in bulk every few milliseconds.

Errors follow WHATSAPP.md: transient ones are retried with exponential backoff and jitter
(through the limiter, within ``send_retry_window_seconds``), 130429 pauses the whole number
and 131056 the one customer, permanent ones fail the message with Meta's code and words, 0/190
holds the number's sends until a new token is set, and a run of transient failures opens the
circuit breaker (sends held; a single probe closes it again).
"""

from __future__ import annotations

import asyncio
import heapq
import random
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
from beanie import PydanticObjectId
from beanie.operators import In
from pymongo import UpdateOne
from redis.exceptions import RedisError

from app.db import as_utc, utcnow
from app.domains.accounts.models import SendError, WhatsAppAccount
from app.domains.messages.media_out import OutboundMedia
from app.domains.messages.models import Message, MessageError, MessageStatus, PendingStatus
from app.domains.messages.outbox_queue import LEASE_TTL_MS, Entry, OutboxQueue, RetryState
from app.domains.messages.status import advance_status, apply_pending_statuses
from app.logging import get_logger
from app.metrics import CIRCUIT_OPENED, GRAPH_LATENCY, LIMITER_WAIT, MISSED_SLOTS, RETRIES, SENDS
from app.ratelimit import SendLimiter
from app.whatsapp.client import GraphClient
from app.whatsapp.errors import (
    AccountError, AuthError, GraphError, GraphPermissionError, RateLimitError, RecipientRateLimitError,
)

if TYPE_CHECKING:
    from app.runtime import Runtime

log = get_logger(__name__)

DRAIN_SLICE_SECONDS = 50.0   # then hand over to a fresh job: arq's job timeout is 120 s
POLL_SECONDS = 0.02          # how often an active drainer looks for new agent replies
FLUSH_SECONDS = 0.02         # acceptances are written in bulk at most this late
ACCOUNT_RELOAD_SECONDS = 2.0  # notice a disabled number or a new token while draining
MAX_IN_MEMORY = 5000
CIRCUIT_MAX_SECONDS = 600.0


@dataclass(eq=False)
class Item:
    entry: Entry
    message: Message
    body: dict[str, Any]
    seq: int
    attempts: int = 0
    first_at: float = 0.0
    media: OutboundMedia | None = None


@dataclass(eq=False)
class Conv:
    items: deque[Item] = field(default_factory=deque)
    busy: bool = False
    blocked_until: float = 0.0

    def rank(self) -> tuple[int, int]:
        head = self.items[0]
        return (0 if head.entry.lane == "a" else 1, head.seq)


class OutboxSender:
    """Per worker process: the limiter, the lanes, the retry policy; runs drain jobs and sweeps."""

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self.runtime = runtime
        self.settings = settings
        self.queue = OutboxQueue(runtime.redis)
        self._http: dict[str, httpx.AsyncClient] = {}
        self.limiter = SendLimiter(runtime.redis, recipient_burst=settings.recipient_burst,
                                   recipient_interval=settings.recipient_interval_seconds)

    @classmethod
    def of(cls, runtime: Runtime) -> OutboxSender:
        sender = getattr(runtime, "_outbox_sender", None)
        if sender is None:
            sender = cls(runtime)
            runtime._outbox_sender = sender  # type: ignore[attr-defined]
        return sender

    def graph(self, account: WhatsAppAccount, http: httpx.AsyncClient | None = None) -> GraphClient:
        accounts = self.runtime.accounts
        return GraphClient(accounts.access_token(account), base_url=accounts.graph_api_url,
                           api_version=accounts.graph_api_version, http=http or self.runtime.http,
                           timeout=self.settings.send_timeout_seconds)

    def http_for(self, account: WhatsAppAccount) -> httpx.AsyncClient:
        """A small connection pool per number, kept for the process's life.

        httpx scans every pooled connection on each request, so one big shared pool costs
        O(connections) per send (profiled: most of a worker's CPU). Enough connections for the
        number's mps at ~150 ms of Meta latency, at least 4.
        """
        client = self._http.get(str(account.id))
        if client is None:
            size = max(4, min(32, int(account.mps * 0.15)))
            client = httpx.AsyncClient(limits=httpx.Limits(max_connections=size, max_keepalive_connections=size))
            self._http[str(account.id)] = client
        return client

    def backoff(self, error: GraphError, attempt: int) -> float:
        """Meta's suggested delay for this attempt, scaled, with jitter (half to all of it)."""
        base = error.backoff(attempt)
        if base is None:
            base = 2.0 * 2 ** max(attempt - 1, 0)
        base *= self.settings.send_backoff_scale
        return base * random.uniform(0.5, 1.0)

    async def drain(self, account_id: str) -> str:
        return await Drainer(self, account_id).run()

    async def send_read_receipt(self, account_id: str, wamid: str) -> bool:
        account = await WhatsAppAccount.get(PydanticObjectId(account_id))
        if account is None or not account.enabled or account.health.token_state == "invalid":
            return False
        started = time.perf_counter()
        try:
            return await self.graph(account).mark_read(account.phone_number_id, wamid)
        except GraphError as error:
            log.info("read receipt not sent", account_id=account_id, code=error.code)
            if error.retryable:
                raise
            return False
        finally:
            GRAPH_LATENCY.labels(endpoint="mark_read").observe(time.perf_counter() - started)


class Drainer:
    """One activation of a number's drain job (see the module docstring)."""

    def __init__(self, sender: OutboxSender, account_id: str) -> None:
        self.s = sender
        self.account_id = account_id
        self.token = uuid.uuid4().hex
        self.queue = sender.queue
        self.convs: dict[str, Conv] = {}
        self.ready: list[tuple[int, int, str]] = []
        self.timers: list[tuple[float, str]] = []
        self.known: set[str] = set()
        self.inflight: set[asyncio.Task[None]] = set()
        self.accepted: list[tuple[Item, str]] = []
        self.finished: list[Entry] = []
        self.spares: list[Entry] = []       # second copies of messages held here: finished, retry state kept
        self.wakeup = asyncio.Event()
        self.seq = 0
        self.in_memory = 0
        self.hold: str | None = None       # "token" | "disabled" | "lost" | "redis"
        self.failures = 0                   # consecutive transient failures (circuit breaker)
        self.circuit_until = 0.0            # monotonic; 0 = closed
        self.circuit_span = sender.settings.circuit_open_seconds
        self.probing = False
        self.number_free_at = 0.0
        self.last_pop = 0.0
        self.lanes_empty = False
        self.sent_times: deque[float] = deque()  # when this drainer's sends left, for the 1-s window

    # -- lifecycle ----------------------------------------------------------------------------

    async def run(self) -> str:
        if not await self.queue.claim(self.account_id, self.token):
            return "busy"
        account = await WhatsAppAccount.get(PydanticObjectId(self.account_id))
        if account is None:
            return await self._fail_all_for_missing_account()
        self.account = account
        self.http = self.s.http_for(account)
        self.graph = self.s.graph(account, self.http)
        self._load_circuit(account)
        refresher = asyncio.create_task(self._keep_lease())
        outcome = "drained"
        try:
            outcome = await self._loop()
        except RedisError as exc:
            log.warning("drainer lost Redis; the sweeper requeues from Mongo", account_id=self.account_id,
                        error=type(exc).__name__)
            self.hold = outcome = "redis"
        except Exception:
            # A bug: hand the entries back and release; the sweeper tries again in a few seconds.
            log.exception("drainer failed", account_id=self.account_id)
            outcome = "hold"
        finally:
            refresher.cancel()
            await self._finish(outcome)
        return outcome

    async def _finish(self, outcome: str) -> None:
        if self.inflight:
            await asyncio.gather(*self.inflight, return_exceptions=True)
        try:
            try:
                await self._flush()
            except RedisError:
                raise
            except Exception:
                log.exception("could not record sends", account_id=self.account_id)
            if outcome in ("drained", "lost", "redis"):
                return  # "lost": the next drainer put our entries back; "redis": the sweeper rebuilds
            left = sorted((item for conv in self.convs.values() for item in conv.items), key=lambda i: i.seq)
            handed = await self.queue.hand_back(self.account_id, self.token, [i.entry for i in left],
                                                wake=outcome == "slice")
            if handed and outcome == "slice":
                await _enqueue_drain(self.s.runtime, self.account_id)
        except RedisError:
            log.warning("drainer could not hand back (Redis); the sweeper requeues from Mongo",
                        account_id=self.account_id)

    async def _keep_lease(self) -> None:
        while True:
            await asyncio.sleep(LEASE_TTL_MS / 6000)
            try:
                ok = await self.queue.refresh(self.account_id, self.token)
            except RedisError:
                ok = False
            if not ok:
                self.hold = "lost"
                self.wakeup.set()
                return

    async def _loop(self) -> str:
        deadline = time.monotonic() + DRAIN_SLICE_SECONDS
        next_reload = time.monotonic() + ACCOUNT_RELOAD_SECONDS
        next_flush = 0.0
        while True:
            now = time.monotonic()
            if self.hold:
                return "lost" if self.hold in ("lost", "redis") else "hold"
            if now >= next_reload:
                await self._reload_account()
                next_reload = now + ACCOUNT_RELOAD_SECONDS
                continue
            if now >= deadline:
                return "slice"
            if now >= next_flush and (self.accepted or self.finished or self.spares):
                await self._flush()
                next_flush = now + FLUSH_SECONDS
            await self._refill(now)
            self._release_timers(now)
            scheduled = await self._schedule(now)
            if not self.in_memory and not self.inflight and self.lanes_empty:
                await self._flush()
                if await self.queue.release(self.account_id, self.token):
                    return "drained"
                self.lanes_empty = False
                continue
            if not scheduled:
                timeout = POLL_SECONDS
                if self.timers:
                    timeout = min(timeout, max(0.0, self.timers[0][0] - now))
                if self.circuit_until > now:
                    timeout = min(max(timeout, self.circuit_until - now), 1.0)
                self.wakeup.clear()
                try:
                    await asyncio.wait_for(self.wakeup.wait(), timeout)
                except TimeoutError:
                    pass

    # -- filling memory from the lanes ---------------------------------------------------------

    async def _refill(self, now: float) -> None:
        if now - self.last_pop < POLL_SECONDS and self.in_memory:
            return
        rate = self.rate
        agent = 100
        bulk = 0
        if self.in_memory < max(50, int(rate * 2)):
            bulk = min(MAX_IN_MEMORY - self.in_memory, max(50, int(rate * 2)))
        self.last_pop = now
        entries = await self.queue.pop(self.account_id, agent, bulk)
        self.lanes_empty = not entries
        if not entries:
            return
        fresh = []
        for entry in entries:
            if entry.message_id in self.known:
                self.spares.append(entry)  # the same message queued twice (a sweep): send it once
            else:
                self.known.add(entry.message_id)
                fresh.append(entry)
        if not fresh:
            return
        ids = [PydanticObjectId(e.message_id) for e in fresh]
        docs = {str(m.id): m for m in await Message.find(In(Message.id, ids)).to_list()}
        states = await self.queue.retry_states(self.account_id, [e.message_id for e in fresh])
        media_ids = {m.media.stored_file_id for m in docs.values() if m.media and m.media.stored_file_id}
        media = {}
        if media_ids:
            media = {m.id: m for m in await OutboundMedia.find(In(OutboundMedia.id, list(media_ids))).to_list()}
        wall = time.time()
        for entry, state in zip(fresh, states):
            message = docs.get(entry.message_id)
            if message is None or message.status is not MessageStatus.QUEUED or message.direction != "outbound":
                self.finished.append(entry)
                self.known.discard(entry.message_id)
                continue
            self.seq += 1
            item = Item(entry, message, _graph_body(message), self.seq, first_at=wall)
            if message.media and message.media.stored_file_id:
                item.media = media.get(message.media.stored_file_id)
            conv = self.convs.setdefault(entry.conversation_id, Conv())
            if state is not None:
                item.attempts, item.first_at = state.attempts, state.first_at
                if state.due_at > wall and not conv.items:
                    conv.blocked_until = now + (state.due_at - wall)
                    heapq.heappush(self.timers, (conv.blocked_until, entry.conversation_id))
            conv.items.append(item)
            self.in_memory += 1
            if len(conv.items) == 1:
                self._maybe_ready(entry.conversation_id, conv, now)

    @property
    def rate(self) -> float:
        return max(0.1, self.account.mps * self.s.settings.send_rate_margin)

    def _maybe_ready(self, conv_id: str, conv: Conv, now: float) -> None:
        if conv.items and not conv.busy and conv.blocked_until <= now:
            heapq.heappush(self.ready, (*conv.rank(), conv_id))

    def _release_timers(self, now: float) -> None:
        while self.timers and self.timers[0][0] <= now:
            _, conv_id = heapq.heappop(self.timers)
            conv = self.convs.get(conv_id)
            if conv is not None and conv.blocked_until <= now:
                self._maybe_ready(conv_id, conv, now)

    # -- scheduling sends ----------------------------------------------------------------------

    async def _schedule(self, now: float) -> int:
        if not self.ready or now < self.number_free_at:
            return 0
        if self.circuit_until:
            if now < self.circuit_until or self.inflight:
                return 0
            self.probing = True
        budget = 1 if self.probing else max(1, min(500, int(self.rate * self.s.limiter.horizon) + 1))
        picked: list[tuple[str, Conv]] = []
        seen: set[str] = set()
        while self.ready and len(picked) < budget:
            lane, seq, conv_id = heapq.heappop(self.ready)
            conv = self.convs.get(conv_id)
            if (conv is None or conv_id in seen or not conv.items or conv.busy or conv.blocked_until > now
                    or conv.rank() != (lane, seq)):
                continue  # a stale heap entry
            seen.add(conv_id)
            picked.append((conv_id, conv))
        if not picked:
            return 0
        items = [conv.items[0] for _, conv in picked]
        slots = await self.s.limiter.reserve(self.account.phone_number_id, self.rate,
                                             [i.message.recipient or "" for i in items])
        started = 0
        for (conv_id, conv), item, slot in zip(picked, items, slots):
            if slot.kind == "send":
                conv.busy = True
                LIMITER_WAIT.labels(limit="number").observe(slot.delay)
                task = asyncio.create_task(self._send(conv_id, conv, item, slot.delay))
                self.inflight.add(task)
                task.add_done_callback(self.inflight.discard)
                started += 1
            elif slot.kind == "recipient":
                LIMITER_WAIT.labels(limit="recipient").observe(slot.delay)
                conv.blocked_until = now + slot.delay
                heapq.heappush(self.timers, (conv.blocked_until, conv_id))
            else:
                heapq.heappush(self.ready, (*conv.rank(), conv_id))
                self.number_free_at = now + min(0.05, self.s.limiter.horizon / 4)
        return started

    async def _send(self, conv_id: str, conv: Conv, item: Item, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        await self._within_window()
        endpoint = "messages"
        started = time.perf_counter()
        try:
            body = item.body
            if item.media is not None:
                endpoint = "media"
                meta_id = await self._meta_media_id(item.media)
                endpoint = "messages"
                started = time.perf_counter()
                body = {**body, item.message.type: {**body[item.message.type], "id": meta_id}}
            result = await self.graph.send(self.account.phone_number_id, body)
        except GraphError as error:
            if endpoint == "messages":
                GRAPH_LATENCY.labels(endpoint="messages").observe(time.perf_counter() - started)
            await self._on_error(conv_id, conv, item, error)
        except Exception as exc:  # noqa: BLE001 - a bug must not lose the message: retry it like a 5xx
            log.exception("unexpected error while sending", message_id=str(item.message.id))
            await self._on_error(conv_id, conv, item, GraphError(f"internal error: {type(exc).__name__}",
                                                                 retryable=True, retry_after=5.0))
        else:
            GRAPH_LATENCY.labels(endpoint="messages").observe(time.perf_counter() - started)
            self._on_accepted(conv, item, result.wamid)
        finally:
            conv.busy = False
            self._maybe_ready(conv_id, conv, time.monotonic())
            self.wakeup.set()

    async def _within_window(self) -> None:
        """Wait until this send keeps the last second of this number's sends under its limit.

        The shared schedule spaces slots 1/rate apart, but a busy event loop wakes sleepers late
        and then all at once; counting what really left in the last second keeps any 1-second
        window (Meta's check) under the number's mps whatever the lateness.
        """
        window = self.sent_times
        limit = max(1, int(self.account.mps * self.s.settings.send_rate_margin))
        while True:
            now = time.monotonic()
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) < limit:
                window.append(now)
                return
            MISSED_SLOTS.inc()
            await asyncio.sleep(window[0] + 1.0 - now + 0.001)

    async def _meta_media_id(self, media: OutboundMedia) -> str:
        """Our file's media id on this number: uploaded once, then reused until it expires."""
        fresh = await OutboundMedia.get(media.id)
        media = fresh or media
        known = media.meta_id_for(self.account.id)
        if known:
            return known
        data = await self.s.runtime.outbox.media.read(media)
        started = time.perf_counter()
        try:
            meta_id = await self.graph.upload_media(self.account.phone_number_id, data, media.mime_type,
                                                    media.filename or f"file.{media.mime_type.split('/')[-1]}")
        finally:
            GRAPH_LATENCY.labels(endpoint="media").observe(time.perf_counter() - started)
        await self.s.runtime.outbox.media.remember_meta_id(media, self.account.id, meta_id)
        return meta_id

    # -- outcomes ------------------------------------------------------------------------------

    def _on_accepted(self, conv: Conv, item: Item, wamid: str) -> None:
        conv.items.popleft()
        self.in_memory -= 1
        self.accepted.append((item, wamid))
        self.failures = 0
        SENDS.labels(type=item.message.type, result="accepted").inc()
        if self.probing:
            self.probing = False
            self.circuit_until = 0.0
            self.circuit_span = self.s.settings.circuit_open_seconds
            # Kept in inflight: the loop holds no other reference, and _finish awaits it.
            task = asyncio.create_task(self._store_circuit(None))
            self.inflight.add(task)
            task.add_done_callback(self.inflight.discard)
            log.info("circuit closed: probe accepted", account_id=self.account_id)

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
        else:
            self.failures += 1
            if self.probing or self.failures >= self.s.settings.circuit_failures:
                await self._open_circuit(now)
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
        message = item.message
        message.attempts = item.attempts + (0 if gave_up else 1)
        await Message.find_one(Message.id == message.id).update({"$set": {"attempts": message.attempts}})
        if await advance_status(message, MessageStatus.FAILED, error=message_error):
            await self.s.runtime.live.publish(message.workspace_id, "message.updated", message_id=str(message.id),
                                              conversation_id=str(message.conversation_id), status="failed")
        SENDS.labels(type=message.type, result="failed").inc()
        self.finished.append(item.entry)
        self.known.discard(item.entry.message_id)  # stored as failed: a retry of it is a new send

    async def _flush(self) -> None:
        accepted, self.accepted = self.accepted, []
        finished, self.finished = self.finished, []
        spares, self.spares = self.spares, []
        if accepted:
            now = utcnow()
            ops = [UpdateOne({"_id": item.message.id, "status": MessageStatus.QUEUED.value},
                             {"$set": {"wamid": wamid, "status": MessageStatus.ACCEPTED.value,
                                       f"status_at.{MessageStatus.ACCEPTED.value}": now, "updated_at": now,
                                       "attempts": item.attempts + 1}})
                   for item, wamid in accepted]
            result = await Message.get_motor_collection().bulk_write(ops, ordered=False)
            if result.modified_count < len(ops):
                log.warning("accepted messages no longer queued (sent twice after a crash?)",
                            account_id=self.account_id, count=len(ops) - result.modified_count)
            wamids = [wamid for _, wamid in accepted]
            early = {p.wamid for p in await PendingStatus.find(In(PendingStatus.wamid, wamids)).to_list()}
            live = self.s.runtime.live
            publishes = []
            for item, wamid in accepted:
                message = item.message
                message.wamid, message.status = wamid, MessageStatus.ACCEPTED
                message.status_at[MessageStatus.ACCEPTED.value] = now
                if wamid in early:
                    await apply_pending_statuses(message)
                publishes.append(live.publish(message.workspace_id, "message.updated", message_id=str(message.id),
                                              conversation_id=str(message.conversation_id),
                                              status=message.status.value))
            await asyncio.gather(*publishes)
            finished.extend(item.entry for item, _ in accepted)
            # Stored as accepted: a later copy of these messages is now skipped by its status, and a
            # message retried after a failure may come back to this drainer.
            self.known.difference_update(item.entry.message_id for item, _ in accepted)
        if finished:
            await self.queue.done(self.account_id, finished)
        if spares:
            await self.queue.done(self.account_id, spares, spare=True)

    # -- account state --------------------------------------------------------------------------

    async def _reload_account(self) -> None:
        account = await WhatsAppAccount.get(self.account.id)
        if account is None or not account.enabled:
            self.hold = "disabled"
            return
        if account.access_token_encrypted != self.account.access_token_encrypted:
            self.graph = self.s.graph(account, self.http)
        self.account = account
        if account.health.token_state == "invalid":
            self.hold = "token"

    def _load_circuit(self, account: WhatsAppAccount) -> None:
        if not account.enabled:
            self.hold = "disabled"
        elif account.health.token_state == "invalid":
            self.hold = "token"
        until = account.health.circuit_open_until
        if until is not None:
            left = (as_utc(until) - utcnow()).total_seconds()
            self.circuit_until = time.monotonic() + max(0.0, left)

    async def _open_circuit(self, now: float) -> None:
        if self.probing:
            self.circuit_span = min(self.circuit_span * 2, CIRCUIT_MAX_SECONDS)
        self.probing = False
        self.failures = 0
        self.circuit_until = now + self.circuit_span
        CIRCUIT_OPENED.inc()
        log.warning("circuit open: sends held", account_id=self.account_id, seconds=self.circuit_span)
        await self._store_circuit(utcnow() + timedelta(seconds=self.circuit_span))

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

    async def _fail_all_for_missing_account(self) -> str:
        """The number was deleted: its queued messages can never go."""
        error = MessageError(title="number disconnected", agent_message="This number was disconnected; the "
                             "message was not sent.")
        while entries := await self.queue.pop(self.account_id, 500, 500):
            ids = [PydanticObjectId(e.message_id) for e in entries]
            for message in await Message.find(In(Message.id, ids)).to_list():
                if message.status is MessageStatus.QUEUED:
                    await advance_status(message, MessageStatus.FAILED, error=error)
            await self.queue.done(self.account_id, entries)
        await self.queue.release(self.account_id, self.token)
        return "missing"


def _send_error(error: GraphError) -> SendError:
    return SendError(code=error.code, title=error.title or type(error).__name__, detail=error.agent_message)


def _graph_body(message: Message) -> dict[str, Any]:
    """The send body; the content was checked by the outbox, so it is only assembled here."""
    body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual",
                            "to": message.recipient, "type": message.type, message.type: message.content}
    if message.reply_to_wamid:
        body["context"] = {"message_id": message.reply_to_wamid}
    return body


async def _enqueue_drain(runtime: Runtime, account_id: str) -> None:
    from app.queue import enqueue_drain

    if runtime.arq is not None:
        await enqueue_drain(runtime.arq, account_id)
