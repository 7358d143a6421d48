"""Sending one event to one endpoint: sign, POST through the SSRF guard, log, retry or give up.

Retries back off (10 s, 30 s, 1 min, 5 min, 15 min, 30 min, 1 h, 2 h, 4 h, then every 6 h) for
24 hours from the event. An endpoint that has failed every attempt for 24 hours is disabled with
the reason in words (the admin sees it on the screen and in the API); its pending deliveries are
cancelled and can be redelivered by hand once it works again.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
from beanie import PydanticObjectId

from app.db import as_utc, utcnow
from app.domains.subscriptions.models import Attempt, Delivery, DeliveryState, IntegrationEvent, Subscription
from app.domains.subscriptions.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from app.errors import Conflict
from app.logging import get_logger
from app.retry import backoff
from app.security import SecretBox

log = get_logger(__name__)

BACKOFF_SECONDS = (10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 21600)
"""Delay before the retry after the n-th failure (the last repeats), ±10 % jitter: README's schedule."""
DISABLE_AFTER = timedelta(hours=24)
MAX_ATTEMPTS_KEPT = 50
USER_AGENT = "wa-inbox-webhooks/1"

Enqueue = Callable[..., Awaitable[Any]]


def _describe(response: httpx.Response | None, error: Exception | None) -> str:
    if response is not None:
        return f"HTTP {response.status_code}"
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:300]


class Deliverer:
    def __init__(self, secrets: SecretBox, client: httpx.AsyncClient, enqueue: Enqueue, *,
                 backoff_scale: float = 1.0) -> None:
        self.secrets = secrets
        self.client = client
        self._enqueue = enqueue
        self.backoff_scale = backoff_scale

    async def attempt(self, delivery_id: str, *, manual: bool = False) -> str:
        """One attempt of a pending delivery (the arq job); returns the outcome in a word."""
        delivery = await Delivery.get(PydanticObjectId(delivery_id))
        if delivery is None or delivery.state is not DeliveryState.PENDING:
            return "gone"
        subscription = await Subscription.get(delivery.subscription_id)
        event = await IntegrationEvent.get(delivery.event_id)
        if subscription is None or event is None:
            await self._finish(delivery, DeliveryState.CANCELLED)
            return "cancelled"
        if not subscription.active:
            await self._finish(delivery, DeliveryState.CANCELLED)
            return "cancelled"
        body = event.body.encode()
        timestamp = str(int(time.time()))
        secret = self.secrets.decrypt(subscription.secret_encrypted)
        headers = {
            "Content-Type": "application/json", "User-Agent": USER_AGENT,
            "X-Inbox-Event": event.type, "X-Inbox-Event-Id": event.public_id, "X-Inbox-Delivery": str(delivery.id),
            TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body),
        }
        started = time.perf_counter()
        response: httpx.Response | None = None
        error: Exception | None = None
        try:
            response = await self.client.post(subscription.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            error = exc
        now = utcnow()
        attempt = Attempt(at=now, status_code=response.status_code if response is not None else None,
                          error=None if response is not None and response.is_success else _describe(response, error),
                          duration_ms=int((time.perf_counter() - started) * 1000), manual=manual)
        ok = response is not None and response.is_success
        delivery.attempts = [*delivery.attempts, attempt][-MAX_ATTEMPTS_KEPT:]
        delivery.updated_at = now
        if ok:
            delivery.state = DeliveryState.DELIVERED
            delivery.delivered_at = now
            delivery.next_attempt_at = None
        elif now >= as_utc(delivery.retry_until):
            delivery.state = DeliveryState.FAILED
            delivery.next_attempt_at = None
        else:
            failures = sum(1 for a in delivery.attempts if a.status_code is None or a.status_code >= 300)
            delay = backoff(failures, schedule=BACKOFF_SECONDS, scale=self.backoff_scale, jitter=(0.9, 1.1))
            delivery.next_attempt_at = now + timedelta(seconds=delay)
        await delivery.save()
        if delivery.state is DeliveryState.PENDING:
            await self._enqueue(str(delivery.id), len(delivery.attempts),
                                defer=(as_utc(delivery.next_attempt_at) - now).total_seconds())
        await self._record_health(subscription, attempt, ok)
        return "delivered" if ok else delivery.state.value

    async def _record_health(self, subscription: Subscription, attempt: Attempt, ok: bool) -> None:
        now = attempt.at
        changes: dict[str, Any] = {"last_attempt_at": now, "last_status_code": attempt.status_code,
                                   "last_error": attempt.error}
        this = Subscription.find_one(Subscription.id == subscription.id)
        if ok:
            changes.update(failing_since=None, last_success_at=now)
            await this.update({"$set": changes})
            return
        failing_since = as_utc(subscription.failing_since) if subscription.failing_since else now
        changes["failing_since"] = failing_since
        if now - failing_since >= DISABLE_AFTER and subscription.active:
            reason = (f"Disabled {now:%Y-%m-%d %H:%M} UTC: every delivery failed for 24 hours "
                      f"(since {failing_since:%Y-%m-%d %H:%M} UTC; last answer: {attempt.error}). "
                      "Fix the endpoint, enable it again, then redeliver what it missed.")
            changes.update(active=False, disabled_reason=reason, disabled_at=now, updated_at=now)
            log.warning("event subscription disabled", subscription_id=str(subscription.id))
            # Its waiting deliveries first: once the endpoint shows as disabled, they show as cancelled
            # (one created in between is cancelled by its attempt, which finds the endpoint inactive).
            await Delivery.find(Delivery.subscription_id == subscription.id,
                                Delivery.state == DeliveryState.PENDING).update(
                {"$set": {"state": DeliveryState.CANCELLED.value, "next_attempt_at": None, "updated_at": now}})
            await this.update({"$set": changes})
            return
        await this.update({"$set": changes})

    async def _finish(self, delivery: Delivery, state: DeliveryState) -> None:
        await Delivery.find_one(Delivery.id == delivery.id).update(
            {"$set": {"state": state.value, "next_attempt_at": None, "updated_at": utcnow()}})

    async def redeliver(self, subscription: Subscription, delivery: Delivery) -> Delivery:
        """Send again by hand (any state): a fresh 24-hour retry window, the same event id and body."""
        if not subscription.active:
            raise Conflict("This endpoint is disabled: enable it first.", error_code="SUBSCRIPTION_DISABLED")
        now = utcnow()
        await Delivery.find_one(Delivery.id == delivery.id).update(
            {"$set": {"state": DeliveryState.PENDING.value, "next_attempt_at": now,
                      "retry_until": now + DISABLE_AFTER, "updated_at": now}})
        fresh = await Delivery.get(delivery.id)
        assert fresh is not None
        await self._enqueue(str(fresh.id), len(fresh.attempts), manual=True)
        return fresh

    async def sweep(self, grace: timedelta = timedelta(minutes=2)) -> int:
        """Cron: queue again pending deliveries whose job was lost (Redis flushed, a worker died)."""
        now = utcnow()
        count = 0
        async for delivery in Delivery.find({"state": DeliveryState.PENDING.value,
                                             "next_attempt_at": {"$lte": now - grace}}).limit(500):
            await self._enqueue(str(delivery.id), len(delivery.attempts))
            count += 1
        return count
