"""py-spy helpers for the benchmarks: record a process while a phase runs, then print its top costs.

py-spy is a benchmark-only tool (``.venv/bin/pip install py-spy``); without it, recording is
skipped with a note. Profiles are written in py-spy's "raw" format (one collapsed stack per
line, ``frame;frame;... count``), which :func:`summarize` reads.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path


def _py_spy() -> str | None:
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


@contextlib.contextmanager
def recording(pid: int, output: Path | None, *, rate: int = 97) -> Iterator[None]:
    """Sample ``pid`` (all threads, idle frames excluded) until the block ends."""
    tool = _py_spy()
    if output is None or tool is None:
        if output is not None:
            print("py-spy not installed: no profile recorded", file=sys.stderr)
        yield
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([tool, "record", "--pid", str(pid), "--format", "raw", "--output", str(output),
                             "--rate", str(rate), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _frame_name(frame: str) -> str:
    # "function (path/to/file.py:123)" -> "function (file.py)"; line numbers would split one function.
    name, _, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0].rsplit("/", 1)[-1].rstrip(")")
    return f"{name} ({file})" if file else name


def summarize(path: Path, top: int = 15) -> str:
    """The functions with the most samples on the stack (inclusive) and on top of it (self)."""
    if not path.exists():
        return f"(no profile at {path})"
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";") if f and not f.startswith("process ")
                  and not f.startswith("thread ")]
        if not frames:
            continue
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    if not total:
        return f"(empty profile at {path})"
    lines = [f"{total} samples in {path.name}", "  inclusive:"]
    lines += [f"    {100 * c / total:5.1f}%  {f}" for f, c in inclusive.most_common(top)]
    lines.append("  self:")
    lines += [f"    {100 * c / total:5.1f}%  {f}" for f, c in own.most_common(top)]
    return "\n".join(lines)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(summarize(Path(name), top=25))
