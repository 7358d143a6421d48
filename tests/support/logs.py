"""Where log lines go while the tests run.

structlog's default prints to stdout. A server running in a thread (the schemathesis test's, the
sandbox's) may log after its test's last request was answered, when pytest has stopped capturing
for its report: the line landed in the middle of the run's output. Routed through stdlib logging
instead, a line logged during a test is in pytest's capture (shown with a failing test, and
caplog sees it), and one logged between tests goes nowhere.
"""

from __future__ import annotations

import logging
import os

import structlog

STOPS_THAT_HUNG: list[tuple[str, str]] = []
"""(test, the log line) of every worker stop that needed its time bound (workers/supervisor.py): printed at the
end of the run by conftest.pytest_terminal_summary, since the bound lets the test pass."""


class _HungStops(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "did not stop in time" in message:
            STOPS_THAT_HUNG.append((os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0], message))


def quiet_logging() -> None:
    """The tests' logging (also restores it after a test that set up the product's own)."""
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="%H:%M:%S.%f"),
                    structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    root.handlers[:] = [_HungStops()]  # (without a handler, stdlib's last resort would print warnings to stderr)
    root.setLevel(logging.INFO)


def product_logging(level: str = "INFO", *, json: bool = False) -> None:
    """Logging as `inbox run` and `inbox worker` set it up, but without caching each logger on first use:
    a logger cached now would keep these processors for the rest of the run, and tests after this one
    that capture log lines (structlog.testing.capture_logs) would not see its lines. Undo with quiet_logging()."""
    from app.logging import configure_logging

    configure_logging(level, json=json)
    structlog.configure(cache_logger_on_first_use=False)
