"""TtlCache: what a burst of webhooks for one number costs the database (one read, not one per request)."""

from __future__ import annotations

import asyncio

import pytest

from app.cache import TtlCache


class Loader:
    def __init__(self, value=1, error: Exception | None = None) -> None:
        self.calls = 0
        self.value = value
        self.error = error

    async def __call__(self):
        self.calls += 1
        await asyncio.sleep(0.01)  # a database round trip: concurrent requests arrive meanwhile
        if self.error is not None:
            raise self.error
        return self.value


async def test_concurrent_misses_share_one_load_and_later_hits_none():
    cache, load = TtlCache(10), Loader("account")
    assert await asyncio.gather(*(cache.get("key", load) for _ in range(16))) == ["account"] * 16
    assert await cache.get("key", load) == "account"
    assert load.calls == 1


async def test_unknown_keys_are_read_again_and_fresh_forces_a_read():
    cache, missing, found = TtlCache(10), Loader(None), Loader("new")
    assert await cache.get("key", missing) is None and await cache.get("key", missing) is None
    assert missing.calls == 2  # an admin may be adding it right now
    assert await cache.get("key", found) == "new"
    assert await cache.get("key", found, fresh=True) == "new" and found.calls == 2


async def test_expired_values_are_read_again():
    cache, load = TtlCache(0.02), Loader("v")
    await cache.get("key", load)
    await asyncio.sleep(0.03)
    await cache.get("key", load)
    assert load.calls == 2


async def test_a_failed_load_fails_its_waiters_and_is_not_kept():
    cache, failing = TtlCache(10), Loader(error=ConnectionError("database down"))
    results = await asyncio.gather(*(cache.get("key", failing) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results) and failing.calls == 1
    assert await cache.get("key", Loader("back")) == "back"


async def test_a_cancelled_loader_does_not_poison_the_key():
    cache = TtlCache(10)
    first = asyncio.ensure_future(cache.get("key", Loader("slow")))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await cache.get("key", Loader("v")) == "v"
