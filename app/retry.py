"""The one retry-delay formula: every retry in the app (sends, media downloads, webhook ingestion,
event-webhook deliveries, the worker supervisor, the sandbox's webhooks) asks :func:`backoff`.

Each caller keeps its own numbers (first delay, cap, jitter); only the arithmetic is shared:

    delay = min(suggested or schedule[n-1] or base * factor**(n-1), cap) * scale * uniform(*jitter)

The browser's reconnect delay is JavaScript (static/js) and follows the same shape.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

MAX_EXPONENT = 64
"""Past this the growth no longer matters (any cap is reached) and a float power would overflow."""


def backoff(attempt: int, *, base: float = 1.0, cap: float = math.inf, factor: float = 2.0,
            suggested: float | None = None, schedule: Sequence[float] = (), scale: float = 1.0,
            jitter: tuple[float, float] | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based; anything below 1 counts as 1).

    The delay before jitter is ``suggested`` when given (a delay someone else chose for this
    attempt, such as Meta's), else ``schedule[attempt - 1]`` when a schedule is given (its last
    entry repeats), else ``base * factor ** (attempt - 1)``. It is capped at ``cap``, multiplied
    by ``scale``, then by a factor drawn uniformly from the ``jitter`` range (``None``: exact).
    """
    n = max(attempt, 1)
    if suggested is not None:
        delay = suggested
    elif schedule:
        delay = schedule[min(n, len(schedule)) - 1]
    else:
        delay = base * factor ** min(n - 1, MAX_EXPONENT)
    delay = min(delay, cap) * scale
    if jitter is not None:
        delay *= random.uniform(*jitter)
    return delay
