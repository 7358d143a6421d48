"""JSON API v1: event subscriptions (admins only): endpoints, secrets, delivery log, redelivery."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter, QueryParameter
from pydantic import BaseModel, ConfigDict, Field

from app.api_shapes import Flag
from app.auth import requires_admin
from app.db import as_utc
from app.domains.subscriptions.models import Delivery, DeliveryState, EventType, Subscription
from app.domains.workspaces.services import Principal
from app.errors import ValidationFailed
from app.pagination import DEFAULT_LIMIT, MAX_LIMIT
from app.runtime import Runtime


class SubscriptionOut(BaseModel):
    id: str
    url: str = Field(examples=["https://crm.example.com/hooks/whatsapp"])
    description: str = ""
    events: list[EventType]
    active: bool
    disabled_reason: str | None = Field(None, description="Why deliveries stopped, in words")
    disabled_at: datetime | None = None
    failing_since: datetime | None = None
    last_attempt_at: datetime | None = None
    last_success_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    secret_last4: str = Field("", description="The end of the signing secret (the secret is shown once)")
    created_at: datetime
    updated_at: datetime


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(description="The signing secret: shown this once, store it now",
                        examples=["whsec_q2n0Yx..."])


class SubscriptionList(BaseModel):
    data: list[SubscriptionOut]
    next_cursor: str | None = None


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(description="An https:// URL on the public internet", max_length=2000,
                     examples=["https://crm.example.com/hooks/whatsapp"])
    events: list[EventType] = Field(min_length=1, examples=[["message.received", "message.status_changed"]])
    description: str = Field("", max_length=200)


class SubscriptionPatch(BaseModel):
    """Send only what changes; ``active: true`` re-enables a disabled endpoint (its failure clock restarts)."""

    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(None, max_length=2000)
    events: list[EventType] | None = Field(None, min_length=1)
    description: str | None = Field(None, max_length=200)
    active: Flag | None = None


class SecretOut(BaseModel):
    secret: str = Field(description="The new signing secret: shown this once")


class AttemptOut(BaseModel):
    at: datetime
    status_code: int | None = Field(None, description="The endpoint's HTTP status (null: no answer)")
    error: str | None = None
    duration_ms: int
    manual: bool = False


class DeliveryOut(BaseModel):
    id: str
    subscription_id: str
    event_id: str = Field(examples=["evt_665f1c2e8a4b5c6d7e8f9012"])
    event_type: str
    state: DeliveryState
    attempts: list[AttemptOut]
    next_attempt_at: datetime | None = None
    retry_until: datetime
    delivered_at: datetime | None = None
    created_at: datetime
    payload: dict[str, Any] | None = Field(None, description="The JSON body we POST (on the single delivery)")


class DeliveryList(BaseModel):
    data: list[DeliveryOut]
    next_cursor: str | None = None


def _utc(value: datetime | None) -> datetime | None:
    return as_utc(value) if value else None


def subscription_out(s: Subscription) -> SubscriptionOut:
    return SubscriptionOut(
        id=str(s.id), url=s.url, description=s.description, events=[EventType(e) for e in s.events], active=s.active,
        disabled_reason=s.disabled_reason, disabled_at=_utc(s.disabled_at), failing_since=_utc(s.failing_since),
        last_attempt_at=_utc(s.last_attempt_at), last_success_at=_utc(s.last_success_at),
        last_status_code=s.last_status_code, last_error=s.last_error, secret_last4=s.secret_last4,
        created_at=as_utc(s.created_at), updated_at=as_utc(s.updated_at))


def delivery_out(d: Delivery, body: str | None = None) -> DeliveryOut:
    return DeliveryOut(
        id=str(d.id), subscription_id=str(d.subscription_id), event_id=f"evt_{d.event_id}", event_type=d.event_type,
        state=d.state, attempts=[AttemptOut(**a.model_dump()) for a in d.attempts], next_attempt_at=_utc(d.next_attempt_at),
        retry_until=as_utc(d.retry_until), delivered_at=_utc(d.delivered_at), created_at=as_utc(d.created_at),
        payload=json.loads(body) if body else None)


class SubscriptionsApi(Controller):
    path = "/api/v1/subscriptions"
    guards = [requires_admin]
    tags = ["event subscriptions"]

    @get("/", summary="Event subscriptions (webhook endpoints)")
    async def list_subscriptions(self, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> SubscriptionList:
        items = await runtime.subscriptions.list(principal.workspace_id)
        return SubscriptionList(data=[subscription_out(s) for s in items])

    @post("/", summary="Register an endpoint; the answer's `secret` is shown this once", status_code=201)
    async def create_subscription(self, data: JSONBody[SubscriptionIn], runtime: NamedDependency[Runtime],
                                  principal: NamedDependency[Principal]) -> SubscriptionCreated:
        subscription, secret = await runtime.subscriptions.create(
            principal.workspace_id, data.url, [e.value for e in data.events], data.description, principal.user_id)
        return SubscriptionCreated(**subscription_out(subscription).model_dump(), secret=secret)

    @get("/{subscription_id:str}", summary="One event subscription")
    async def get_subscription(self, subscription_id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> SubscriptionOut:
        return subscription_out(await runtime.subscriptions.get(principal.workspace_id, subscription_id))

    @patch("/{subscription_id:str}", summary="Change the URL, events or description; disable or re-enable")
    async def update_subscription(self, subscription_id: FromPath[str], data: JSONBody[SubscriptionPatch], runtime: NamedDependency[Runtime],
                                  principal: NamedDependency[Principal]) -> SubscriptionOut:
        subscription = await runtime.subscriptions.get(principal.workspace_id, subscription_id)
        if not data.model_fields_set:
            raise ValidationFailed("Nothing to change.", details={"body": "Send at least one field."})
        changes = data.model_dump(exclude_unset=True)
        for name in ("url", "events", "active"):
            if name in changes and changes[name] is None:
                raise ValidationFailed(f"{name} cannot be null.", details={name: "cannot be null"})
        if changes.get("events") is not None:
            changes["events"] = [str(e) for e in changes["events"]]
        return subscription_out(await runtime.subscriptions.update(subscription, **changes))

    @delete("/{subscription_id:str}", summary="Delete an endpoint and its delivery log", status_code=204)
    async def delete_subscription(self, subscription_id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> None:
        await runtime.subscriptions.delete(await runtime.subscriptions.get(principal.workspace_id, subscription_id))

    @post("/{subscription_id:str}/rotate-secret", summary="A new signing secret (shown this once)", status_code=200)
    async def rotate_secret(self, subscription_id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> SecretOut:
        subscription = await runtime.subscriptions.get(principal.workspace_id, subscription_id)
        return SecretOut(secret=await runtime.subscriptions.rotate_secret(subscription))

    @post("/{subscription_id:str}/test", summary="Send a `ping` event to this endpoint", status_code=202)
    async def send_test(self, subscription_id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> DeliveryOut:
        subscription = await runtime.subscriptions.get(principal.workspace_id, subscription_id)
        return delivery_out(await runtime.subscriptions.send_test(subscription))

    @get("/{subscription_id:str}/deliveries", summary="The delivery log: every event, its attempts and answers")
    async def list_deliveries(self, subscription_id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal],
                              delivery_state: Annotated[DeliveryState | None, QueryParameter(name="state")] = None,
                              limit: int = Parameter(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
                              cursor: str | None = Parameter(default=None, max_length=500)) -> DeliveryList:
        subscription = await runtime.subscriptions.get(principal.workspace_id, subscription_id)
        page = await runtime.subscriptions.deliveries(subscription, limit=limit, cursor=cursor, state=delivery_state)
        return DeliveryList(data=[delivery_out(d) for d in page.items], next_cursor=page.next_cursor)

    @get("/{subscription_id:str}/deliveries/{delivery_id:str}", summary="One delivery with the exact payload")
    async def get_delivery(self, subscription_id: FromPath[str], delivery_id: FromPath[str], runtime: NamedDependency[Runtime],
                           principal: NamedDependency[Principal]) -> DeliveryOut:
        subscription = await runtime.subscriptions.get(principal.workspace_id, subscription_id)
        delivery = await runtime.subscriptions.delivery(subscription, delivery_id)
        event = await runtime.subscriptions.event_of(delivery)
        return delivery_out(delivery, event.body if event else None)

    @post("/{subscription_id:str}/deliveries/{delivery_id:str}/redeliver", status_code=202,
          summary="Send this event again now (same event id; a new 24-hour retry window)")
    async def redeliver(self, subscription_id: FromPath[str], delivery_id: FromPath[str], runtime: NamedDependency[Runtime],
                        principal: NamedDependency[Principal]) -> DeliveryOut:
        subscription = await runtime.subscriptions.get(principal.workspace_id, subscription_id)
        delivery = await runtime.subscriptions.delivery(subscription, delivery_id)
        return delivery_out(await runtime.subscriptions.redeliver(subscription, delivery))
