"""Prometheus metrics (the send path, HTTP, the spec's whatsapp_* series), and the ``/metrics`` endpoint.

Counters live in each process's default registry: the web process serves them at ``/metrics``
(with `inbox run` that includes the in-process worker); a separate `inbox worker` serves its own
on ``INBOX_WORKER_METRICS_PORT``. Queue depth is read from Redis at scrape time, so any process
reports the whole installation's outbox.
"""

from __future__ import annotations

import hmac
import math
import time
import weakref
from collections.abc import Iterator
from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from app.db import as_utc, utcnow
from app.errors import error_body

WEBHOOK_ITEMS_REJECTED = Counter("inbox_webhook_items_rejected_total",
                                 "Webhook items left out because they could not be read (the rest of the body "
                                 "was applied; the raw body keeps them).", ["field"])
WEBHOOK_UNKNOWN = Counter("inbox_webhook_unknown_total",
                          "Parts of webhooks this version does not know (a change field, or a field of a "
                          "message, status or contact): kept in the raw body, not applied.", ["where", "name"])
OUTBOX_QUEUED = Counter("inbox_outbox_queued_total", "Messages accepted into the outbox.", ["type", "priority"])
SENDS = Counter("inbox_sends_total", "Send attempts by message type and result (accepted, failed, retry).",
                ["type", "result"])
RETRIES = Counter("inbox_send_retries_total", "Send attempts that will be retried, by reason (Meta's code).",
                  ["reason"])
GRAPH_LATENCY = Histogram("inbox_graph_request_seconds", "Graph API call latency by endpoint.", ["endpoint"],
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
LIMITER_WAIT = Histogram("inbox_limiter_wait_seconds",
                         "Time a send waited, by limit: number (its slot), recipient (pacing), window (Meta's 1-s window check).",
                         ["limit"], buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 120, 600))
MISSED_SLOTS = Counter("inbox_send_window_waits_total",
                       "Sends held by the window check: their number's last second, as Meta counts it, was full.")
CIRCUIT_OPENED = Counter("inbox_circuit_opened_total", "Times a number's circuit breaker opened.")
QUEUE_DEPTH = Gauge("inbox_outbox_depth", "Messages waiting in the outbox, by lane (agent, bulk, in_progress).",
                    ["lane"])
WORKER_RESTARTS = Counter("inbox_worker_restarts_total",
                          "Background workers started again after theirs ended unexpectedly (Redis went away).")

# HTTP, by route template (never the path: it can hold a webhook's key), counted by app/domains/webhooks/fastpath.py
# InboxApp for every request, the webhook fast path's included.
HTTP_REQUESTS = Counter("inbox_http_requests_total", "HTTP requests by method, route template and status.",
                        ["method", "route", "status"])
HTTP_LATENCY = Histogram("inbox_http_request_seconds", "HTTP request latency by method and route template.",
                         ["method", "route"], buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))

# The series the integration spec names, under its names. For these four they are the canonical series; the
# inbox_* series beside them (inbox_sends_total, inbox_graph_request_seconds) stay for existing dashboards and
# carry more detail (the send's result; a retry is not a send).
WHATSAPP_MESSAGES_SENT = Counter("whatsapp_messages_sent_total", "Messages WhatsApp accepted from us, by type.",
                                 ["type"])
WHATSAPP_MEDIA_DOWNLOADS = Counter("whatsapp_media_downloads_total",
                                   "Downloads of customers' media, by outcome (stored, retry, failed).", ["status"])
WHATSAPP_API_LATENCY = Histogram("whatsapp_api_latency_seconds", "Graph API call latency by endpoint.", ["endpoint"],
                                 buckets=(.05, .1, .25, .5, 1, 2.5, 5, 10, 30))
_WINDOWS: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()


class _RateLimitRemaining(Collector):
    """whatsapp_rate_limit_remaining, worked out when scraped from each number's send window in this process
    (outbox/pacing.py SendWindow): a gauge set per send would show an idle number's last burst."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("whatsapp_rate_limit_remaining",
                                   "Sends a number has left in the current second: its messages per second less what "
                                   "this process sent in the last second, by phone number id.", labels=["number"])
        now = time.monotonic()
        for number, window in list(_WINDOWS.items()):
            family.add_metric([number], window.remaining(now))
        yield family


REGISTRY.register(_RateLimitRemaining())


def watch_window(number: str, window: Any) -> None:
    """A number's send window (pacing.SendWindow) reported as whatsapp_rate_limit_remaining while it lives."""
    _WINDOWS[number] = window


