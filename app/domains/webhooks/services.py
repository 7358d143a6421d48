"""Receiving Meta's webhooks: verify, apply, keep the raw body; and the sweeper for what was never ingested.

Meta retries every delivery not answered 2xx, for days: its retry is the durable queue in front
of us, so a body is applied *before* the 200 and nothing acknowledged is unapplied:
- one cached account lookup, an HMAC, a shape check with msgspec;
- the body applied in this process (``WebhookIngestor.apply``: idempotent, so a redelivery or a
  concurrent duplicate ends in the same state). A status is then one conditional update of its
  message (and of its conversation's last-message tick): no queue, no job, no second process;
- the raw body kept (``webhook_events``, ``_id`` = its SHA-256, one group-committed insert) when
  it holds anything but statuses: customers' messages as Meta sent them, account and template
  news, unknown numbers, notes. A statuses-only body that applied cleanly is not kept (three per
  message sent: the collection would be mostly ticks);
- the database down → 503 (Meta retries); any other failure, or a body bigger than
  ``INLINE_MAX_ITEMS`` → the body is kept un-ingested and a worker applies it (a batched enqueue
  that does not hold the answer; if Redis is down, the sweeper enqueues what is stored).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import msgspec
from arq.connections import ArqRedis
from beanie import PydanticObjectId

from app.cache import TtlCache
from app.db import DATABASE_DOWN, utcnow
from app.domains.accounts.models import WhatsAppAccount
from app.domains.accounts.services import AccountService
from app.domains.webhooks.event_writer import EventWriter
from app.domains.webhooks.ingest import WebhookIngestor
from app.domains.webhooks.models import MAX_INGEST_ATTEMPTS, WebhookEvent
from app.errors import ClientError, Forbidden, Unauthorized
from app.logging import get_logger
from app.metrics import WEBHOOK_SIGNATURE_FAILURES
from app.queue import enqueue_ingest
from app.whatsapp import signature

log = get_logger(__name__)

MAX_BODY_BYTES = 3 * 1024 * 1024
"""Meta's webhook payloads are at most 3 MB; anything bigger is refused with 413."""
ENQUEUE_TIMEOUT_SECONDS = 1.0
"""A slow Redis must not hold Meta's request: past this the sweeper enqueues the stored event."""
ENDPOINT_CACHE_SECONDS = 300.0
MAX_PENDING_ENQUEUES = 20_000
ENQUEUE_COALESCE_SECONDS = 0.002
"""How long an enqueue waits for company before its batch goes to Redis."""
SWEEP_GRACE = timedelta(seconds=30)
"""Events younger than this are left to their own job; the sweeper only rescues older ones."""
EVENT_RETENTION = timedelta(days=30)
"""Raw bodies are kept this long after ingestion (for support and replays), then pruned."""
INLINE_MAX_ITEMS = 50
"""Messages + statuses + changes a body may hold to be applied while Meta waits; bigger ones go to a worker."""


class _Change(msgspec.Struct):
    field: str = ""


class _Entry(msgspec.Struct):
    changes: list[_Change] = []


class _Envelope(msgspec.Struct):
    """Just enough shape to refuse what is not a webhook at all; the full parse happens at ingestion."""

    object: str
    entry: list[_Entry]


_decode_envelope = msgspec.json.Decoder(_Envelope).decode


@dataclass(frozen=True)
class WebhookEndpoint:
    """What the webhook routes need of an account, cached briefly (decrypting per request is wasted work)."""

    account_id: PydanticObjectId
    workspace_id: PydanticObjectId
    app_secret: str
    verify_token: str

    def __repr__(self) -> str:
        return f"WebhookEndpoint(account_id={self.account_id!s})"


@dataclass(frozen=True)
class Receipt:
    event_id: str
    duplicate: bool


