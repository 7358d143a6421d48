"""Server child processes that `inbox run` and the tests start and stop themselves (Redis, MongoDB).

One shape for both: a free loopback port, data under a directory of ours, a log file there (never a
pipe that could fill and block the server), a wait until the server answers, a clean stop.

No orphans, no two servers on one data directory:
- the child is asked to die with us (Linux ``PR_SET_PDEATHSIG``, when spawned from the main thread),
  so even a kill -9 of `inbox run` takes it down. The child is a small guard (`embedded_guard.py`)
  that runs the server and hands it that stop exactly once: a dying many-threaded parent sends the
  death signal once per thread, and a second SIGTERM deadlocks SecantusDB's stop;
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
import sys
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


GUARD = Path(__file__).with_name("embedded_guard.py")


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


def _server_of(guard: subprocess.Popen, timeout: float = 5.0) -> int:
    """The server process the guard started (its only child), once it has; the guard's own pid where
    /proc cannot tell."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, ValueError):
            children = Path(f"/proc/{guard.pid}/task/{guard.pid}/children").read_text().split()
            if children:
                return int(children[0])
        if guard.poll() is not None or time.monotonic() > deadline:
            return guard.pid
        time.sleep(0.005)


class EmbeddedServer:
    """A server child process on ``127.0.0.1:port`` with its data in ``directory``."""

    kind = "server"
    stop_timeout = 10.0

    def __init__(self, directory: Path, port: int | None = None, *, avoid: Collection[int] = ()) -> None:
        self.directory = Path(directory)
        self.port = port or free_port(avoid)
        self._process: subprocess.Popen | None = None  # the guard
        self._server_pid: int | None = None

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
        """The server's own process (the guard's child), as in the pid file: e.g. to measure its CPU."""
        return self._server_pid if self._process else None

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
        command = [sys.executable, "-I", "-S", str(GUARD), str(self.stop_timeout), "--", *self.command()]
        tie = _die_with_parent if threading.current_thread() is threading.main_thread() else None
        with open(self.log_file, "ab") as log:
            # Own session: a Ctrl-C to our process group must not stop the server before we are done with it.
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             start_new_session=True, preexec_fn=tie)
        self._server_pid = _server_of(self._process)
        self.pid_file.write_text(str(self._server_pid))

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
            process.terminate()  # the guard passes it on once and escalates to SIGKILL after stop_timeout
            try:
                process.wait(timeout=self.stop_timeout + 5)
            except subprocess.TimeoutExpired:
                self._kill_group(process, self._server_pid)
        with contextlib.suppress(FileNotFoundError):
            if process is not None and self.pid_file.read_text().strip() == str(self._server_pid):
                self.pid_file.unlink()

    def kill(self) -> None:
        """SIGKILL, as a crash would (tests of recovery)."""
        if self._process is not None and self._process.poll() is None:
            self._kill_group(self._process, self._server_pid)

    @staticmethod
    def _kill_group(process: subprocess.Popen, server: int | None) -> None:
        """SIGKILL to the guard and the server (its own session, so the group is theirs alone), and
        wait until both are gone: the port and the data files are free when this returns."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        deadline = time.monotonic() + 10
        while server is not None and _alive(server) and time.monotonic() < deadline:
            time.sleep(0.02)

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
        holder, target = _parent_pid(pid), pid
        if holder not in (None, 1) and GUARD.name in _command_line(holder):
            holder, target = _parent_pid(holder), holder  # its guard: a stop through it is one signal
        if holder not in (None, 1) and any(word in _command_line(holder) for word in ("inbox", "python", "pytest")):
            raise EmbeddedServerError(f"embedded {self.kind}: {self.directory} is in use by another running "
                                      f"process (pid {holder}); stop it first or use another INBOX_DATA_DIR")
        os.kill(target, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout + 5
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        for leftover in {pid, target}:
            if _alive(leftover):
                os.kill(leftover, signal.SIGKILL)
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
