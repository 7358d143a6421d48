"""Helpers for the inbound tests: a workspace with a number, signed webhook bodies, envelopes, waiting."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from redis.asyncio import Redis

from app.domains.accounts.models import WhatsAppAccount
from app.domains.accounts.services import NewAccount
from app.domains.contacts.models import Contact
from app.domains.conversations.models import Conversation
from app.domains.messages.models import Message, MessageStatus
from app.domains.templates.services import TemplateService
from app.domains.webhooks.ingest import WebhookIngestor
from app.domains.webhooks.models import WebhookEvent
from app.domains.webhooks.services import WebhookReceiver
from app.queue import enqueue_fetch_media, open_pool
from app.realtime import LiveEvents
from app.runtime import Runtime
from app.whatsapp.signature import HEADER, sign

APP_SECRET = "app-secret-for-inbound-tests-0001"
PHONE_NUMBER_ID = "1122334455667"
WABA_ID = "1234567890987654321"
DISPLAY = "972123456789"
_wamids = itertools.count(1)


@dataclass
class Setup:
    runtime: Runtime
    account: WhatsAppAccount
    api_key: str
    email: str
    password: str

    @property
    def workspace_id(self):
        return self.account.workspace_id

    @property
    def webhook_path(self) -> str:
        return f"/webhooks/whatsapp/{self.account.webhook_key}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


async def make_setup(runtime: Runtime, *, email: str = "owner@example.com", phone_number_id: str = PHONE_NUMBER_ID,
                     waba_id: str = WABA_ID, display: str = DISPLAY, app_secret: str = APP_SECRET,
                     access_token: str = "EAAG-test-token-0001") -> Setup:
    password = "correct horse battery"
    workspace, user = await runtime.people.create_workspace("Shop", email, password)
    account = await runtime.accounts.create(workspace.id, NewAccount(
        name="Main", phone_number_id=phone_number_id, waba_id=waba_id, display_phone_number=display,
        access_token=access_token, app_secret=app_secret))
    _, key = await runtime.people.create_api_key(workspace.id, "tests", "admin", user.id)
    return Setup(runtime, account, key, email, password)


def signed(payload: dict[str, Any] | bytes, secret: str = APP_SECRET) -> tuple[bytes, dict[str, str]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return body, {HEADER: sign(secret, body), "Content-Type": "application/json"}


def new_wamid() -> str:
    return f"wamid.TEST{next(_wamids):08d}{time.time_ns()}"


def text_message(body: str = "Hello", *, wamid: str | None = None, from_: str = "972987654321",
                 timestamp: int | None = None, **extra: Any) -> dict[str, Any]:
    return {"from": from_, "id": wamid or new_wamid(), "timestamp": str(timestamp or int(time.time())),
            "type": "text", "text": {"body": body}, **extra}


def envelope(*, messages: list[dict] | None = None, statuses: list[dict] | None = None,
             contacts: list[dict] | None = None, phone_number_id: str = PHONE_NUMBER_ID,
             waba_id: str = WABA_ID, name: str = "Dana") -> dict[str, Any]:
    value: dict[str, Any] = {"messaging_product": "whatsapp",
                             "metadata": {"display_phone_number": DISPLAY, "phone_number_id": phone_number_id}}
    if messages is not None:
        senders = {m["from"] for m in messages if "from" in m}
        value["contacts"] = contacts if contacts is not None else [
            {"profile": {"name": name}, "wa_id": s} for s in sorted(senders)]
        value["messages"] = messages
    if statuses is not None:
        value["statuses"] = statuses
    return {"object": "whatsapp_business_account",
            "entry": [{"id": waba_id, "changes": [{"value": value, "field": "messages"}]}]}


def status(wamid: str, state: str, timestamp: int, *, errors: list[dict] | None = None,
           category: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"id": wamid, "status": state, "timestamp": str(timestamp), "recipient_id": "972987654321"}
    if errors:
        item["errors"] = errors
    if category:
        item["pricing"] = {"billable": True, "pricing_model": "PMP", "category": category}
    return item


@contextlib.asynccontextmanager
async def on_test_loop(runtime: Runtime) -> AsyncIterator[Runtime]:
    """The app's Runtime with Redis, arq and HTTP clients of the test's own event loop.

    The test client runs the app on another loop; its Redis connections cannot be used from the
    test body. Mongo (in memory) is shared, so this sees and writes the app's data.
    """
    local = copy.copy(runtime)
    local.redis = Redis.from_url(runtime.settings.redis_url)
    local.live = LiveEvents(local.redis)
    local.arq = await open_pool(runtime.settings.redis_url)
    local.http = httpx.AsyncClient()
    local.accounts = copy.copy(runtime.accounts)
    local.accounts.http = local.http
    local.webhooks = WebhookReceiver(local.accounts, lambda: local.arq)
    try:
        yield local
    finally:
        await local.arq.aclose()
        await local.redis.aclose()
        await local.http.aclose()


async def ingest_pending(runtime: Runtime) -> list[str]:
    """Ingest every stored, not yet ingested event, here and now (what the worker does)."""
    async with on_test_loop(runtime) as local:
        ingestor = WebhookIngestor(local.live, lambda message_id, generation: enqueue_fetch_media(
            local.arq, message_id, generation=generation),
                                   TemplateService(local.accounts, local.live), accounts=local.accounts)
        outcomes = []
        for event in await WebhookEvent.find(WebhookEvent.ingested_at == None).sort("received_at").to_list():  # noqa: E711
            outcomes.append((await ingestor.ingest(event.id)).outcome)
        return outcomes


async def store_event(runtime: Runtime, setup: Setup, payload: dict[str, Any] | bytes) -> str:
    """Store a body through the receiver (signature, dedupe) without HTTP; returns the event id."""
    body, headers = signed(payload)
    async with on_test_loop(runtime) as local:
        endpoint = await local.webhooks.endpoint(setup.account.webhook_key)
        receipt = await local.webhooks.receive(setup.account.webhook_key, endpoint, body, headers[HEADER])
        await local.webhooks.enqueuer.flush()
        return receipt.event_id


async def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02):
    """Poll an async predicate until it returns something truthy (no timing asserted, only a bound)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)


async def deliver(runtime: Runtime, setup: Setup, payload: dict[str, Any] | bytes) -> list[str]:
    """Store a body as the endpoint would, then ingest what is pending."""
    await store_event(runtime, setup, payload)
    return await ingest_pending(runtime)


async def outbound(setup: Setup, wamid: str, status_value: MessageStatus = MessageStatus.ACCEPTED, **extra: Any) -> Message:
    """An outbound message as the send pipeline leaves it (our own model, stored directly)."""
    contact = await Contact.find_one({}) or await Contact(workspace_id=setup.workspace_id, key="wa:972987654321",
                                                          wa_id="972987654321").insert()
    conversation = await Conversation.find_one({}) or await Conversation(
        workspace_id=setup.workspace_id, account_id=setup.account.id, contact_id=contact.id).insert()
    return await Message(workspace_id=setup.workspace_id, conversation_id=conversation.id, account_id=setup.account.id,
                         contact_id=contact.id, direction="outbound", type="text", content={"body": "hi"},
                         wamid=wamid, status=status_value, **extra).insert()
