"""Rate limits kept in Redis so every process shares them."""

from __future__ import annotations

from redis.asyncio import Redis


class FailureThrottle:
    """Blocks a key (an email, an IP) for ``window`` seconds once it has failed ``limit`` times.

    Each failure extends the block: a fixed window that restarts on the first failure after it expires.
    """

    def __init__(self, redis: Redis, prefix: str, limit: int = 5, window: int = 60) -> None:
        self.redis = redis
        self.prefix = prefix
        self.limit = limit
        self.window = window

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
        async with self.redis.pipeline(transaction=False) as pipe:
            for subject in subjects:
                key = self._key(subject)
                pipe.incr(key)
                pipe.expire(key, self.window, nx=True)
            await pipe.execute()

    async def reset(self, *subjects: str) -> None:
        await self.redis.delete(*(self._key(s) for s in subjects))