def count_send(kind: str, result: str) -> None:
    """A send attempt's outcome: accepted, failed or retry."""
    SENDS.labels(type=kind, result=result).inc()
    if result == "accepted":
        WHATSAPP_MESSAGES_SENT.labels(type=kind).inc()


def observe_graph(endpoint: str, seconds: float) -> None:
    """One Graph API call's latency."""
    GRAPH_LATENCY.labels(endpoint=endpoint).observe(seconds)
    WHATSAPP_API_LATENCY.labels(endpoint=endpoint).observe(seconds)


# The numbers' health and the workers' liveness, read when /metrics is scraped (the web process): the alert rules
# in deploy/prometheus/alerts.yml watch them.
NUMBER_QUALITY = Gauge("inbox_number_quality", "A number's quality rating from Meta: 3 green, 2 yellow, 1 red, "
                                               "0 not known yet.", ["number"])
NUMBER_TOKEN_VALID = Gauge("inbox_number_token_valid", "1: the number's access token works; 0: Meta refused it "
                                                       "(code 0 / 190: expired or revoked); -1: not used yet.", ["number"])
NUMBER_SENDING_STOPPED = Gauge("inbox_number_sending_stopped", "1 while Meta restricted the number (368 / 131031) and "
                                                               "its sends are held until an admin resumes them.",
                               ["number"])
NUMBER_CIRCUIT_OPEN = Gauge("inbox_number_circuit_open", "1 while the number's sends are held after a run of "
                                                         "transient failures (the circuit breaker).", ["number"])
WORKER_HEARTBEAT_AGE = Gauge("inbox_worker_heartbeat_age_seconds", "Seconds since a worker last proved it is alive "
                                                                   "(every 10 s; +Inf once its 30-s mark expired).")
WEBHOOK_SIGNATURE_FAILURES = Counter("inbox_webhook_signature_failures_total",
                                     "Webhook POSTs refused because their X-Hub-Signature-256 did not match.")
QUALITY = {"GREEN": 3, "YELLOW": 2, "RED": 1}
JOB_QUEUE_DEPTH = Gauge("inbox_queue_depth", "Jobs in an arq queue (due and deferred).", ["queue"])
JOB_QUEUE_OLDEST = Gauge("inbox_queue_oldest_seconds", "How long the oldest due job of an arq queue has waited "
                                                       "(0 when none is due).", ["queue"])
OUTBOX_LAG = Gauge("inbox_outbox_lag_seconds", "How long a number's oldest queued message has waited (0: none).",
                   ["number"])
WEBHOOK_TO_STORED = Histogram("inbox_webhook_to_stored_seconds",
                              "From a customer's message (Meta's timestamp, whole seconds) to it being stored.",
                              buckets=(.5, 1, 2, 5, 10, 30, 60, 300, 3600))
STORED_TO_LIVE = Histogram("inbox_stored_to_live_seconds",
                           "From a change being stored and published to its frames reaching this process's tabs.",
                           buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))


async def refresh_health(runtime: Any) -> None:
    """The numbers' health gauges (one projected read of the numbers) and the workers' heartbeat age."""
    from app.domains.accounts.models import WhatsAppAccount
    from app.queue import HEARTBEAT_KEY

    now = utcnow()
    numbers = WhatsAppAccount.get_motor_collection().find({}, projection={"phone_number_id": 1, "health": 1})
    async for raw in numbers:
        number, health = raw.get("phone_number_id") or "", raw.get("health") or {}
        NUMBER_QUALITY.labels(number=number).set(QUALITY.get(str(health.get("quality_rating") or "").upper(), 0))
        NUMBER_TOKEN_VALID.labels(number=number).set({"ok": 1, "invalid": 0}.get(health.get("token_state"), -1))
        NUMBER_SENDING_STOPPED.labels(number=number).set(1 if health.get("sending_stopped") else 0)
        until = health.get("circuit_open_until")
        NUMBER_CIRCUIT_OPEN.labels(number=number).set(1 if until is not None and as_utc(until) > now else 0)
    beat = await runtime.redis.get(HEARTBEAT_KEY)
    WORKER_HEARTBEAT_AGE.set(max(0.0, time.time() - float(beat)) if beat else math.inf)


