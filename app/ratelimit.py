"""Failure throttles kept in Redis so every process shares them (sign-in). Send pacing: app/domains/outbox/pacing.py."""

from __future__ import annotations

from redis.asyncio import Redis

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

    def __init__(self, redis: Redis, prefix: str, limit: int = 5, window: int = 60) -> None:
        self.redis = redis
        self.prefix = prefix
        self.limit = limit
        self.window = window
        self._count = redis.register_script(_COUNT_IN_WINDOW)

    def _key(self, subject: str) -> str:
        return f"{self.prefix}:{subject.lower()}"

    async def retry_after(self, *subjects: str) -> int:
        """Seconds until the most-blocked subject may try again; 0 when none is blocked."""
        worst = 0
        for subject in subjects:
            key = self._key(subject)
            count = await self.redis.get(key)
            if count is not None and int(count) >= self.limit:
                worst = max(worst, await self.redis.ttl(key), 1)
        return worst

    async def record_failure(self, *subjects: str) -> None:
        for subject in subjects:
            await self._count(keys=[self._key(subject)], args=[self.window])

    async def reset(self, *subjects: str) -> None:
        await self.redis.delete(*(self._key(s) for s in subjects))