class IngestEnqueuer:
    """Enqueues the ingestion of kept bodies right after the answer, off Meta's request.

    The event is already stored when a request submits it, so nothing waits on Redis. Rare since
    the endpoint applies bodies itself (only big or failed ones come here). If Redis is down the
    batch is logged and left to the sweeper.
    """

    def __init__(self, pool: Callable[[], ArqRedis | None], max_batch: int = 500) -> None:
        self._pool = pool
        self._pending: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self.max_batch = max_batch

    def submit(self, event_id: str) -> None:
        if len(self._pending) >= MAX_PENDING_ENQUEUES:
            # Redis has been unreachable for a while: stop holding ids, the sweeper has them all.
            del self._pending[: len(self._pending) // 2]
        self._pending.append(event_id)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def flush(self) -> None:
        """Wait until everything submitted so far has been sent to Redis (or given up on)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def _drain(self) -> None:
        await asyncio.sleep(ENQUEUE_COALESCE_SECONDS)  # requests arriving meanwhile join this batch
        while self._pending:
            batch, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
            pool = self._pool()
            try:
                if pool is None:
                    raise RuntimeError("the queue pool is not open")
                async with asyncio.timeout(ENQUEUE_TIMEOUT_SECONDS):
                    for event_id in batch:
                        await enqueue_ingest(pool, event_id)
            except Exception as exc:  # Redis down or slow: the events are stored, the sweeper enqueues them
                log.warning("ingestion not enqueued; the sweeper will", events=len(batch), error=type(exc).__name__)


class WebhookReceiver:
    """The public webhook endpoint's logic (the controller only reads the request)."""

    def __init__(self, accounts: AccountService, pool: Callable[[], ArqRedis | None],
                 ingestor: WebhookIngestor | None = None) -> None:
        """``ingestor``: applies bodies before the answer; without one every body goes to a worker."""
        self.accounts = accounts
        self.ingestor = ingestor
        self.enqueuer = IngestEnqueuer(pool)
        self.writer = EventWriter(WebhookEvent.get_motor_collection)
        self._endpoints: TtlCache[WebhookEndpoint | None] = TtlCache(ENDPOINT_CACHE_SECONDS)
        # A number disabled, deleted or given a new app secret: its webhook URL is read again at once.
        accounts.on_change(lambda account_id: self._endpoints.clear())
        if ingestor is not None:
            accounts.on_change(ingestor.numbers.forget)

    async def problems(self, workspace_id: PydanticObjectId, account_id: PydanticObjectId, limit: int = 20
                       ) -> list[dict[str, Any]]:
        """The number's latest webhook bodies with something left out or not usable (newest first), for
        the admin's number page: when, what, and whether it was applied."""
        raw = await WebhookEvent.get_motor_collection().find(
            {"workspace_id": workspace_id, "account_id": account_id,
             "$or": [{"error": {"$ne": None}}, {"notes.0": {"$exists": True}}]},
            projection={"received_at": 1, "ingested_at": 1, "error": 1, "notes": 1, "fields": 1, "attempts": 1},
        ).sort([("received_at", -1)]).limit(limit).to_list(None)
        return [{"id": r["_id"], "received_at": r.get("received_at"), "applied": r.get("ingested_at") is not None,
                 "error": r.get("error"), "notes": r.get("notes") or [], "fields": r.get("fields") or [],
                 "attempts": r.get("attempts", 0)} for r in raw]

    async def endpoint(self, webhook_key: str, *, fresh: bool = False) -> WebhookEndpoint | None:
        """The account behind a webhook URL key, or None (the route answers 404)."""
        async def load() -> WebhookEndpoint | None:
            account: WhatsAppAccount | None = await self.accounts.by_webhook_key(webhook_key)
            if account is None or not account.enabled:
                return None
            return WebhookEndpoint(account.id, account.workspace_id, self.accounts.app_secret(account),
                                   account.verify_token)

        return await self._endpoints.get(webhook_key, load, fresh=fresh)

    @staticmethod
    def challenge(endpoint: WebhookEndpoint, mode: str | None, token: str | None, challenge: str | None) -> str:
        """Meta's subscription check: echo the challenge when mode and verify token match."""
        if mode != "subscribe" or not token or not challenge or not _same(token, endpoint.verify_token):
            raise Forbidden("Verification failed: wrong hub.mode or hub.verify_token.", error_code="VERIFY_FAILED")
        return challenge

    async def receive(self, webhook_key: str, endpoint: WebhookEndpoint, body: bytes,
                      header: str | None) -> Receipt:
        """Verify the signature over the raw bytes, store the event, enqueue its ingestion."""
        if not signature.verify(endpoint.app_secret, body, header):
            # The admin may have just rotated the app secret: check against a fresh read, at most
            # once a second per URL, so a flood of bad signatures cannot turn into database reads.
            left = self._endpoints.expires_in(webhook_key)
            stale = left is None or left < ENDPOINT_CACHE_SECONDS - 1.0
            fresh = await self.endpoint(webhook_key, fresh=True) if stale else None
            if fresh is None or not signature.verify(fresh.app_secret, body, header):
                log.info("webhook signature rejected", account_id=str(endpoint.account_id),
                         reason="missing" if not header else "mismatch")
                WEBHOOK_SIGNATURE_FAILURES.inc()
                raise Unauthorized("Missing or wrong X-Hub-Signature-256.", error_code="INVALID_SIGNATURE")
        try:
            envelope = _decode_envelope(body)
        except RecursionError:
            # Meta's payloads nest about ten levels; a body nested past the parser's limit is nobody's
            # webhook. 400 with the reason (not a 500 and its stack trace); nothing is stored.
            log.warning("signed webhook body nested too deep", account_id=str(endpoint.account_id), size=len(body))
            raise ClientError("The body is nested too deeply to be a WhatsApp webhook.",
                              error_code="PAYLOAD_TOO_DEEP") from None
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("signed webhook body is not a webhook envelope", account_id=str(endpoint.account_id),
                        error=str(exc)[:200])
            raise ClientError("The body is not a WhatsApp webhook envelope (JSON object with 'object' and 'entry').",
                              error_code="INVALID_PAYLOAD", details={"reason": str(exc)[:200]}) from None
        event_id = hashlib.sha256(body).hexdigest()
        now = utcnow()
        document = {
            "_id": event_id, "workspace_id": endpoint.workspace_id, "account_id": endpoint.account_id,
            "body": body, "size": len(body), "received_at": now, "created_at": now, "ingested_at": None,
            "attempts": 0, "error": None, "notes": [],
            "fields": [c.field for e in envelope.entry for c in e.changes][:100],
        }
        if self.ingestor is not None:
            try:
                result = await self.ingestor.apply(endpoint.workspace_id, event_id, body, max_items=INLINE_MAX_ITEMS)
            except DATABASE_DOWN:
                raise  # 503: Meta delivers it again
            except Exception as exc:  # noqa: BLE001 - kept for the worker, which retries it with backoff
                log.warning("webhook not applied here; kept for a worker", event_id=event_id,
                            error=f"{type(exc).__name__}: {exc}"[:300])
                document.update(attempts=1, error=f"{type(exc).__name__}: {exc}"[:1000])
            else:
                if result.outcome != "deferred":
                    if result.statuses_only and not result.notes:
                        return Receipt(event_id, duplicate=False)
                    document.update(ingested_at=utcnow(), attempts=1, error=result.error,
                                    notes=list(result.notes)[:100], fields=list(result.fields)[:100])
                    return Receipt(event_id, await self.writer.insert(document))
        # Raw insert, not Document.insert(): no model validation of a 3 MB body on the hot path.
        # A duplicate means Meta redelivered it: stored already; enqueue again in case the first enqueue failed.
        duplicate = await self.writer.insert(document)
        self.enqueuer.submit(event_id)  # the job id (= event id) makes a second enqueue a no-op
        return Receipt(event_id, duplicate)


async def sweep_stale_events(pool: ArqRedis, *, grace: timedelta = SWEEP_GRACE, limit: int = 1000) -> int:
    """Re-enqueue stored events that were never ingested (Redis was down, a worker died); returns how many."""
    cutoff = utcnow() - grace
    cursor = WebhookEvent.get_motor_collection().find(
        {"ingested_at": None, "received_at": {"$lte": cutoff}, "attempts": {"$lt": MAX_INGEST_ATTEMPTS}},
        projection={"_id": 1},
    ).sort("received_at", 1).limit(limit)
    count = 0
    async for row in cursor:
        if await enqueue_ingest(pool, row["_id"]):
            count += 1
    if count:
        log.info("sweeper re-enqueued webhook events", count=count)
    return count


async def prune_ingested_events(*, keep: timedelta = EVENT_RETENTION) -> int:
    """Forget raw bodies ingested more than ``keep`` ago (Meta redelivers for 7 days at most)."""
    result = await WebhookEvent.find(WebhookEvent.ingested_at < utcnow() - keep).delete()
    return result.deleted_count if result is not None else 0


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def body_too_large(content_length: Any) -> bool:
    """True when a Content-Length header announces more than Meta's maximum."""
    try:
        return int(content_length) > MAX_BODY_BYTES
    except (TypeError, ValueError):
        return False
