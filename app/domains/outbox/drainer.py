"""The drain loop: one drainer per number sends its queued messages, in order, at its rate.

A drainer runs while its number has work: a worker's dispatcher (dispatcher.py) starts one when
a push finds no drainer holding the number's lease. It pops entries in batches (agent lane first), loads the
messages in one query, keeps one FIFO per conversation, and asks the shared limiter for send
slots for the heads of ready conversations. One message per conversation is in flight at a
time, so a conversation's messages reach Meta in the order they were queued, across retries
and hand-overs. Each send leaves at its slot's absolute time once the number's 1-s window, as
this process knows Meta may have stamped its sends, has room (ratelimit.SendWindow): a stall
on either side never turns into 130429s, and sends that woke late catch up. Acceptances are
written in bulk every 200 ms (acceptance.py); refusals are handled in failures.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import math
import time
import uuid
from typing import TYPE_CHECKING, Any, Literal

from beanie import PydanticObjectId
from beanie.operators import In
from bson import ObjectId
from bson.errors import InvalidId
from redis.exceptions import RedisError

from app import tracing
from app.db import DATABASE_DOWN, stored_id
from app.domains.contacts.models import Contact
from app.domains.messages.models import Message, MessageStatus
from app.domains.messages.status import opaque_of
from app.domains.outbox.acceptance import AcceptanceBatch
from app.domains.outbox.failures import Failures, GiveUp, Retry, fail_all_for_missing_account
from app.domains.outbox.items import OUTGOING_FIELDS, Conv, Item, Outgoing
from app.domains.outbox.lanes import LEASE_TTL_MS, Entry, RetryState
from app.domains.outbox.media import OutboundMedia
from app.domains.outbox.number import NumberState
from app.domains.outbox.pacing import FenceLost
from app.domains.outbox.sender import OutboxSender
from app.logging import get_logger
from app.metrics import LIMITER_WAIT, MISSED_SLOTS, count_send, observe_graph
from app.whatsapp import payloads
from app.whatsapp.errors import GraphError

OPTED_OUT = GraphError("CONTACT_OPTED_OUT", retryable=False,
                       agent_message="Not sent: the customer opted out of marketing messages after it was queued.")
"""Why a MARKETING template queued before the contact opted out is not sent (stored as failed)."""

if TYPE_CHECKING:
    from app.runtime import Runtime

log = get_logger(__name__)

DRAIN_SLICE_SECONDS = 50.0   # then hand over through the ready list: long backlogs spread over the workers
POLL_SECONDS = 0.02          # how often an active drainer looks for new agent replies
BUSY_POLL_SECONDS = 0.1      # ... while it holds messages (a new reply waits for a slot behind them anyway,
                             # up to the limiter's horizon; each look is a Redis round trip)
FLUSH_SECONDS = 0.2          # acceptances are written in bulk at most this late (each flush costs a bulk
                             # write, a query, two Redis calls: every 50 ms per number was ~10 % of the CPU)
ACCOUNT_RELOAD_SECONDS = 2.0  # notice a disabled number or a new token while draining
MAX_IN_MEMORY = 5000
LINGER_SECONDS = 5.0         # a drainer whose lanes are empty waits this long for more before it releases
                             # the number: an agent's next reply is sent without a new job, lease and read
BELL_SECONDS = 1.0           # how long one wait on the bell lasts while sending (then it pops anyway, and waits again)
MAX_BELL_SECONDS = 4.0       # the longest wait (while lingering: one wait for the rest of the linger), under
                             # the Redis client's 5-s socket timeout
DATABASE_RETRY_SECONDS = 2.0  # a drainer that lost MongoDB hands over to a new one this much later
LET_GO = ("lost", "redis")   # holds after which this drainer sends nothing more: the number is another's


async def drain(runtime: Runtime, account_id: str, *, linger: float = LINGER_SECONDS) -> str:
    """One activation of the number's drainer in this process (started by the dispatcher)."""
    return await Drainer(OutboxSender.of(runtime), account_id, linger=linger).run()


