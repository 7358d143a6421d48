"""OpenTelemetry tracing: off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (OpenTelemetry's own variable, with its
``OTEL_SERVICE_NAME``, ``OTEL_EXPORTER_OTLP_HEADERS`` ... read by its exporter).

When on (``setup``, called by `inbox run`, `inbox web` and `inbox worker` before anything connects):
- HTTP requests: Litestar's OpenTelemetry plugin (``asgi_plugin``; opentelemetry-instrumentation-asgi);
- database calls: opentelemetry-instrumentation-pymongo (motor runs on pymongo's command monitoring);
- WhatsApp's API: opentelemetry-instrumentation-aiohttp-client (sends, media uploads, read receipts) and -httpx (the
  other calls);
- jobs: there is no instrumentation of arq, so the enqueue (app/queue.py) passes the current trace context in the
  job's ``trace`` keyword and the worker (workers/settings.py) runs the job in a span under it;
- sends: a message stored in a traced request keeps the context (``Message.trace``), and the drainer's send is a
  span under it, so the API call, its database writes, the send and its HTTP call to WhatsApp form one trace.
Off, every helper here is a no-op that costs a global read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
_enabled = False
_provider: Any = None


def enabled() -> bool:
    return _enabled


def setup(processor: Any = None) -> bool:
    """Turn tracing on when OTEL_EXPORTER_OTLP_ENDPOINT is set (or for a given span processor: tests). Once per
    process; returns whether it is on."""
    global _enabled, _provider
    if _enabled:
        return True
    if processor is None and not os.environ.get(ENDPOINT):
        return False
    from opentelemetry import trace
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    if processor is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        processor = BatchSpanProcessor(OTLPSpanExporter())
    if _provider is None:  # OpenTelemetry takes one provider per process
        _provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME",
                                                                                            "wa-inbox")}))
        trace.set_tracer_provider(_provider)
    _provider.add_span_processor(processor)
    PymongoInstrumentor().instrument()
    AioHttpClientInstrumentor().instrument()
    HTTPXClientInstrumentor().instrument()
    _enabled = True
    return True


def teardown() -> None:
    """Tracing off again (tests): the instrumentations removed, the processors shut down."""
    global _enabled
    if not _enabled:
        return
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

    for instrumentor in (PymongoInstrumentor(), AioHttpClientInstrumentor(), HTTPXClientInstrumentor()):
        instrumentor.uninstrument()
    _provider._active_span_processor._span_processors = ()  # noqa: SLF001 - the SDK has no remove
    _enabled = False


def asgi_plugins() -> list[Any]:
    """Litestar's OpenTelemetry plugin when tracing is on (spans for every HTTP request and WebSocket)."""
    if not _enabled:
        return []
    from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin

    from app import correlation

    def name_the_request(span: Any, scope: Any) -> None:  # the request id of the logs, on the request's span
        if span is not None and span.is_recording() and correlation.current():
            span.set_attribute("request_id", correlation.current())

    return [OpenTelemetryPlugin(OpenTelemetryConfig(server_request_hook_handler=name_the_request))]


def current() -> str | None:
    """The current span's context as a W3C ``traceparent`` (None when off or outside a span)."""
    if not _enabled:
        return None
    from opentelemetry.propagate import inject

    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def span(name: str, parent: str | None = None, **attributes: Any) -> Iterator[None]:
    """A span named ``name`` under ``parent`` (a traceparent: another process's span), else under the current one."""
    if not _enabled:
        yield
        return
    from opentelemetry import trace
    from opentelemetry.propagate import extract

    context = extract({"traceparent": parent}) if parent else None
    with trace.get_tracer("wa-inbox").start_as_current_span(
            name, context=context, attributes={k: v for k, v in attributes.items() if v is not None}):
        yield
