"""Pacing of sends: one schedule per number shared through Redis (SendLimiter), a GCRA per
recipient, and each drainer's own check of Meta's 1-second window (SendWindow)."""

from __future__ import annotations

import math
from collections import deque

from redis.asyncio import Redis

# --- outbound sends: one schedule per number, a GCRA per recipient ------------------------------
#
# Every worker process asks the same Redis for send slots, so their combined rate is the
# number's. The number's key holds its "theoretical arrival time" (TAT, µs on Redis's clock):
# each granted send gets the slot at TAT and pushes TAT one interval on, so slots are spaced
# exactly 1/rate apart and no 1-second window can hold more than `rate` of them. Slots are
# handed out at most `horizon` ahead (0.75 s): a worker that dies wastes little, and an agent
# reply behind a bulk backlog waits at most that; but a drainer stalled (GC, CPU taken by other
# processes) for longer than the slots it booked loses its number's time for good, and 0.5 s
# lost ~3 % of it on a loaded machine (bench/outbound.py). Each recipient has
# its own GCRA (a burst, then one per interval), checked at the slot time, which is what Meta
# enforces with 131056. Answers are offsets from Redis's clock, so worker clocks never matter.
# The last argument of each script is "now" in µs, or -1 for Redis's clock (tests pass their own).
#
# A reservation can be fenced: given a key and a token (the drainer's lease, lanes.py), it grants
# nothing unless the key still holds the token. A drainer that lost its number (its lease expired,
# or Redis restarted empty and the sweeper handed its messages to a new drainer) learns it from the
# reservation it needs anyway, in the same round trip, before it sends any more of what it holds.
_NOW = """
local now = tonumber(ARGV[#ARGV])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
"""

_RESERVE_SLOTS = _NOW + """
local interval = tonumber(ARGV[1])
local horizon = tonumber(ARGV[2])
local r_interval = tonumber(ARGV[3])
local r_tolerance = tonumber(ARGV[4])
local last = #KEYS
if ARGV[5] ~= '' then
  if redis.call('GET', KEYS[last]) ~= ARGV[5] then return {'lost'} end
  last = last - 1
end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local out = {}
for i = 2, last do
  if tat - now > horizon then
    out[#out + 1] = 'busy'
  else
    local r_tat = tonumber(redis.call('GET', KEYS[i]) or '0')
    if r_tat < tat then r_tat = tat end
    if r_tat - tat > r_tolerance then
      out[#out + 1] = 'r' .. tostring(r_tat - r_tolerance - now)
    else
      local r_new = r_tat + r_interval
      redis.call('SET', KEYS[i], string.format('%d', r_new), 'PX', math.floor((r_new - now) / 1000) + 1000)
      out[#out + 1] = 's' .. tostring(tat - now)
      tat = tat + interval
    end
  end
end
redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.floor((tat - now) / 1000) + 1000)
return out
"""

# Push a key's TAT to at least now + delay (a 130429 pauses the number; a 131056 the recipient).
_PUSH_BACK = _NOW + """
local until_ = now + tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < until_ then
  redis.call('SET', KEYS[1], string.format('%d', until_), 'PX', math.floor((until_ - now) / 1000) + 1000)
end
return 1
"""


class FenceLost(Exception):
    """The fence of a reservation no longer holds its token: nothing was reserved."""


class Slot:
    """One answer of :meth:`SendLimiter.reserve` for one message."""

    __slots__ = ("delay", "kind")

    def __init__(self, kind: str, delay: float) -> None:
        self.kind = kind  # "send" at delay; "recipient": that customer is paced until delay; "busy": ask later
        self.delay = delay

    def __repr__(self) -> str:
        return f"Slot({self.kind}, {self.delay:.3f})"