async def refresh_queues(runtime: Any) -> None:
    """The arq queue's depth and its oldest due job's wait (its scores are when each job may run, in ms); each
    number's outbox lag, from its oldest queued message (the (account_id, status, _id) index, one read a number)."""
    from app.domains.accounts.models import WhatsAppAccount
    from app.domains.messages.models import Message, MessageStatus
    from app.queue import DEFAULT_QUEUE

    now_ms = time.time() * 1000
    JOB_QUEUE_DEPTH.labels(queue=DEFAULT_QUEUE).set(await runtime.redis.zcard(DEFAULT_QUEUE))
    due = await runtime.redis.zrangebyscore(DEFAULT_QUEUE, "-inf", now_ms, start=0, num=1, withscores=True)
    JOB_QUEUE_OLDEST.labels(queue=DEFAULT_QUEUE).set(max(0.0, (now_ms - due[0][1]) / 1000) if due else 0.0)
    now = utcnow()
    async for raw in WhatsAppAccount.get_motor_collection().find({}, projection={"phone_number_id": 1}):
        oldest = await Message.get_motor_collection().find_one(
            {"account_id": raw["_id"], "status": MessageStatus.QUEUED.value}, sort=[("_id", 1)],
            projection={"status_at.queued": 1})
        queued = ((oldest or {}).get("status_at") or {}).get("queued") or (oldest["_id"].generation_time if oldest
                                                                           else None)
        OUTBOX_LAG.labels(number=raw.get("phone_number_id") or "").set(
            max(0.0, (now - as_utc(queued)).total_seconds()) if queued is not None else 0.0)


async def refresh_read_at_scrape(runtime: Any) -> None:
    """Every gauge read from Redis and MongoDB rather than counted where it happens: at each scrape of the web's
    /metrics, and every 10 s in a worker that serves its own (INBOX_WORKER_METRICS_PORT: workers/tasks.py)."""
    for refresh in (lambda: refresh_queue_depth(runtime.outbox.queue), lambda: refresh_health(runtime),
                    lambda: refresh_queues(runtime)):
        try:
            await refresh()
        except Exception:  # noqa: BLE001 - a scrape must answer even when Redis or MongoDB is down
            pass


async def refresh_queue_depth(outbox_queue: Any) -> None:
    """Sum every number's lanes into QUEUE_DEPTH (cheap: three lengths per number with work)."""
    totals = {"agent": 0, "bulk": 0, "in_progress": 0}
    for account_id in await outbox_queue.accounts():
        agent, bulk, taken = await outbox_queue.depth(account_id)
        totals["agent"] += agent
        totals["bulk"] += bulk
        totals["in_progress"] += taken
    for lane, value in totals.items():
        QUEUE_DEPTH.labels(lane=lane).set(value)


LOCAL_PEERS = ("127.0.0.1", "::1")


def may_scrape(token: str | None, authorization: str | None, peer: str | None) -> bool:
    """With INBOX_METRICS_TOKEN: that bearer token; without: only a scraper on this host."""
    if token:
        scheme, _, given = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
    return peer in LOCAL_PEERS


@get("/metrics", include_in_schema=False)
async def metrics_endpoint(request: Request, runtime: NamedDependency[Any]) -> Response[bytes]:
    """Prometheus text format, for the scraper only (see ``may_scrape``)."""
    token = runtime.settings.metrics_token.get_secret_value() if runtime.settings.metrics_token else None
    if not may_scrape(token, request.headers.get("authorization"), request.client.host if request.client else None):
        # A scraper is no browser: a plain 401, not the sign-in redirect pages get.
        return Response(error_body("Metrics need the bearer token set in INBOX_METRICS_TOKEN.", "METRICS_TOKEN"),
                        status_code=401, headers={"WWW-Authenticate": "Bearer"})
    await refresh_read_at_scrape(runtime)
    return Response(content=generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
