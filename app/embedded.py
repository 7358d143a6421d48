"""Server child processes that `inbox run` and the tests start and stop themselves (Redis, MongoDB).

One shape for both: a free loopback port, data under a directory of ours, a log file there (never a
pipe that could fill and block the server), a wait until the server answers, a clean stop.

No orphans, no two servers on one data directory:
- the child is asked to die with us (Linux ``PR_SET_PDEATHSIG``, when spawned from the main thread),
  so even a kill -9 of `inbox run` takes it down;
- its pid is written to ``<directory>/server.pid``; a start that finds a live server there whose
  parent is gone (a crash on a system without the death signal) stops it first, and one whose parent
  still runs (a second `inbox run` on the same data) refuses to start.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Collection
from pathlib import Path


class EmbeddedServerError(RuntimeError):
    """The server could not be started: the message says why, in one line for the operator."""


def free_port(avoid: Collection[int] = ()) -> int:
    """A port nobody listens on now, other than ``avoid`` (ports the caller is about to listen on:
    the kernel may hand out a port that is free only because its owner has not bound it yet)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in avoid:
            return port


def port_taken(port: int) -> bool:
    """Someone listens on the port (a socket in TIME_WAIT does not count: servers reuse the address)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _parent_pid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    """Whether the process runs. A zombie does not: a server whose parent was killed is reparented to
    PID 1, and a container's PID 1 may reap it late or never, while the data it held is free."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (not Linux): a signal reached it
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


class EmbeddedServer:
    """A server child process on ``127.0.0.1:port`` with its data in ``directory``."""

    kind = "server"
    stop_timeout = 10.0

    def __init__(self, directory: Path, port: int | None = None, *, avoid: Collection[int] = ()) -> None:
        self.directory = Path(directory)
        self.port = port or free_port(avoid)
        self._process: subprocess.Popen | None = None

    # -- what each kind says -------------------------------------------------------------------
    def command(self) -> list[str]:
        raise NotImplementedError

    def answers(self) -> bool:
        """True once the server serves requests."""
        raise NotImplementedError

    @property
    def url(self) -> str:
        raise NotImplementedError

    # -- the shared lifecycle ------------------------------------------------------------------
    @property
    def pid_file(self) -> Path:
        return self.directory / "server.pid"

    @property
    def log_file(self) -> Path:
        return self.directory / "server.log"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 30.0) -> EmbeddedServer:
        self.spawn()
        self.wait_until_answers(timeout)
        return self

    def spawn(self) -> None:
        """Start the process (quick). Call it from the thread that lives as long as the server should:
        Linux sends the death signal when the spawning *thread* ends, so from any other thread the
        child is not tied to us (the pid file still lets the next start clean up after a crash)."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            probe = self.directory / ".writable"
            probe.write_text("")
            probe.unlink()
        except OSError as error:
            raise EmbeddedServerError(f"embedded {self.kind}: data directory {self.directory} is not writable "
                                      f"({error.strerror or error})") from None
        self._stop_leftover()
        if port_taken(self.port):
            raise EmbeddedServerError(f"embedded {self.kind}: port {self.port} is already in use")
        command = self.command()
        tie = _die_with_parent if threading.current_thread() is threading.main_thread() else None
        with open(self.log_file, "ab") as log:
            # Own session: a Ctrl-C to our process group must not stop the server before we are done with it.
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             start_new_session=True, preexec_fn=tie)
        self.pid_file.write_text(str(self._process.pid))

    def wait_until_answers(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self._process is None or self._process.poll() is not None or time.monotonic() > deadline:
                tail = self._log_tail()
                self.stop()
                raise EmbeddedServerError(f"embedded {self.kind} did not start: {tail or 'no output'}")
            time.sleep(0.05)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        with contextlib.suppress(FileNotFoundError):
            if process is not None and self.pid_file.read_text().strip() == str(process.pid):
                self.pid_file.unlink()

    def kill(self) -> None:
        """SIGKILL, as a crash would (tests of recovery)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def restart(self) -> None:
        """Stop and start on the same port and data (tests use it to simulate an outage)."""
        self.stop()
        self.start()

    def _stop_leftover(self) -> None:
        """A server of ours still on this data directory (a crashed run's): stop it before starting."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return
        if not _alive(pid) or str(self.directory.resolve()) not in _command_line(pid):
            return
        parent = _parent_pid(pid)
        if parent not in (None, 1) and any(word in _command_line(parent) for word in ("inbox", "python", "pytest")):
            raise EmbeddedServerError(f"embedded {self.kind}: {self.directory} is in use by another running "
                                      f"process (pid {parent}); stop it first or use another INBOX_DATA_DIR")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)

    def _log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text[-lines:])

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
