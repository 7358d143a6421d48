"""The outbox's Redis side (lanes, lease, hand-over) against our own Redis: crash safety of `taken`."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from app.domains.outbox.lanes import Entry, OutboxQueue, RetryState

ACCOUNT = "acc1"


@pytest.fixture
async def queue(redis_server):
    client = Redis.from_url(redis_server.url)
    yield OutboxQueue(client)
    await client.aclose()


async def test_a_message_pushed_twice_is_two_entries_and_the_spare_never_drops_the_live_one(queue):
    # The API and a sweep push the same message at once; a drainer takes both copies, keeps the
    # first in memory (waiting for its slot) and finishes the spare. Then it dies.
    await queue.push(ACCOUNT, "m1", "c1", "a")
    await queue.push(ACCOUNT, "m1", "c1", "a")
    assert await queue.claim(ACCOUNT, "drainer-1") is not None
    first, spare = await queue.pop(ACCOUNT, "drainer-1", 10, 10) or []
    assert (first.message_id, spare.message_id) == ("m1", "m1") and first.raw != spare.raw
    await queue.save_retry_state(ACCOUNT, "m1", RetryState(2, 1.0, 2.0))
    await queue.done(ACCOUNT, [spare], spare=True)
    assert (await queue.retry_states(ACCOUNT, ["m1"]))[0] == RetryState(2, 1.0, 2.0)  # still being retried

    await queue.redis.delete(queue.keys(ACCOUNT)["lease"])  # the dead drainer's lease expires
    assert await queue.claim(ACCOUNT, "drainer-2") is not None
    assert [e.raw for e in await queue.pop(ACCOUNT, "drainer-2", 10, 10) or []] == [first.raw]  # the live copy came back


async def test_finishing_an_entry_forgets_its_retry_state_and_bulk_count(queue):
    await queue.push(ACCOUNT, "m1", "c1", "b")
    await queue.push(ACCOUNT, "m2", "c1", "a")  # an agent reply behind bulk joins the bulk lane
    assert await queue.claim(ACCOUNT, "d") is not None
    entries = await queue.pop(ACCOUNT, "d", 10, 10) or []
    assert [(e.message_id, e.lane) for e in entries] == [("m1", "b"), ("m2", "b")]
    await queue.save_retry_state(ACCOUNT, "m1", RetryState(1, 1.0, 2.0))
    await queue.done(ACCOUNT, entries)
    assert await queue.retry_states(ACCOUNT, ["m1"]) == [None]
    assert await queue.redis.hgetall(queue.keys(ACCOUNT)["bulkconv"]) == {}
    assert await queue.release(ACCOUNT, "d")


async def test_a_dead_drainers_entries_come_back_in_front_in_order(queue):
    for i in range(4):
        await queue.push(ACCOUNT, f"m{i}", f"c{i}", "a")
    assert await queue.claim(ACCOUNT, "d1") is not None
    taken = await queue.pop(ACCOUNT, "d1", 2, 0) or []
    await queue.push(ACCOUNT, "m4", "c4", "a")
    await queue.redis.delete(queue.keys(ACCOUNT)["lease"])
    assert await queue.claim(ACCOUNT, "d2") is not None
    assert await queue.pop(ACCOUNT, "d1", 10, 0) is None  # d1 lost the number: it takes nothing more
    again = await queue.pop(ACCOUNT, "d2", 10, 0) or []
    assert [e.message_id for e in again] == ["m0", "m1", "m2", "m3", "m4"]
    assert [e.raw for e in again[:2]] == [e.raw for e in taken]


async def test_a_number_without_a_drainer_is_put_on_the_ready_list_once_and_its_claim_takes_the_first_entries(queue):
    assert await queue.push(ACCOUNT, "m1", "c1", "a") is True   # no drainer: the number is readied
    assert await queue.push(ACCOUNT, "m2", "c2", "a") is False  # already woken: not readied twice
    assert await queue.next_ready(0.1) == ACCOUNT
    assert await queue.next_ready(0.1) is None

    first = await queue.claim(ACCOUNT, "d1", agent=1, bulk=0)
    assert [e.message_id for e in first or []] == ["m1"]
    assert await queue.claim(ACCOUNT, "d2", agent=10, bulk=10) is None  # d1 holds the number
    # A push while d1 holds the lease rings its bell, and readies nothing.
    await queue.push(ACCOUNT, "m3", "c3", "a")
    assert await queue.next_ready(0.1) is None
    assert [e.message_id for e in await queue.wait_and_pop(ACCOUNT, "d1", 10, 10, 0.1) or []] == ["m2", "m3"]


async def test_a_hand_back_readies_the_number_at_once_later_or_releases_it(queue):
    await queue.push(ACCOUNT, "m1", "c1", "a")
    await queue.next_ready(0.1)
    taken = await queue.claim(ACCOUNT, "d1", agent=10, bulk=0)
    assert taken
    assert await queue.hand_back(ACCOUNT, "d1", taken, then="ready")  # a slice's end, a stopping worker
    assert await queue.next_ready(0.1) == ACCOUNT
    again = await queue.claim(ACCOUNT, "d2", agent=10, bulk=0)
    assert [e.raw for e in again or []] == [e.raw for e in taken]  # in front, in order

    assert await queue.hand_back(ACCOUNT, "d2", again or [], then="woken")  # MongoDB away: readied later
    assert await queue.next_ready(0.1) is None
    assert await queue.push(ACCOUNT, "m2", "c2", "a") is False  # still woken: a push does not ready it twice
    await queue.ready(ACCOUNT)
    assert await queue.next_ready(0.1) == ACCOUNT

    entries = await queue.claim(ACCOUNT, "d3", agent=10, bulk=0)
    assert await queue.hand_back(ACCOUNT, "d3", entries or [], then="release")  # a hold
    assert await queue.next_ready(0.1) is None
    assert not await queue.has_lease(ACCOUNT)
    assert await queue.wake(ACCOUNT)  # the token is fixed: woken and readied
    assert await queue.next_ready(0.1) == ACCOUNT


def test_entries_of_the_older_three_part_form_still_parse():
    entry = Entry.parse(b"m1|c1|b")
    assert (entry.message_id, entry.conversation_id, entry.lane) == ("m1", "c1", "b")
    entry = Entry.parse("m1|c1|17|a")
    assert (entry.message_id, entry.conversation_id, entry.lane) == ("m1", "c1", "a")
