"""Start the real `inbox` command in a subprocess and wait until it answers."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support.servers import free_port

INBOX = str(Path(sys.executable).with_name("inbox"))


@contextlib.contextmanager
def inbox_process(*args: str, env: dict[str, str] | None = None, data_dir: Path, ready_path: str = "/health/live",
                  timeout: float = 40) -> Iterator[tuple[subprocess.Popen, str]]:
    """Runs `inbox <args> --port <free>`; yields (process, base URL); stops it with SIGINT."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("INBOX_")}
    full_env.update({"INBOX_DATA_DIR": str(data_dir), **(env or {})})
    proc = subprocess.Popen([INBOX, *args, "--port", str(port)], env=full_env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"inbox exited early:\n{proc.stdout.read()}")
            try:
                if httpx.get(base + ready_path, timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("inbox did not become ready")
            time.sleep(0.1)
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
