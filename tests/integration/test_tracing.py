"""Issue 20, tracing: with OpenTelemetry on, one send through the API is one trace: the HTTP request, its database
writes, the worker's send and its HTTP call to WhatsApp; a job runs under the trace of the request that enqueued it.
The spans go to OpenTelemetry's in-memory exporter; only Meta is simulated (the sandbox)."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from app import tracing
from app.domains.messages.models import Message
from tests.integration.outbound_env import outbound, sandbox_server, wait_for  # noqa: F401
from tests.integration.test_send_reconciliation import CUSTOMER
from workers.settings import outage_tolerant


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    assert tracing.setup(SimpleSpanProcessor(exporter))
    yield exporter
    tracing.teardown()
    exporter.clear()


def test_tracing_is_off_unless_the_endpoint_is_set(monkeypatch):
    monkeypatch.delenv(tracing.ENDPOINT, raising=False)
    assert not tracing.enabled() and tracing.setup() is False and tracing.current() is None
    assert tracing.asgi_plugins() == []


async def test_one_send_is_one_trace_from_the_api_to_whatsapp(outbound, spans):  # noqa: F811
    env = await outbound()  # created with tracing on: its app has the HTTP spans, its database client the commands'
    account = await env.add_number()
    conversation = await env.conversation(account, CUSTOMER)
    answer = await env.send(conversation, "hello")
    assert answer.status_code == 202, answer.text

    async def sent() -> Message | None:
        found = await Message.get(answer.json()["id"])
        return found if found and found.wamid else None

    message = await wait_for(sent)
    assert message.trace and message.trace.startswith("00-")

    def send_span():
        return next((s for s in spans.get_finished_spans() if s.name == "whatsapp.send"), None)

    async def finished() -> bool | None:
        return send_span() is not None or None

    await wait_for(finished)
    finished_spans = spans.get_finished_spans()
    server = next(s for s in finished_spans if s.kind is SpanKind.SERVER
                  and s.attributes.get("http.route", s.name).endswith("/messages")
                  and (s.attributes.get("http.method") or s.attributes.get("http.request.method")) == "POST")
    trace_id = server.context.trace_id
    assert server.attributes["request_id"] == answer.headers["x-request-id"]  # the logs' id, on the trace
    send = send_span()
    assert send.context.trace_id == trace_id and send.attributes["message_id"] == str(message.id)
    graph_call = [s for s in finished_spans if s.kind is SpanKind.CLIENT and s.parent is not None
                  and s.parent.span_id == send.context.span_id]
    assert graph_call and "/messages" in str(graph_call[0].attributes.get("http.url")
                                             or graph_call[0].attributes.get("url.full"))
    database = [s for s in finished_spans if s.context.trace_id == trace_id
                and s.attributes.get("db.system") == "mongodb"]
    assert any("insert" in s.name for s in database), [s.name for s in database]


async def test_a_job_runs_under_the_trace_that_enqueued_it(spans):
    from opentelemetry import trace

    async def fetch_media(ctx, message_id):
        return message_id

    with trace.get_tracer("test").start_as_current_span("webhook request") as request:
        parent = tracing.current()
    assert parent is not None
    assert await outage_tolerant(fetch_media)({"job_try": 1}, "m1", trace=parent) == "m1"
    job = next(s for s in spans.get_finished_spans() if s.name == "job fetch_media")
    assert job.context.trace_id == request.get_span_context().trace_id
    assert job.parent.span_id == request.get_span_context().span_id
