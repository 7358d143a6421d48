"""The send limiter (app/domains/outbox/pacing.py SendLimiter) against our own Redis.

Two limiters on two Redis connections stand for two worker processes. The scripts take "now"
from the caller here (instead of Redis's clock), so every slot's absolute time is known exactly
and the assertions hold whatever the machine's load.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest
from redis.asyncio import Redis

from app.domains.outbox.pacing import FenceLost, SendLimiter

T0 = 1_700_000_000.0
NUMBER = "15550001111"


@pytest.fixture
async def limiters(redis_server):
    """Factory: ``make(count, **options)`` -> that many limiters, each on its own connection."""
    clients: list[Redis] = []

    def make(count: int = 2, **options) -> list[SendLimiter]:
        made = []
        for _ in range(count):
            client = Redis.from_url(redis_server.url)
            clients.append(client)
            made.append(SendLimiter(client, **options))
        return made

    yield make
    for client in clients:
        await client.aclose()


def most_in_any_window(times: list[float], window: float = 1.0) -> int:
    """Meta's check: the most sends in any half-open window (t - 1 s, t]."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window - 1e-9:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_concurrent_callers_in_two_processes_never_exceed_the_rate_in_any_second(limiters):
    first, second = limiters(2)
    rate = 20.0
    granted: list[float] = []
    recipients = iter(range(100_000))
    for step in range(500):  # 5 s, both processes asking every 10 ms for more than the rate allows
        now = T0 + step * 0.01
        answers = await asyncio.gather(*(
            limiter.reserve(NUMBER, rate, [f"+1555{next(recipients)}" for _ in range(5)], now=now)
            for limiter in (first, second)))
        for slots in answers:
            granted += [now + slot.delay for slot in slots if slot.kind == "send"]
    granted.sort()
    assert most_in_any_window(granted) <= rate
    assert min(b - a for a, b in itertools.pairwise(granted)) >= 1 / rate - 1e-6  # evenly spaced
    assert len(granted) >= 5 * rate  # and the number is kept busy: every slot of the 5 s is used


async def test_slots_are_handed_out_only_up_to_the_horizon(limiters):
    (limiter,) = limiters(1, horizon=0.5)
    slots = await limiter.reserve(NUMBER, 20.0, [f"+1555{i}" for i in range(50)], now=T0)
    sends = [s for s in slots if s.kind == "send"]
    assert len(sends) == 11 and [s.kind for s in slots[11:]] == ["busy"] * 39
    assert [round(s.delay, 3) for s in sends] == [round(i * 0.05, 3) for i in range(11)]


async def test_one_recipient_gets_a_burst_then_one_message_per_interval(limiters):
    (limiter,) = limiters(1, recipient_burst=3, recipient_interval=6.0)
    slots = await limiter.reserve(NUMBER, 20.0, ["+1555000"] * 5 + ["+1555999"], now=T0)
    assert [s.kind for s in slots] == ["send", "send", "send", "recipient", "recipient", "send"]
    assert [round(s.delay, 6) for s in slots[3:5]] == [6.0, 6.0]  # until the first burst message is 6 s old
    assert slots[5].delay == pytest.approx(0.15)  # another customer takes the next number slot at once

    later = await limiter.reserve(NUMBER, 20.0, ["+1555000"] * 2, now=T0 + 6.0)
    assert [s.kind for s in later] == ["send", "recipient"]
    assert later[1].delay == pytest.approx(6.0)  # then one every 6 s


async def test_a_130429_pauses_the_number_for_every_process(limiters):
    first, second = limiters(2, horizon=0.5)
    await first.pause_number(NUMBER, 2.0, now=T0)
    assert [s.kind for s in await second.reserve(NUMBER, 20.0, ["+15551"], now=T0 + 1.0)] == ["busy"]
    slots = await second.reserve(NUMBER, 20.0, ["+15552", "+15553"], now=T0 + 1.6)
    assert [s.kind for s in slots] == ["send", "send"]
    assert T0 + 1.6 + slots[0].delay == pytest.approx(T0 + 2.0)  # nothing before the pause ends
    # A pause never shortens a schedule that already reaches further.
    await first.pause_number(NUMBER, 0.1, now=T0 + 1.6)
    assert (await first.reserve(NUMBER, 20.0, ["+15554"], now=T0 + 1.6))[0].delay == pytest.approx(0.5)


async def test_a_131056_pauses_that_recipient_only(limiters):
    first, second = limiters(2, recipient_burst=40, recipient_interval=6.0)
    await first.pause_recipient(NUMBER, "+1555000", 30.0, now=T0)
    slots = await second.reserve(NUMBER, 20.0, ["+1555000", "+1555001"], now=T0)
    assert [s.kind for s in slots] == ["recipient", "send"]
    assert slots[0].delay == pytest.approx(30.0) and slots[1].delay == 0.0


async def test_redis_clock_is_used_when_no_time_is_given(limiters):
    (limiter,) = limiters(1)
    slots = await limiter.reserve(NUMBER, 10.0, ["+15551", "+15552"])
    assert [s.kind for s in slots] == ["send", "send"]
    assert slots[0].delay == 0.0 and slots[1].delay == pytest.approx(0.1)  # one script, one "now"


async def test_a_fenced_reservation_grants_nothing_once_the_lease_is_another_drainers(limiters, redis_server):
    """A drainer whose lease expired, or whose Redis restarted empty, gets no slot: it sends nothing
    more of what it holds, since the number's next drainer will send those messages."""
    first, second = limiters(2)
    lease = "inbox:test:lease"
    await first.redis.set(lease, "mine")
    slots = await first.reserve(NUMBER, 20.0, ["+15551"], now=T0, fence=(lease, "mine"))
    assert [s.kind for s in slots] == ["send"]
    await first.redis.set(lease, "the next drainer's")
    with pytest.raises(FenceLost):
        await first.reserve(NUMBER, 20.0, ["+15552", "+15553"], now=T0, fence=(lease, "mine"))
    await first.redis.delete(lease)  # Redis lost its data
    with pytest.raises(FenceLost):
        await first.reserve(NUMBER, 20.0, ["+15552"], now=T0, fence=(lease, "mine"))
    # Nothing was booked by the refused reservations: the next slot is the one after the first's.
    slots = await second.reserve(NUMBER, 20.0, ["+15554"], now=T0)
    assert slots[0].delay == pytest.approx(0.05)
