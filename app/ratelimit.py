"""Failure throttles kept in Redis so every process shares them (sign-in). Send pacing: app/domains/outbox/pacing.py.

When Redis cannot answer, limits fall back to this process's own count (``LocalWindows``): each
web process then limits alone (a limit of 5 may let 5 per process through), which is weaker than
shared but never none, and sign-in keeps working instead of answering 500.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis

from app.logging import get_logger

log = get_logger(__name__)

MAX_LOCAL_KEYS = 50_000


class LocalWindows:
    """Fixed windows counted in this process: the fallback while Redis is unreachable."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[float, int]] = {}

    def hit(self, key: str, window: int) -> tuple[int, int]:
        """Count one for ``key``; returns (count in the window, seconds until it restarts)."""
        now = time.monotonic()
        ends, count = self._windows.get(key, (0.0, 0))
        if ends <= now:
            if len(self._windows) >= MAX_LOCAL_KEYS:
                self._windows = {k: v for k, v in self._windows.items() if v[0] > now}
            ends, count = now + window, 0
        self._windows[key] = (ends, count + 1)
        return count + 1, max(1, round(ends - now))

    def peek(self, key: str) -> tuple[int, int]:
        ends, count = self._windows.get(key, (0.0, 0))
        left = ends - time.monotonic()
        return (count, max(1, round(left))) if left > 0 else (0, 0)

    def reset(self, key: str) -> None:
        self._windows.pop(key, None)

# INCR and start the window on the first hit, atomically (EXPIRE NX needs Redis 7).
_COUNT_IN_WINDOW = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


class FailureThrottle:
    """Blocks a key (an email, an IP) for ``window`` seconds once it has failed ``limit`` times.

    A fixed window that starts at the first failure and restarts with the first failure after it.
    """

    def __init__(self, redis: Redis, prefix: str, limit: int = 5, window: int = 60,
                 limits: dict[str, int] | None = None) -> None:
        """``limits``: per kind of subject (the part before ":", e.g. {"ip": 30}), else ``limit``."""
        self.redis = redis
        self.prefix = prefix
        self.limit = limit
        self.limits = limits or {}
        self.window = window
        self._count = redis.register_script(_COUNT_IN_WINDOW)
        self.local = LocalWindows()

    def _key(self, subject: str) -> str:
        return f"{self.prefix}:{subject.lower()}"

    def _limit(self, subject: str) -> int:
        return self.limits.get(subject.partition(":")[0], self.limit)

    async def retry_after(self, *subjects: str) -> int:
        """Seconds until the most-blocked subject may try again; 0 when none is blocked."""
        worst = 0
        for subject in subjects:
            key = self._key(subject)
            try:
                count = await self.redis.get(key)
                if count is not None and int(count) >= self._limit(subject):
                    worst = max(worst, await self.redis.ttl(key), 1)
            except Exception as exc:  # noqa: BLE001 - Redis down: this process's own count
                _degraded(exc)
            local, ttl = self.local.peek(key)
            if local >= self._limit(subject):
                worst = max(worst, ttl)
        return worst

    async def record_failure(self, *subjects: str) -> list[int]:
        """Count a failure for each subject; returns each one's count in its window."""
        counts = []
        for subject in subjects:
            key = self._key(subject)
            try:
                counts.append(int(await self._count(keys=[key], args=[self.window])))
            except Exception as exc:  # noqa: BLE001 - counted here instead
                _degraded(exc)
                counts.append(self.local.hit(key, self.window)[0])
        return counts

    async def reset(self, *subjects: str) -> None:
        for subject in subjects:
            self.local.reset(self._key(subject))
        try:
            await self.redis.delete(*(self._key(s) for s in subjects))
        except Exception as exc:  # noqa: BLE001 - the Redis window ends by itself
            _degraded(exc)


_last_warning = 0.0


def _degraded(exc: BaseException) -> None:
    """Say (at most once a minute) that limits are counted per process for now."""
    global _last_warning
    now = time.monotonic()
    if now - _last_warning > 60:
        _last_warning = now
        log.warning("Redis unavailable: rate limits counted by each process alone", error=type(exc).__name__)
