"""Structured logging with structlog; secrets are scrubbed before anything is written."""

from __future__ import annotations

import logging
import re
import sys

import structlog

# Keys whose values must never reach a log line, whatever code logged them.
_SECRET_KEYS = re.compile(r"(token|secret|password|api_key|authorization|cookie)", re.IGNORECASE)


def _scrub_secrets(_logger, _method, event_dict: dict) -> dict:
    for key in list(event_dict):
        if _SECRET_KEYS.search(key):
            event_dict[key] = "[redacted]"
    return event_dict


def configure_logging(level: str = "INFO", json: bool = False) -> None:
    """Route stdlib and structlog output through one renderer."""
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso"),
        _scrub_secrets,
    ]
    # Plain tracebacks: structlog's default console formatter (rich, when installed) prints every frame's
    # local variables, which can hold tokens and app secrets, and rendering them during an outage (a
    # failed job per queued send) blocked the worker's loop for tens of seconds.
    # JSON: the traceback as plain text in an "exception" field (without format_exc_info the JSON line
    # said only "exc_info": true, and production logs had no traceback at all).
    renderers = ([structlog.processors.format_exc_info, structlog.processors.JSONRenderer()] if json else
                 [structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)])
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderers],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL at INFO; media download URLs carry short-lived credentials.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A named structured logger."""
    return structlog.stdlib.get_logger(name)
