"""A kill -9 of `inbox run` stops its embedded servers with exactly one SIGTERM each.

The kernel sends the parent-death signal once for every thread of the dying parent the child is
handed through, and SecantusDB deadlocks on a second SIGTERM that lands during its stop: the
database then lived on as an orphan holding its port and data. Here the "server" is a small script
that writes down every SIGTERM it gets; its parent has many threads, like `inbox run`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from app.embedded import _alive

ROOT = Path(__file__).resolve().parents[2]

SERVER = """
import signal, sys, time
from pathlib import Path
seen = Path(sys.argv[1])
stopping = []
def on_term(signum, frame):
    with seen.open("a") as f:
        f.write("SIGTERM\\n")
    stopping.append(time.monotonic())
signal.signal(signal.SIGTERM, on_term)
Path(sys.argv[2]).write_text("ready")
while not stopping or time.monotonic() - stopping[0] < 0.5:  # a stop that takes a while, like a checkpoint
    time.sleep(0.01)
"""

PARENT = """
import sys, threading, time
from pathlib import Path
from app.embedded import EmbeddedServer

class Counting(EmbeddedServer):
    kind = "counting"
    def command(self):
        return [sys.executable, {server!r}, {seen!r}, {ready!r}]
    def answers(self):
        return Path({ready!r}).exists()

for _ in range(8):
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
server = Counting(Path({directory!r})).start()
print(server.pid, flush=True)
time.sleep(60)
"""


def test_a_kill_9_of_a_many_threaded_parent_reaches_the_server_as_one_sigterm(tmp_path):
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    seen, ready = tmp_path / "signals.txt", tmp_path / "ready"
    parent_code = textwrap.dedent(PARENT).format(server=str(script), seen=str(seen), ready=str(ready),
                                                 directory=str(tmp_path / "data"))
    parent = subprocess.Popen([sys.executable, "-c", parent_code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    server = int(parent.stdout.readline())
    assert _alive(server)

    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.monotonic() + 15
    while _alive(server) and time.monotonic() < deadline:
        time.sleep(0.05)

    assert not _alive(server), "the server outlived its parent"
    assert seen.read_text().splitlines() == ["SIGTERM"]


def test_a_server_that_ignores_its_stop_is_killed_after_the_grace_period(tmp_path):
    stubborn = tmp_path / "stubborn.py"
    stubborn.write_text("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('up', flush=True)\n"
                        "time.sleep(60)\n")
    guard = subprocess.Popen([sys.executable, "-I", "-S", str(ROOT / "app" / "embedded_guard.py"), "1", "--",
                              sys.executable, str(stubborn)], stdout=subprocess.PIPE, text=True)
    assert guard.stdout.readline().strip() == "up"
    started = time.monotonic()
    for _ in range(3):
        os.kill(guard.pid, signal.SIGTERM)
    assert guard.wait(timeout=10) == 128 + signal.SIGKILL
    assert time.monotonic() - started < 5
