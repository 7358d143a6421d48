"""Runs one embedded server and hands it exactly one stop signal: ``python embedded_guard.py SECONDS -- COMMAND…``.

Why it exists: the kernel sends the parent-death signal (``PR_SET_PDEATHSIG``) each time the child
is handed from one exiting thread of the parent to the next, so a kill -9 of the many-threaded
`inbox run` delivers SIGTERM to its children several times at once. SecantusDB's handler is not
reentrant: a second SIGTERM arriving while the first runs deadlocks it on its own lock, and the
server lives on, an orphan holding its port and data. (Seen with py-spy: four nested handlers.)

This guard takes those signals instead. The first SIGTERM or SIGINT is passed on to the server
once; any further one is ignored; if the server has not exited SECONDS later it gets SIGKILL. The
server is tied to the guard (SIGKILL if the guard itself is killed), and the guard exits with the
server's exit status. Standard library only: it runs with ``python -I -S``, in a few milliseconds.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1


def _die_with_guard() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except Exception:  # noqa: BLE001 - not Linux: the guard's own stop still reaches the server
        pass


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: embedded_guard.py SECONDS -- COMMAND [ARG…]", file=sys.stderr)
        return 2
    grace = max(1, round(float(argv[0])))
    asked: list[int] = []
    child: subprocess.Popen | None = None

    def stop(signum: int, _frame: object) -> None:
        if asked:
            return  # the server is already stopping: a second signal would only hurt it
        asked.append(signum)
        if child is not None:
            child.send_signal(signal.SIGTERM)
            signal.alarm(grace)

    def kill(_signum: int, _frame: object) -> None:
        if child is not None and child.poll() is None:
            child.kill()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGALRM, kill)
    child = subprocess.Popen(argv[2:], preexec_fn=_die_with_guard)
    if asked:  # a stop came while the server was being started
        child.send_signal(signal.SIGTERM)
        signal.alarm(grace)
    code = child.wait()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