class Drainer:
    """One activation of a number's drainer (see the module docstring)."""

    def __init__(self, sender: OutboxSender, account_id: str, *, linger: float = LINGER_SECONDS) -> None:
        self.s = sender
        self.linger = linger
        self.idle_since: float | None = None  # when the lanes were last seen empty with nothing to send
        self.incoming: list[Entry] = []       # popped by the bell task, not yet taken in
        self._bell_task: asyncio.Task[None] | None = None
        self._bell_stop = False
        self.pop_lock = asyncio.Lock()
        self.account_id = account_id
        self.token = uuid.uuid4().hex
        self.queue = sender.queue
        self.convs: dict[str, Conv] = {}
        self.ready: list[tuple[int, int, str]] = []
        self.timers: list[tuple[float, str]] = []
        self.known: set[str] = set()
        self.inflight: set[asyncio.Task[None]] = set()
        self.batch = AcceptanceBatch(sender.queue, sender.runtime.live, account_id)
        self.woken = False                   # something happened since the loop last looked (_wake)
        self._waiter: asyncio.Future[None] | None = None
        self.seq = 0
        self.in_memory = 0
        self.number = NumberState(sender, account_id)  # account, hold, breaker, graph, window
        self.failures = Failures(sender, self.number)
        self.number_free_at = 0.0
        self.awaiting_slot = 0     # sends holding a slot that has not come yet
        self.last_pop = 0.0
        self.lanes_empty = False
        self.departures = asyncio.Lock()     # sends pass the window check one at a time, in slot order
        self.answer = asyncio.Event()        # set by every answer (a send in flight may free the window)

    # -- lifecycle ----------------------------------------------------------------------------

    async def run(self) -> str:
        try:
            account = await self.s.runtime.accounts.cached(self.account_id)
        except DATABASE_DOWN as exc:
            if await self.queue.claim(self.account_id, self.token) is None:
                return "busy"
            # The lease is ours: give it back (ready again 2 s later), or the number's sends would
            # wait for the lease to expire.
            log.warning("drainer lost MongoDB; trying again shortly", account_id=self.account_id,
                        error=type(exc).__name__)
            await self._finish("database")
            return "database"
        if account is None:
            if await self.queue.claim(self.account_id, self.token) is None:
                return "busy"
            return await fail_all_for_missing_account(self.queue, self.account_id, self.token)
        self.number.load(account)
        agent, bulk = self._pop_limits()
        first = await self.queue.claim(self.account_id, self.token, agent=agent, bulk=bulk)  # and the first pop
        if first is None:
            return "busy"
        self.incoming, self.lanes_empty = first, _emptied(first, agent, bulk)
        self.last_pop = time.monotonic()
        refresher = asyncio.create_task(self._keep_lease())
        self._bell_task = asyncio.create_task(self._bell())
        outcome = "drained"
        try:
            outcome = await self._loop()
        except asyncio.CancelledError:
            outcome = "stopping"  # the worker is stopping: hand everything back for another worker
            raise
        except RedisError as exc:
            log.warning("drainer lost Redis; the sweeper requeues from Mongo", account_id=self.account_id,
                        error=type(exc).__name__)
            self.number.hold = outcome = "redis"
        except DATABASE_DOWN as exc:
            # Hand the entries back and come back in a moment (not only at the sweeper's next pass):
            # sends made while the database was away go out as soon as it is back.
            log.warning("drainer lost MongoDB; trying again shortly", account_id=self.account_id,
                        error=type(exc).__name__)
            outcome = "database"
        except Exception:
            # A bug: hand the entries back and release; the sweeper tries again in a few seconds.
            log.exception("drainer failed", account_id=self.account_id)
            outcome = "hold"
        finally:
            refresher.cancel()
            # At once: what the bell may have popped stays in ``taken``, which the hand-back keeps and
            # the next drainer's claim puts back (only a release empties it, after a graceful stop).
            await self._stop_bell(graceful=False)
            await self._finish(outcome)
        return outcome

    async def _finish(self, outcome: str) -> None:
        if self.inflight:
            await asyncio.gather(*self.inflight, return_exceptions=True)
        try:
            try:
                await self._flush_while_database_returns()
            except RedisError:
                raise
            except Exception:
                log.exception("could not record sends", account_id=self.account_id)
            if outcome in ("drained", "lost", "redis"):
                return  # "lost": the next drainer put our entries back; "redis": the sweeper rebuilds
            left = sorted((item for conv in self.convs.values() for item in conv.items), key=lambda i: i.seq)
            entries = [i.entry for i in left] + self.incoming  # the bell's last pop comes after what we hold
            self.incoming = []
            # A slice's end or a stopping worker: the next drainer starts at once (ready); MongoDB away:
            # in a moment ("woken", readied below); a hold (token, number disabled): when it is lifted.
            then: Literal["release", "ready", "woken"] = "release"
            if outcome in ("slice", "stopping"):
                then = "ready"
            elif outcome == "database":
                then = "woken"
            handed = await self.queue.hand_back(self.account_id, self.token, entries, then=then)
            if handed and then == "woken":
                await asyncio.sleep(DATABASE_RETRY_SECONDS)
                await self.queue.ready(self.account_id)
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
                self.number.hold = "lost"
                self._wake()
                return

    async def _bell(self) -> None:
        """Wait on the number's bell and pop in the same round trip (lanes.py): what is pushed while
        this drainer runs reaches it at once, without polling."""
        while not self._bell_stop:
            if not self.lanes_empty:
                await asyncio.sleep(POLL_SECONDS)  # the loop pops by itself while the lanes have more
                continue
            try:
                async with self.pop_lock:  # pops are taken in in the order Redis made them
                    if not self.lanes_empty:
                        continue
                    agent, bulk = self._pop_limits()
                    entries = await self.queue.wait_and_pop(self.account_id, self.token, agent, bulk,
                                                            self._bell_wait())
                    if entries is None:  # the lease is gone (expired, Redis lost its data)
                        self.number.hold = "lost"
                        self._wake()
                        return
                    if entries:
                        self.incoming.extend(entries)
                        self.lanes_empty = _emptied(entries, agent, bulk)
                        self._wake()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the loop's own calls notice a lost Redis
                log.info("outbox bell: trying again", account_id=self.account_id, error=type(exc).__name__)
                await asyncio.sleep(BELL_SECONDS)

    def _bell_wait(self) -> float:
        """One wait on the bell: a second while sending; while lingering, the rest of the linger (one
        round trip rather than one a second)."""
        if self.idle_since is None:
            return BELL_SECONDS
        left = self.linger - (time.monotonic() - self.idle_since)
        return min(MAX_BELL_SECONDS, max(BELL_SECONDS, left))

    async def _stop_bell(self, *, graceful: bool = True) -> None:
        """End the bell task. ``graceful`` (before a release, which empties ``taken``): after its
        current wait, which a lingering drainer times to end with the linger, so that a pop it made
        is taken in, not dropped with ``taken``."""
        task = self._bell_task
        if task is None or task.done():
            return
        self._bell_stop = True
        if graceful:
            done, _ = await asyncio.wait([task], timeout=MAX_BELL_SECONDS + 2.0)
            if done:
                return
        task.cancel()
        await asyncio.wait([task], timeout=1.0)

    async def _flush_while_database_returns(self) -> None:
        """Record what WhatsApp accepted before letting go. MongoDB away: keep the lease (so no other
        drainer sends these messages again) and try again each second for up to a lease's length;
        past that the sends stay queued and may go twice (as after a crash)."""
        deadline = time.monotonic() + LEASE_TTL_MS / 1000
        while True:
            try:
                await self._flush()
                return
            except DATABASE_DOWN as exc:
                if time.monotonic() > deadline:
                    raise
                log.info("sends accepted but not recorded yet (MongoDB away); trying again",
                         account_id=self.account_id, error=type(exc).__name__)
                await asyncio.sleep(1.0)
                await self.queue.refresh(self.account_id, self.token)

    async def _flush(self) -> None:
        stored = await self.batch.flush()
        # Stored as accepted: a later copy of these messages is skipped by its status, and a message
        # retried after a failure may come back to this drainer.
        self.known.difference_update(stored)

    async def _loop(self) -> str:
        deadline = time.monotonic() + DRAIN_SLICE_SECONDS
        next_reload = time.monotonic() + ACCOUNT_RELOAD_SECONDS
        next_flush = 0.0
        next_expiry = 0.0
        while True:
            now = time.monotonic()
            self.woken = False  # from here on, a wake-up means there is something new to look at
            if self.number.hold:
                return "lost" if self.number.hold in LET_GO else "hold"
            if now >= next_reload:
                await self.number.reload()
                next_reload = now + ACCOUNT_RELOAD_SECONDS
                continue
            if now >= deadline:
                return "slice"
            if now >= next_flush and self.batch:
                await self._flush()
                next_flush = now + FLUSH_SECONDS
            await self._refill(now)
            self._release_timers(now)
            if now >= next_expiry and self.number.breaker.holds(now, bool(self.inflight)):
                await self._expire_held()
                next_expiry = now + 1.0
            scheduled = await self._schedule(now)
            if not self.in_memory and not self.inflight and self.lanes_empty and not self.incoming:
                if self.idle_since is None:
                    self.idle_since = now
                    await self._flush()  # what was accepted is recorded now, not after the linger
                if now - self.idle_since < self.linger and now < deadline:
                    await self._idle(self.linger - (now - self.idle_since))
                    continue
                await self._flush()
                await self._stop_bell()
                if self.incoming:  # pushed while the bell was stopping
                    self.idle_since = None
                    self._bell_stop = False
                    self._bell_task = asyncio.create_task(self._bell())
                    continue
                if await self.queue.release(self.account_id, self.token):
                    return "drained"
                self.lanes_empty = False
                self._bell_stop = False
                self._bell_task = asyncio.create_task(self._bell())
                continue
            self.idle_since = None
            if not scheduled:
                # New entries come with the bell: with the lanes seen empty, nothing to poll for.
                timeout = BELL_SECONDS if self.lanes_empty else POLL_SECONDS
                if self.timers:
                    timeout = min(timeout, max(0.0, self.timers[0][0] - now))
                if self.batch:  # acceptances are recorded on time
                    timeout = min(timeout, max(0.0, next_flush - now))
                await self._idle(self.number.breaker.wait_hint(now, timeout))

    def _wake(self) -> None:
        self.woken = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _idle(self, timeout: float) -> None:
        """Sleep until ``_wake`` or the timeout; at once if woken since the loop's last look (a send
        that ended while the loop was busy must not wait for the timeout). A bare future and timer:
        ``asyncio.wait_for(event.wait())`` made a task per call, i.e. per send."""
        if self.woken:
            self.woken = False
            return
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(timeout, _settle, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None
            self.woken = False

    # -- filling memory from the lanes ---------------------------------------------------------

    def _pop_limits(self) -> tuple[int, int]:
        """How many entries to take from the agent and the bulk lane."""
        rate = self.rate
        bulk = 0
        if self.in_memory < max(50, int(rate * 2)):
            bulk = min(MAX_IN_MEMORY - self.in_memory, max(50, int(rate * 2)))
        return 100, bulk

    async def _refill(self, now: float) -> None:
        entries, self.incoming = self.incoming, []
        if not entries:
            if self.lanes_empty:
                return  # what is pushed from now on rings the bell (_bell pops it)
            if self.in_memory and now - self.last_pop < BUSY_POLL_SECONDS:
                return
            agent, bulk = self._pop_limits()
            self.last_pop = now
            async with self.pop_lock:
                popped = await self.queue.pop(self.account_id, self.token, agent, bulk)
                if popped is None:  # the lease is gone (expired, Redis lost its data)
                    self.number.hold = "lost"
                    return
                entries = popped
                self.lanes_empty = _emptied(entries, agent, bulk)
            if not entries:
                return
        fresh = []
        for entry in entries:
            if entry.message_id in self.known:
                self.batch.spares.append(entry)  # the same message queued twice (a sweep): send it once
            else:
                self.known.add(entry.message_id)
                fresh.append(entry)
        if not fresh:
            return
        # A message the API has just queued comes with what its send needs (lanes.py, ``body``);
        # the others are read: only what a send needs, and only if still queued (a message sent,
        # failed or deleted meanwhile is not read at all).
        docs: dict[str, Outgoing] = {}
        for entry in fresh:
            if entry.body is not None:
                with contextlib.suppress(ValueError, TypeError, InvalidId):
                    docs[entry.message_id] = Outgoing.decode(entry.body)
        ids = [ObjectId(e.message_id) for e in fresh if e.message_id not in docs]
        if ids:
            raw = await Message.get_motor_collection().find(
                {"_id": {"$in": ids}, "status": MessageStatus.QUEUED.value, "direction": "outbound"},
                projection=OUTGOING_FIELDS).to_list(None)
            docs.update((str(r["_id"]), Outgoing.from_raw(r)) for r in raw)
        states = [e.retry for e in fresh]  # read by the pop
        media_ids = {m.stored_file_id for m in docs.values()} - {None}
        media = {}
        if media_ids:
            media = {m.id: m for m in await OutboundMedia.find(In(OutboundMedia.id, list(media_ids))).to_list()}
        wall = time.time()
        for entry, state in zip(fresh, states, strict=True):
            message = docs.get(entry.message_id)
            if message is None:  # gone, or no longer queued (sent, failed, or a copy of one)
                self.batch.finished.append(entry)
                self.known.discard(entry.message_id)
                continue
            self.seq += 1
            item = Item(entry, message, _graph_body(message), self.seq, first_at=wall)
            if message.stored_file_id is not None:
                item.media = media.get(PydanticObjectId(message.stored_file_id))
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
    def fence(self) -> tuple[str, str]:
        """Send slots are granted only while the lease is this drainer's (pacing.py)."""
        return self.queue.keys(self.account_id)["lease"], self.token

    @property
    def rate(self) -> float:
        return max(0.1, self.number.account.mps * self.s.settings.send_rate_margin)

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
        if self.number.breaker.holds(now, bool(self.inflight)):
            return 0
        # Ask only for the slots the horizon still has room for: the sends already holding one
        # fill it (this drainer alone sends for the number), so a full schedule costs no round trip.
        capacity = min(500, int(self.rate * self.s.limiter.horizon) + 1)
        room = capacity - self.awaiting_slot
        if room <= 0 or (room < capacity // 4 and self.awaiting_slot):
            # A full pipeline, or room for too few to be worth a round trip yet. Not more: the
            # slots booked ahead are what a stall here (GC, CPU taken by others) is caught up
            # from; a stall longer than them loses the number's time for good.
            return 0
        budget = 1 if self.number.breaker.probing else room
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
        opted_out = await self._opted_out([conv.items[0] for _, conv in picked])
        if opted_out:  # refused without taking a slot of the number's rate
            for conv_id, conv in picked:
                if conv.items[0].message.id in opted_out:
                    conv.busy = True
                    task = asyncio.create_task(self._refuse(conv_id, conv, conv.items[0], OPTED_OUT))
                    self.inflight.add(task)
                    task.add_done_callback(self.inflight.discard)
            picked = [(conv_id, conv) for conv_id, conv in picked if conv.items[0].message.id not in opted_out]
            if not picked:
                return 0
        items = [conv.items[0] for _, conv in picked]
        try:
            slots = await self.s.limiter.reserve(self.number.account.phone_number_id, self.rate,
                                                 [i.message.recipient or "" for i in items], fence=self.fence)
        except FenceLost:  # another drainer has, or will have, what we hold: send none of it
            self.number.hold = "lost"
            return 0
        # Slots are offsets from Redis's clock when the script ran; counting them from its answer
        # (a fraction of a millisecond later) keeps each send at or after its slot, and each send's
        # due time absolute, so a late wake-up never pushes the later ones back.
        answered_at = time.monotonic()
        started = 0
        for (conv_id, conv), item, slot in zip(picked, items, slots, strict=True):
            if slot.kind == "send":
                conv.busy = True
                self.awaiting_slot += 1
                LIMITER_WAIT.labels(limit="number").observe(slot.delay)
                task = asyncio.create_task(self._send(conv_id, conv, item, answered_at + slot.delay))
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

    async def _send(self, conv_id: str, conv: Conv, item: Item, due: float) -> None:
        try:
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        finally:
            self.awaiting_slot -= 1
        if self.number.hold in LET_GO:
            # The number was lost while this send waited for its slot: it stays queued for whoever
            # has the number now (a put-back or the sweeper's rebuild), who would send it too.
            conv.busy = False
            return
        record = await self._depart()
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
            try:
                with tracing.span("whatsapp.send", item.message.trace, message_id=str(item.message.id),
                                  message_type=item.message.type, request_id=item.message.cause):
                    result = await self.number.graph.send(self.number.account.phone_number_id, body)
            finally:
                self._answered(record)
        except GraphError as error:
            if endpoint == "messages":
                observe_graph("messages", time.perf_counter() - started)
            await self._on_error(conv_id, conv, item, error)
        except Exception as exc:  # a bug must not lose the message: retry it like a 5xx
            log.exception("unexpected error while sending", message_id=str(item.message.id))
            await self._on_error(conv_id, conv, item, GraphError(f"internal error: {type(exc).__name__}",
                                                                 retryable=True, retry_after=5.0))
        else:
            observe_graph("messages", time.perf_counter() - started)
            if self._on_accepted(conv, item, result.wamid, result.message_status):
                await self.number.circuit_closed()
        finally:
            if record[1] == math.inf:  # the media upload failed: nothing was sent
                self._answered(record)
            conv.busy = False
            self._maybe_ready(conv_id, conv, time.monotonic())
            self._wake()

    async def _refuse(self, conv_id: str, conv: Conv, item: Item, error: GraphError) -> None:
        """Fail ``item`` without sending it (``error`` says why, as Meta's answer would)."""
        try:
            await self._on_error(conv_id, conv, item, error)
        finally:
            conv.busy = False
            self._maybe_ready(conv_id, conv, time.monotonic())
            self._wake()

    @staticmethod
    async def _opted_out(items: list[Item]) -> set[ObjectId]:
        """The messages about to be sent whose contact opted out of marketing after the template was
        queued (a STOP, Meta's opt-out, an agent or an import): one read for the batch, of MARKETING
        templates only, just before their slots are taken."""
        contacts: dict[ObjectId, list[ObjectId]] = {}
        for item in items:
            if item.message.marketing and item.message.contact_id is not None:
                contacts.setdefault(item.message.contact_id, []).append(item.message.id)
        if not contacts:
            return set()
        found = Contact.get_motor_collection().find(
            {"_id": {"$in": list(contacts)}, "opted_out_marketing": True}, {"_id": 1})
        return {message_id async for raw in found for message_id in contacts[raw["_id"]]}

    async def _expire_held(self) -> None:
        """The circuit is open (WhatsApp keeps failing for this number): a message that has waited
        longer than the retry window since it was queued fails, with a sentence an agent understands,
        instead of staying queued for ever; an admin can retry it (in bulk) once the number works."""
        window = self.s.settings.send_retry_window_seconds
        cutoff = time.time() - window
        error = GraphError("circuit open", code=None, retryable=True)
        sentence = (f"WhatsApp kept failing for this number; not sent after waiting {int(window)} s. "
                    "Retry it once the number works again.")
        for conv in self.convs.values():
            while conv.items and not conv.busy and conv.items[0].message.queued_at < cutoff:
                item = conv.items.popleft()
                self.in_memory -= 1
                await self.failures.record_failed(item, error, gave_up=True, sentence=sentence)
                self.batch.finished.append(item.entry)
                self.known.discard(item.entry.message_id)

    async def _on_error(self, conv_id: str, conv: Conv, item: Item, error: GraphError) -> None:
        """Apply what the refusal means (failures.Failures.decide) to this drainer's conversation."""
        outcome = await self.failures.decide(item, error)
        if isinstance(outcome, Retry):
            conv.blocked_until = time.monotonic() + outcome.delay
            heapq.heappush(self.timers, (conv.blocked_until, conv_id))
            await self.queue.save_retry_state(self.account_id, item.entry.message_id,
                                              RetryState(item.attempts, item.first_at, time.time() + outcome.delay))
        elif isinstance(outcome, GiveUp):
            conv.items.popleft()
            self.in_memory -= 1
            await self.failures.record_failed(item, error, gave_up=outcome.gave_up)
            self.batch.finished.append(item.entry)
            self.known.discard(item.entry.message_id)  # stored as failed: a retry of it is a new send
        # Hold: the message stays at the head of its conversation; the loop sees number.hold and stops.

    def _answered(self, record: list[float]) -> None:
        self.number.window.answered(record, time.monotonic())
        self.answer.set()

    async def _depart(self) -> list[float]:
        """Wait until Meta's 1-s window has room for one more send (ratelimit.SendWindow), then leave.

        The schedule runs a little under the number's mps, so this rarely waits: only when stamps
        may have bunched (a stall on Meta's side, seen as a slow answer, or here). Sends that woke
        late leave at once while the window allows it, catching up with the schedule.
        """
        async with self.departures:  # FIFO: sends pass in the order their slots came
            now = time.monotonic()
            wait = self.number.window.wait(now)
            if wait == 0.0:
                return self.number.window.depart(now)
            MISSED_SLOTS.inc()
            held = now
            while wait != 0.0:
                if wait is None:  # the window is full of sends still in flight: wait for an answer
                    self.answer.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.answer.wait(), 0.05)
                else:
                    await asyncio.sleep(wait)
                now = time.monotonic()
                wait = self.number.window.wait(now)
            LIMITER_WAIT.labels(limit="window").observe(now - held)
            return self.number.window.depart(now)

    async def _meta_media_id(self, media: OutboundMedia) -> str:
        """Our file's media id on this number: uploaded once, then reused until it expires."""
        fresh = await OutboundMedia.get(media.id)
        media = fresh or media
        known = media.meta_id_for(stored_id(self.number.account))
        if known:
            return known
        data = await self.s.runtime.outbox.media.read(media)
        started = time.perf_counter()
        try:
            meta_id = await self.number.graph.upload_media(self.number.account.phone_number_id, data, media.mime_type,
                                                    media.filename or f"file.{media.mime_type.split('/')[-1]}")
        finally:
            observe_graph("media", time.perf_counter() - started)
        await self.s.runtime.outbox.media.remember_meta_id(media, stored_id(self.number.account), meta_id)
        return meta_id

    def _on_accepted(self, conv: Conv, item: Item, wamid: str, message_status: str | None = None) -> bool:
        """Queue the acceptance for the next flush; True when it closed the circuit breaker."""
        conv.items.popleft()
        self.in_memory -= 1
        self.batch.accepted.append((item, wamid, message_status))
        count_send(item.message.type, "accepted")
        log.info("sent", message_id=str(item.message.id), wamid=wamid, account_id=self.account_id,
                 caused_by=item.message.cause)
        return self.number.breaker.succeeded()


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _emptied(entries: list[Entry], agent: int, bulk: int) -> bool:
    """Whether a pop that asked for (agent, bulk) and got ``entries`` saw both lanes empty: fewer than
    asked from a lane means it is empty now; a lane not asked (0) is unknown."""
    return (sum(e.lane == "a" for e in entries) < agent
            and bulk > 0 and sum(e.lane == "b" for e in entries) < bulk)


def _graph_body(message: Outgoing) -> dict[str, Any]:
    """The send body; the content was checked by the outbox, so it is only assembled here."""
    body: dict[str, Any] = {"messaging_product": "whatsapp", **payloads.recipient_fields(message.recipient or ""),
                            "type": message.type, message.type: message.content,
                            "biz_opaque_callback_data": opaque_of(message.id)}
    if message.reply_to_wamid:
        body["context"] = {"message_id": message.reply_to_wamid}
    return body

