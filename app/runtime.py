"""The process's shared resources (settings, Mongo, Redis, arq pool, services), built once.

The web lifespan and the worker's on_startup both start a Runtime; `inbox run` shares one
between them (one Mongo client, one Redis pool, one HTTP pool for both).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
from arq.connections import ArqRedis
from redis.asyncio import Redis

from app.changes import Changes
from app.config import Settings
from app.db import Database
from app.domains.accounts.services import AccountService
from app.domains.assignment.wiring import build_assignment
from app.domains.broadcasts.wiring import build_broadcasts
from app.domains.business_hours.services import BusinessHoursService
from app.domains.contacts.keywords import ConsentKeywords
from app.domains.media.store import MediaStore
from app.domains.outbox.media import OutboundMediaService
from app.domains.outbox.service import OutboxService
from app.domains.subscriptions.delivery import Deliverer
from app.domains.subscriptions.events import IntegrationEvents
from app.domains.subscriptions.services import SubscriptionService
from app.domains.subscriptions.ssrf import guarded_client
from app.domains.templates.services import TemplateService
from app.domains.webhooks.ingest import WebhookIngestor
from app.domains.webhooks.services import WebhookReceiver
from app.domains.workflows.wiring import build_workflows
from app.domains.workspaces.services import AccountsOfPeople
from app.logging import get_logger
from app.queue import open_pool
from app.ratelimit import FailureThrottle
from app.realtime import LiveEvents
from app.security import SecretBox

log = get_logger(__name__)


class Runtime:
    """Everything a request handler or a worker task needs, with explicit types."""

    def __init__(self, settings: Settings) -> None:
        if not settings.redis_url or not settings.secret_key:
            raise ValueError("Runtime needs INBOX_REDIS_URL and INBOX_SECRET_KEY resolved")
        self.settings = settings
        self.db = Database(settings.mongodb_url, settings.mongodb_database)
        self.redis: Redis = Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
        self.arq: ArqRedis | None = None
        self.secrets = SecretBox(settings.secret_key.get_secret_value())
        self.live = LiveEvents(self.redis)
        # Cached credentials and numbers are dropped in every process when they change.
        self.changes = Changes(self.redis)
        # One pool for every outbound call (Graph API, media, event webhooks).
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=5.0),
                                      limits=httpx.Limits(max_connections=200, max_keepalive_connections=100))
        self.accounts = AccountService(self.secrets, settings.public_url, settings.graph_api_url,
                                       settings.graph_api_version, self.http, changes=self.changes)
        self.templates = TemplateService(self.accounts, self.live)
        self.people = AccountsOfPeople(
            login_throttle=FailureThrottle(self.redis, "inbox:login-failures", limit=5, window=60,
                                           limits={"ip": 30, "account": 1_000_000}),
            session_max_age=timedelta(hours=settings.session_max_age_hours),
            changes=self.changes,
        )
        # A workspace's own STOP / START words (cached for ingestion) and the confirmations' job.
        self.consent_keywords = ConsentKeywords(arq=lambda: self.arq, changes=self.changes)
        # One ingestor per process: the webhook endpoint applies bodies with it, the worker stored ones.
        self.ingestor = WebhookIngestor(self.live, self._enqueue_media, self.templates, accounts=self.accounts,
                                        keywords=self.consent_keywords)
        self.webhooks = WebhookReceiver(self.accounts, lambda: self.arq, self.ingestor)
        # The one send path (validate -> outbox -> drain job); a new token resumes held sends.
        self.outbox = OutboxService(redis=self.redis, arq=lambda: self.arq, live=self.live, accounts=self.accounts,
                                    media=OutboundMediaService(MediaStore()))
        self.accounts.credentials_listeners.append(self.outbox.resume_account)
        # Event subscriptions (issue 8): live events are routed to integration events in a job;
        # deliveries go through their own SSRF-guarded client (never runtime.http).
        self.webhook_http = guarded_client(allow_private=settings.allow_private_webhook_targets,
                                           timeout=settings.event_webhook_timeout_seconds)
        self.integrations = IntegrationEvents(self._enqueue_route_event, self._enqueue_event_delivery,
                                              changes=self.changes)
        self.deliverer = Deliverer(self.secrets, self.webhook_http, self._enqueue_event_delivery,
                                   backoff_scale=settings.event_webhook_backoff_scale)
        self.subscriptions = SubscriptionService(self.secrets, self.integrations, self.deliverer,
                                                 allow_private=settings.allow_private_webhook_targets)
        self.live.listeners.append(self.integrations.on_live_event)
        # Availability and auto-assignment: a customer's message queues a job where a rule is enabled.
        self.presence, self.auto_assigner = build_assignment(self)
        self.live.listeners.append(self.auto_assigner.on_live_event)
        # Business hours: the inbox's "closed" notice; a customer's message queues the greeting / away job.
        self.business_hours = BusinessHoursService(self.outbox, arq=lambda: self.arq, changes=self.changes,
                                                   keywords=self.consent_keywords)
        self.live.listeners.append(self.business_hours.on_live_event)
        # STOP / START: a customer's message queues the confirmation job where confirmations are set.
        self.live.listeners.append(self.consent_keywords.on_live_event)
        # Workflows: live events, timers, dates and segments start durable runs, advanced by worker jobs.
        self.workflows = build_workflows(self)
        self.live.listeners.append(self.workflows.triggers.on_live_event)
        # Broadcasts: template campaigns sent in slices through the outbox's bulk lane.
        self.broadcasts = build_broadcasts(self)
        self.embedded_database: Any = None  # app.embedded_mongo.EmbeddedMongo when `inbox run` started one
        self._started = False

    async def start(self) -> None:
        if self._started:
            return
        await self.db.connect()
        self.arq = await open_pool(self.settings.redis_url)
        await self.bootstrap()
        # Other processes' changes (a key revoked, a user deactivated, a number disabled) reach this one's caches.
        self._changes_listener = asyncio.create_task(self.changes.listen())
        self._started = True

    async def bootstrap(self) -> None:
        s = self.settings
        await self.people.bootstrap_admin(
            s.admin_email,
            s.admin_password.get_secret_value() if s.admin_password else None,
            s.admin_api_key.get_secret_value() if s.admin_api_key else None,
        )
        await MediaStore().adopt_legacy_files()

    async def _enqueue_media(self, message_id: str, generation: int) -> bool:
        from app.queue import enqueue_fetch_media

        if self.arq is None:
            raise RuntimeError("the queue pool is not open")
        return await enqueue_fetch_media(self.arq, message_id, generation=generation)

    async def _enqueue_route_event(self, workspace_id: str, event: str, ids: dict[str, str]) -> None:
        from app.queue import enqueue_route_event

        if self.arq is not None:
            await enqueue_route_event(self.arq, workspace_id, event, ids)

    async def _enqueue_event_delivery(self, delivery_id: str, attempt: int, **options: Any) -> None:
        from app.queue import enqueue_event_delivery

        if self.arq is not None:
            await enqueue_event_delivery(self.arq, delivery_id, attempt, **options)

    async def stop(self) -> None:
        listener = getattr(self, "_changes_listener", None)
        if listener is not None:
            self.changes.close()
            listener.cancel()
            await asyncio.wait([listener], timeout=3.0)
        if self.arq is not None:
            await self.arq.aclose()
        await self.redis.aclose()
        sender = getattr(self, "_outbox_sender", None)  # the worker's per-number send connections
        if sender is not None:
            await sender.aclose()
        await self.http.aclose()
        await self.webhook_http.aclose()
        self.db.close()
        self._started = False
