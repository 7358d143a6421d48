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


class InboxProcess:
    """One `inbox <args>` subprocess: started, waited for over HTTP, killed or stopped by the test.

    ``port_flag``: pass ``--port <port>`` (web, sandbox, run); commands without it (``worker``) are
    waited for on a port they serve some other way, e.g. ``INBOX_WORKER_METRICS_PORT`` and ``/metrics``.
    ``log_path``: the file the process's output goes to; by default one in ``data_dir``. Never a pipe: a process
    logs a line per request and per send, and blocks once a pipe nobody reads is full (64 KB).
    """

    def __init__(self, *args: str, env: dict[str, str] | None = None, data_dir: Path, port: int | None = None,
                 port_flag: bool = True, ready_path: str = "/health/live", log_path: Path | None = None) -> None:
        self.args = args
        self.port = port or free_port()
        self.port_flag = port_flag
        self.ready_path = ready_path
        self.log_path = log_path or Path(data_dir) / f"inbox-{args[0] if args else 'process'}.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("INBOX_")}
        self.env.update({"INBOX_DATA_DIR": str(data_dir), **(env or {})})
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    @property
    def name(self) -> str:
        return " ".join(self.args)

    def start(self) -> InboxProcess:
        command = [INBOX, *self.args, *(["--port", str(self.port)] if self.port_flag else [])]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            start = log.tell()
            self.proc = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.proc.stdout = Followed(self.log_path, self.proc, start)  # type: ignore[assignment]
        return self

    def output(self) -> str:
        """What the process printed: its log file's tail."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-40:])
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float = 40) -> InboxProcess:
        assert self.proc is not None, "start() first"
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"inbox {self.name} exited early ({self.proc.returncode}):\n{self.output()}")
            try:
                if httpx.get(self.base + self.ready_path, timeout=1).status_code < 500:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"inbox {self.name} did not answer {self.ready_path} within {timeout} s:\n"
                                   f"{self.output()}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would."""
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        """SIGINT (a clean stop), SIGKILL after 15 s."""
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Followed:
    """A process's output read as from a pipe (``readline``, iteration, ``read``), from the file it goes to: what it
    wrote so far, then each line as it comes, until the process has exited and the file is read to its end."""

    def __init__(self, path: Path, proc: subprocess.Popen, start: int = 0) -> None:
        self._file = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed with the process
        self._file.seek(start)
        self._proc = proc
        self._partial = ""

    def fileno(self) -> int:
        return self._file.fileno()

    def readline(self) -> str:
        while True:
            self._partial += self._file.readline()
            if self._partial.endswith("\n") or self._proc.poll() is not None:
                line, self._partial = self._partial + ("" if self._partial.endswith("\n") else self._file.read()), ""
                return line
            time.sleep(0.02)

    def __iter__(self) -> Iterator[str]:
        while line := self.readline():
            yield line

    def read(self) -> str:
        data, self._partial = self._partial + self._file.read(), ""
        return data

    def close(self) -> None:
        self._file.close()


@contextlib.contextmanager
def inbox_process(*args: str, env: dict[str, str] | None = None, data_dir: Path, ready_path: str = "/health/live",
                  timeout: float = 40, port: int | None = None, port_flag: bool = True,
                  log_path: Path | None = None) -> Iterator[tuple[subprocess.Popen, str]]:
    """Runs `inbox <args> --port <free>`; yields (process, base URL); stops it with SIGINT."""
    process = InboxProcess(*args, env=env, data_dir=data_dir, port=port, port_flag=port_flag, ready_path=ready_path,
                           log_path=log_path)
    try:
        process.start().wait_ready(timeout)
        yield process.proc, process.base
    finally:
        process.stop()
