"""A server process that has ended is not running, even while nobody has reaped it yet (a zombie: its
parent was killed and the container's PID 1 reaps late or never). `inbox run` would otherwise refuse to
start on data that no process holds any more, and wait for servers that are already gone."""

from __future__ import annotations

import os
import subprocess
import time

from app.embedded import _alive


def test_a_running_process_is_alive_and_an_ended_unreaped_one_is_not():
    child = subprocess.Popen(["sleep", "0.2"])
    assert _alive(child.pid)
    time.sleep(0.6)  # ended; not waited for, so the kernel keeps it as a zombie
    assert not _alive(child.pid)
    child.wait()
    assert not _alive(child.pid)
    assert _alive(os.getpid())