class SendLimiter:
    """Send slots for a number (``rate`` per second, shared by every process) and per-recipient pacing."""

    def __init__(self, redis: Redis, *, recipient_burst: int = 40, recipient_interval: float = 6.0,
                 horizon: float = 0.75, prefix: str = "inbox:rl") -> None:
        self.redis = redis
        self.prefix = prefix
        self.horizon = horizon
        self.recipient_interval_us = int(recipient_interval * 1_000_000)
        self.recipient_tolerance_us = int((recipient_burst - 1) * recipient_interval * 1_000_000)
        self._reserve = redis.register_script(_RESERVE_SLOTS)
        self._push_back = redis.register_script(_PUSH_BACK)

    def number_key(self, number: str) -> str:
        return f"{self.prefix}:n:{number}"

    def recipient_key(self, number: str, recipient: str) -> str:
        return f"{self.prefix}:r:{number}:{recipient}"

    async def reserve(self, number: str, rate: float, recipients: list[str], *, now: float | None = None,
                      fence: tuple[str, str] | None = None) -> list[Slot]:
        """A slot (or the reason there is none) for one message to each of ``recipients``, in order.

        Once a message gets "busy", every later one does too: the number's schedule is full
        for the next ``horizon`` seconds, so the caller asks again a little later. ``fence`` (a key
        and a token): raise FenceLost, reserving nothing, unless the key holds the token. ``now``
        (seconds) replaces Redis's clock, for tests.
        """
        if not recipients:
            return []
        interval_us = max(1, int(1_000_000 / rate))
        keys = [self.number_key(number), *(self.recipient_key(number, r) for r in recipients)]
        if fence is not None:
            keys.append(fence[0])
        answers = await self._reserve(
            keys=keys,
            args=[interval_us, int(self.horizon * 1_000_000), self.recipient_interval_us, self.recipient_tolerance_us,
                  fence[1] if fence is not None else "", _micros(now)],
        )
        if answers and answers[0] in (b"lost", "lost"):
            raise FenceLost(fence[0] if fence is not None else "")
        slots = []
        for raw in answers:
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
            if text == "busy":
                slots.append(Slot("busy", 0.0))
            else:
                slots.append(Slot("send" if text[0] == "s" else "recipient", max(0.0, float(text[1:]) / 1_000_000)))
        return slots

    async def pause_number(self, number: str, seconds: float, *, now: float | None = None) -> None:
        """Meta said 130429: no slot for this number before ``seconds`` from now, in any process."""
        await self._push_back(keys=[self.number_key(number)], args=[int(seconds * 1_000_000), _micros(now)])

    async def pause_recipient(self, number: str, recipient: str, seconds: float, *, now: float | None = None
                              ) -> None:
        """Meta said 131056: this customer gets nothing from this number for ``seconds``."""
        await self._push_back(keys=[self.recipient_key(number, recipient)],
                              args=[int((seconds * 1_000_000) + self.recipient_tolerance_us), _micros(now)])


def _micros(now: float | None) -> int:
    return -1 if now is None else int(now * 1_000_000)


# --- outbound sends: this process's own check of Meta's 1-second window -------------------------
#
# The shared schedule above spaces slots 1/rate apart on Redis's clock, but what Meta counts is
# when each send *reached* it: "no more than mps sends stamped in the second before this one".
# A stall on either side (a GC pause in Meta's simulator, a busy event loop here) moves stamps
# by tens of milliseconds, and a send stamped late bunches with the ones a second later: a
# 130429, which then pauses the whole number. So before each send leaves, the drainer checks the
# window Meta will check, with what it knows of the stamps of its earlier sends: a send in flight
# may have been stamped at any moment (it counts); an answered one was stamped before its answer
# came, less the fastest round trip seen lately (the part of any round trip that is the network
# and the server's own work, not a stall). Sends leave at once while the window has room, so a
# late send catches up instead of pushing every later one back.


class SendWindow:
    """One number's sends from this process over the last second, as Meta may have stamped them.

    ``wait(now)`` says how long the next send must wait (0: it may leave; None: until an answer
    comes), ``depart(now)`` records a send leaving, ``answered(record, now)`` its answer.
    Times are ``time.monotonic()`` seconds; ``slack`` covers clock-rate differences.
    """

    __slots__ = ("__weakref__", "_current", "_period_ends", "_previous", "_samples", "floor", "limit", "records", "span")

    FLOOR_PERIOD = 5.0   # the fastest round trip is taken over the last 5-10 s ...
    FLOOR_SAMPLES = 20   # ... from enough answers: the first ones (new connections) are slow, and a
    # floor larger than the true fastest round trip would place stamps too early (too few counted)

    def __init__(self, limit: int, *, span: float = 1.0, slack: float = 0.002) -> None:
        self.limit = max(1, int(limit))
        self.span = span + slack
        self.records: deque[list[float]] = deque()  # [departed, latest possible stamp (inf while in flight)]
        self.floor = 0.0  # the fastest round trip of this period and the last (0 until known)
        self._previous = self._current = math.inf
        self._samples = 0
        self._period_ends = 0.0

    def wait(self, now: float) -> float | None:
        records = self.records
        horizon = now - self.span
        while records and records[0][1] <= horizon:
            records.popleft()
        if len(records) < self.limit:
            return 0.0
        # Rare (the schedule runs a little under the limit): count exactly, answers come out of order.
        stamps = sorted(r[1] for r in records if r[1] > horizon)
        excess = len(stamps) - self.limit + 1
        if excess <= 0:
            return 0.0
        expiry = stamps[excess - 1]
        return None if expiry == math.inf else max(0.0, expiry + self.span - now)

    def remaining(self, now: float) -> int:
        """Sends the window has room for now (the whatsapp_rate_limit_remaining gauge)."""
        horizon = now - self.span
        return max(0, self.limit - sum(1 for r in self.records if r[1] > horizon))

    def depart(self, now: float) -> list[float]:
        record = [now, math.inf]
        self.records.append(record)
        return record

    def answered(self, record: list[float], now: float) -> None:
        rtt = now - record[0]
        if now >= self._period_ends:
            if self._samples >= self.FLOOR_SAMPLES:
                self._previous = self._current
            self._current, self._samples = rtt, 1
            self._period_ends = now + self.FLOOR_PERIOD
        else:
            self._samples += 1
            self._current = min(self._current, rtt)
        floor = self._previous if self._samples < self.FLOOR_SAMPLES else min(self._previous, self._current)
        self.floor = 0.0 if floor == math.inf else floor
        record[1] = max(record[0], now - self.floor)
