"""Managing event subscriptions: create (secret shown once), edit, enable, rotate, delete, delivery log."""

from __future__ import annotations

from beanie import PydanticObjectId

from app.db import utcnow
from app.domains.audit import services as audit
from app.domains.subscriptions.delivery import Deliverer
from app.domains.subscriptions.events import IntegrationEvents, event_body
from app.domains.subscriptions.models import (
    PING_EVENT,
    Delivery,
    DeliveryState,
    EventType,
    IntegrationEvent,
    Subscription,
)
from app.domains.subscriptions.signing import new_signing_secret
from app.domains.subscriptions.ssrf import check_endpoint_url
from app.errors import Conflict, ValidationFailed
from app.pagination import Page, paginate
from app.security import SecretBox, last4

MAX_SUBSCRIPTIONS = 20
MAX_DESCRIPTION = 200


def clean_events(events: list[str] | None) -> list[str]:
    known = [e.value for e in EventType]
    wanted = list(dict.fromkeys(str(e).strip() for e in (events or []) if str(e).strip()))
    unknown = [e for e in wanted if e not in known]
    if unknown:
        raise ValidationFailed(f"Unknown events: {', '.join(unknown)[:200]}.", error_code="UNKNOWN_EVENT",
                               details={"events": f"choose from {', '.join(known)}"})
    if not wanted:
        raise ValidationFailed("Choose at least one event.", error_code="NO_EVENTS",
                               details={"events": "choose at least one"})
    return [e for e in known if e in wanted]


def clean_description(description: str | None) -> str:
    text = " ".join((description or "").split())
    if len(text) > MAX_DESCRIPTION:
        raise ValidationFailed(f"The description is at most {MAX_DESCRIPTION} characters.",
                               details={"description": f"{len(text)} characters"})
    return text


class SubscriptionService:
    def __init__(self, secrets: SecretBox, events: IntegrationEvents, deliverer: Deliverer, *,
                 allow_private: bool) -> None:
        self.secrets = secrets
        self.events = events
        self.deliverer = deliverer
        self.allow_private = allow_private

    async def list(self, workspace_id: PydanticObjectId) -> list[Subscription]:
        return await Subscription.scoped(workspace_id).sort("_id").to_list()

    async def get(self, workspace_id: PydanticObjectId, subscription_id: str) -> Subscription:
        return await Subscription.get_scoped(workspace_id, subscription_id)

    async def create(self, workspace_id: PydanticObjectId, url: str, events: list[str], description: str = "",
                     created_by: PydanticObjectId | None = None) -> tuple[Subscription, str]:
        """A new endpoint; returns it with its signing secret (shown this once, stored encrypted)."""
        events = clean_events(events)
        description = clean_description(description)
        url = await check_endpoint_url(url, allow_private=self.allow_private)
        if await Subscription.scoped(workspace_id).count() >= MAX_SUBSCRIPTIONS:
            raise Conflict(f"A workspace has at most {MAX_SUBSCRIPTIONS} endpoints.", error_code="TOO_MANY_SUBSCRIPTIONS")
        secret = new_signing_secret()
        subscription = Subscription(workspace_id=workspace_id, url=url, events=events, description=description,
                                    secret_encrypted=self.secrets.encrypt(secret), secret_last4=last4(secret),
                                    created_by=created_by)
        await subscription.insert()
        await self.events.changed(workspace_id)
        await audit.record(workspace_id, "webhook_endpoint.created", "webhook_endpoint", subscription.id, url,
                           {"events": events})
        return subscription, secret

    async def update(self, subscription: Subscription, *, url: str | None = None, events: list[str] | None = None,
                     description: str | None = None, active: bool | None = None) -> Subscription:
        before = {"url": subscription.url, "events": list(subscription.events), "description": subscription.description,
                  "active": subscription.active}
        if url is not None:
            subscription.url = await check_endpoint_url(url, allow_private=self.allow_private)
        if events is not None:
            subscription.events = clean_events(events)
        if description is not None:
            subscription.description = clean_description(description)
        if active is not None and active != subscription.active:
            subscription.active = active
            if active:  # a fresh start: the admin says it works again
                subscription.disabled_reason = None
                subscription.disabled_at = None
                subscription.failing_since = None
            else:
                subscription.disabled_reason = "Disabled by an admin."
                subscription.disabled_at = utcnow()
        subscription.updated_at = utcnow()
        await subscription.save()
        await self.events.changed(subscription.workspace_id)
        edited = audit.diff(before, {"url": subscription.url, "events": list(subscription.events),
                                     "description": subscription.description, "active": subscription.active})
        if edited:
            await audit.record(subscription.workspace_id, "webhook_endpoint.changed", "webhook_endpoint",
                               subscription.id, subscription.url, edited)
        return subscription

    async def rotate_secret(self, subscription: Subscription) -> str:
        """A new signing secret, effective for the next attempt (the old one stops at once)."""
        secret = new_signing_secret()
        subscription.secret_encrypted = self.secrets.encrypt(secret)
        subscription.secret_last4 = last4(secret)
        subscription.updated_at = utcnow()
        await subscription.save()
        await audit.record(subscription.workspace_id, "webhook_endpoint.secret_rotated", "webhook_endpoint",
                           subscription.id, subscription.url, {"secret": audit.CHANGED})
        return secret

    async def delete(self, subscription: Subscription) -> None:
        await Delivery.find(Delivery.subscription_id == subscription.id).delete()
        await subscription.delete()
        await self.events.changed(subscription.workspace_id)
        await audit.record(subscription.workspace_id, "webhook_endpoint.deleted", "webhook_endpoint", subscription.id,
                           subscription.url)

    async def deliveries(self, subscription: Subscription, *, limit: int, cursor: str | None,
                         state: DeliveryState | None = None) -> Page[Delivery]:
        filters = [Delivery.subscription_id == subscription.id]
        if state is not None:
            filters.append(Delivery.state == state)
        return await paginate(Delivery.scoped(subscription.workspace_id, *filters),
                              f"deliveries:{subscription.id}", field="_id", limit=limit, cursor=cursor)

    async def delivery(self, subscription: Subscription, delivery_id: str) -> Delivery:
        delivery = await Delivery.get_scoped(subscription.workspace_id, delivery_id)
        if delivery.subscription_id != subscription.id:
            await Delivery.get_scoped(subscription.workspace_id, None)  # raises NotFound
        return delivery

    async def event_of(self, delivery: Delivery) -> IntegrationEvent | None:
        return await IntegrationEvent.get(delivery.event_id)

    async def redeliver(self, subscription: Subscription, delivery: Delivery) -> Delivery:
        return await self.deliverer.redeliver(subscription, delivery)

    async def send_test(self, subscription: Subscription) -> Delivery:
        """A ``ping`` event to this endpoint only, to check its URL and signature verification."""
        if not subscription.active:
            raise Conflict("This endpoint is disabled: enable it first.", error_code="SUBSCRIPTION_DISABLED")
        now = utcnow()
        event = IntegrationEvent(workspace_id=subscription.workspace_id, key=f"ping:{PydanticObjectId()}",
                                 type=PING_EVENT, occurred_at=now, body="", created_at=now)
        event.id = PydanticObjectId()
        event.body = event_body(event.id, PING_EVENT, subscription.workspace_id, now,
                                {"subscription_id": str(subscription.id), "message": "Test event from wa-inbox"})
        await event.insert()
        delivery = await self.events.queue_delivery(subscription, event)
        assert delivery is not None
        return delivery
