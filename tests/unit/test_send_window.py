"""The drainer's own check of Meta's 1-second window (app/domains/outbox/pacing.py SendWindow).

Times are given explicitly, so every answer is exact. The last test drives the window against a
simulated Meta that stamps each send somewhere between its departure and its answer (with
stalls, out of order) and refuses it the way the sandbox does (app/sandbox/state.py: ``limit``
sends stamped in the second before it): no send is ever refused.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque

from app.domains.outbox.pacing import SendWindow


def _answered_window(limit: int, departures: list[float], rtt: float = 0.001) -> SendWindow:
    window = SendWindow(limit, slack=0.0)
    for at in departures:
        window.answered(window.depart(at), at + rtt)
    return window


def test_room_under_the_limit():
    window = _answered_window(3, [0.0, 0.1])
    assert window.wait(0.2) == 0.0


def test_a_full_window_waits_for_its_oldest_stamp_to_leave():
    window = _answered_window(3, [0.0, 0.1, 0.2])
    # No round-trip floor yet (too few answers): a stamp may be as late as its answer (0.001).
    assert math.isclose(window.wait(0.5), 0.501)
    assert window.wait(1.001) == 0.0


def test_sends_in_flight_count_until_answered():
    window = SendWindow(2, slack=0.0)
    first = window.depart(0.0)
    window.depart(0.1)
    assert window.wait(5.0) is None  # both may still be stamped at any moment: wait for an answer
    window.answered(first, 5.0)  # ... stamped at 5.0 at the latest
    assert math.isclose(window.wait(5.0), 1.0)
    assert window.wait(6.0) == 0.0


def test_a_slow_answer_keeps_its_send_in_the_window_longer():
    window = SendWindow(25, slack=0.0)
    for i in range(24):  # enough answers for a round-trip floor of 1 ms
        window.answered(window.depart(i * 0.01), i * 0.01 + 0.001)
    assert math.isclose(window.floor, 0.001)
    stalled = window.depart(0.3)
    window.answered(stalled, 0.4)  # Meta stalled: it stamped this one up to 0.399
    # Full (25): the oldest send's stamp (answered before the floor was known: up to its answer,
    # 0.001) leaves the window at 1.001.
    assert math.isclose(window.wait(0.5), 0.501)
    assert window.records[-1][1] == 0.4 - 0.001


def test_the_round_trip_floor_needs_enough_answers():
    window = SendWindow(100, slack=0.0)
    for i in range(SendWindow.FLOOR_SAMPLES - 1):
        window.answered(window.depart(i * 0.01), i * 0.01 + 0.05)
    assert window.floor == 0.0
    window.answered(window.depart(1.0), 1.05)
    assert math.isclose(window.floor, 0.05)


def test_a_simulated_meta_never_refuses():
    """Sends depart as soon as the window allows; Meta stamps each one after a random delay
    (mostly short, sometimes a stall of up to 150 ms, so stamps leave departure order) and
    answers after another; it refuses a send when ``limit`` stamps fall in the second before."""
    rng = random.Random(5)
    limit = 20
    window = SendWindow(limit)
    stamps: deque[float] = deque()
    refused = sent = 0
    events: list[tuple[float, int, str, object]] = []  # (time, order, kind, record)
    order = 0
    now = 0.0
    next_try = 0.0
    while now < 30.0:
        if events and events[0][0] <= next_try:
            now, _, kind, payload = heapq.heappop(events)
            if kind == "stamp":
                record, answer_delay = payload
                while stamps and stamps[0] <= now - 1.0:
                    stamps.popleft()
                if len(stamps) >= limit:
                    refused += 1
                else:
                    stamps.append(now)
                order += 1
                heapq.heappush(events, (now + answer_delay, order, "answer", record))
            else:
                window.answered(payload, now)
            continue
        now = next_try
        wait = window.wait(now)
        if wait == 0.0:
            record = window.depart(now)
            sent += 1
            out = 0.0005 + rng.random() * 0.001
            if rng.random() < 0.03:
                out += rng.random() * 0.15
            back = 0.0005 + rng.random() * 0.001
            if rng.random() < 0.03:
                back += rng.random() * 0.15
            order += 1
            heapq.heappush(events, (now + out, order, "stamp", (record, back)))
            next_try = now + rng.random() * 0.06  # a schedule a little faster than the limit
        else:
            next_try = now + (wait if wait is not None else 0.001)
    assert sent > 20 * 25
    assert refused == 0
