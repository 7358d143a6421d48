"""create_app(): plugins, routers, middleware and lifespan. Wiring only."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Router
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import CacheControlHeader, State
from litestar.di import Provide
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from app import tracing
from app.api_ratelimit import add_rate_limit_headers, rate_limit_middleware
from app.auth import auth_middleware, provide_principal
from app.config import ROOT, Settings
from app.domains.accounts.api import AccountsApi
from app.domains.accounts.controllers import NumbersController
from app.domains.analytics.api import AnalyticsApi
from app.domains.assignment.api import AssignmentRulesApi, AvailabilityApi
from app.domains.assignment.controllers import AssignmentPages, AvailabilityControl
from app.domains.audit.api import AuditApi
from app.domains.audit.controllers import AuditPages
from app.domains.broadcasts.api import BroadcastsApi
from app.domains.broadcasts.controllers import BroadcastPages
from app.domains.business_hours.api import BusinessHoursApi
from app.domains.business_hours.controllers import BusinessHoursPages
from app.domains.catalog.api import AttributesApi, CannedResponsesApi, LabelsApi
from app.domains.catalog.controllers import AttributePages, CannedPages, LabelPages
from app.domains.contact_files.api import ContactExportsApi, ContactImportsApi
from app.domains.contact_files.controllers import ContactExportJobPages, ContactExportPage, ContactImportPages
from app.domains.contacts.api import ContactsApi
from app.domains.contacts.attribute_values import show_attribute
from app.domains.contacts.controllers import ContactPages
from app.domains.contacts.keywords_api import KeywordSettingsApi
from app.domains.contacts.merge_api import ContactMergeApi
from app.domains.contacts.merge_controllers import ContactMergePages
from app.domains.conversations.actions_api import ConversationActionsApi, MessageReactionsApi
from app.domains.conversations.api import ConversationsApi
from app.domains.failures.api import FailedMessagesApi
from app.domains.failures.controllers import FailedPages
from app.domains.inbox import INBOX_HANDLERS
from app.domains.live.feed import LiveFeed
from app.domains.live.hub import LiveHub
from app.domains.media.controllers import MediaController
from app.domains.messages.api import MessagesReadApi
from app.domains.outbox.api import SendApi
from app.domains.reports.controllers import ReportPages
from app.domains.segments.api import SegmentsApi
from app.domains.subscriptions.api import SubscriptionsApi
from app.domains.subscriptions.controllers import SubscriptionPages
from app.domains.system.controllers import HealthController, ShellController
from app.domains.system.embedded_size import CHECK_EVERY_SECONDS, EmbeddedSizeWatch
from app.domains.team.api import ApiKeysApi, TeamsApi, UsersApi
from app.domains.team.controllers import ApiKeysController, InvitationController, ProfileController, TeamController
from app.domains.templates.api import TemplatesApi
from app.domains.templates.controllers import TemplatesController
from app.domains.webhooks.controllers import WhatsAppWebhookController
from app.domains.webhooks.fastpath import InboxApp
from app.domains.workflows.api import WorkflowHooks, WorkflowRunsApi, WorkflowsApi
from app.domains.workflows.controllers import WorkflowPages
from app.domains.workspaces.api import MeApi
from app.domains.workspaces.controllers import AuthController
from app.error_handlers import handle_exception
from app.idempotency import idempotency_middleware
from app.logging import get_logger
from app.metrics import metrics_endpoint
from app.openapi import api_docs, openapi_config
from app.query_params import refuse_unknown_query_parameters
from app.realtime import channels_plugin
from app.runtime import Runtime

log = get_logger(__name__)

# Endpoints that are not called by our own pages: Bearer keys, Meta's signatures, the simulator.
CSRF_EXEMPT = ["^/api/", "^/webhooks/", "^/sandbox/", "^/health/", "^/metrics"]


async def _watch_embedded_database(server: Any, every: float = 1.0) -> None:
    """`inbox run`: the embedded database process died → say so and start it again on the same port and
    data (WiredTiger recovers from its log). Meanwhile /health/ready answers 503 and requests fail fast."""
    while True:
        await asyncio.sleep(every)
        if server.running():
            continue
        log.error("embedded database stopped; starting it again", data=str(server.directory))
        try:
            server.spawn()  # on the loop's (main) thread, so the new server still dies with us
            await asyncio.to_thread(server.wait_until_answers)
            log.warning("embedded database is back", port=server.port)
        except Exception as error:  # noqa: BLE001 - keep trying; the health check says it is down
            log.error("embedded database did not start", error=str(error)[:300])
            await asyncio.sleep(5)


def create_app(settings: Settings, *, sandbox: bool = False, inline_worker: bool = False, demo: bool = False,
               runtime: Runtime | None = None, freeze_startup_objects: bool = False, embedded: Any = None) -> Litestar:
    """The web application. ``inline_worker`` runs the arq worker in this process (`inbox run`).

    ``freeze_startup_objects`` (the CLI's servers): once started, move every object that exists
    then (modules, routes, models, templates: ~160 k) out of the garbage collector's sight, so its
    full collections only walk what the server made since; measured on the webhook path, that
    halved the time spent in collections. Not for tests, which build many apps in one process.

    ``embedded``: the embedded database server `inbox run` started (app.embedded_mongo), watched by
    the health check so its death shows on /health/ready and in the log.
    """
    runtime = runtime or Runtime(settings)
    runtime.embedded_database = embedded
    size_watch = EmbeddedSizeWatch()
    worker_task: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await runtime.start()
        if demo:
            from app.demo import seed_demo

            logins = await seed_demo(runtime, sandbox_state)
            print(
                f"\n  wa-inbox demo is running: {settings.public_url}/login\n"
                f"  admin: {logins['admin']}   agent: {logins['agent']}   password: {logins['password']}\n"
                f"  {logins['seeded']}\n",
                flush=True,
            )
        if inline_worker:
            from workers.supervisor import WorkerSupervisor

            # arq's worker ends when Redis goes away: the supervisor starts a new one (with backoff).
            supervisor = worker_task["supervisor"] = WorkerSupervisor(runtime)
            worker_task["task"] = asyncio.create_task(supervisor.run())
        if embedded is not None:
            worker_task["watchdog"] = asyncio.create_task(_watch_embedded_database(embedded))
            await size_watch.check()  # once at start (the log, and the admins' banner from the first page) ...
            worker_task["size"] = asyncio.create_task(size_watch.run(first_after=CHECK_EVERY_SECONDS))  # ... then daily
        if freeze_startup_objects:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            for name in ("watchdog", "size"):
                if name in worker_task:
                    worker_task[name].cancel()
                    await asyncio.gather(worker_task[name], return_exceptions=True)
            if "supervisor" in worker_task:
                await worker_task["supervisor"].stop()  # cancels running jobs, closes the worker
                worker_task["task"].cancel()
                await asyncio.gather(worker_task["task"], return_exceptions=True)
            await runtime.stop()

    def template_globals(engine: JinjaTemplateEngine) -> None:
        engine.engine.globals.update(settings=settings, embedded_notice=size_watch.notice)
        # Typed contact attributes (dates, yes/no) shown as people read them: {{ value | attribute_value }}
        engine.engine.filters["attribute_value"] = lambda value, definition=None: show_attribute(definition, value)

    channels = channels_plugin(runtime.redis)
    plugins: list[Any] = [HTMXPlugin(), channels, *tracing.asgi_plugins()]
    sandbox_state = None
    if sandbox or demo:
        from app.sandbox import SandboxPlugin, SandboxState

        sandbox_state = SandboxState(control_from=settings.sandbox_control_from)
        plugins.append(SandboxPlugin(sandbox_state))

    app = InboxApp(
        route_handlers=[
            AuthController,
            ShellController,
            *INBOX_HANDLERS,
            HealthController,
            MeApi,
            WhatsAppWebhookController, ConversationsApi, MediaController,
            # One Router for both: Litestar refuses two app-level controllers sharing a path
            # (GET and POST /api/v1/conversations/{id}/messages).
            Router(path="/", route_handlers=[MessagesReadApi, SendApi]), metrics_endpoint,
            AccountsApi, TemplatesApi, UsersApi, TeamsApi, ApiKeysApi, CannedResponsesApi, LabelsApi, AttributesApi,
            api_docs, SubscriptionsApi, SubscriptionPages, ContactsApi, ConversationActionsApi, MessageReactionsApi,
            AnalyticsApi, SegmentsApi,
            AssignmentRulesApi, AvailabilityApi, AssignmentPages, AvailabilityControl,
            ContactMergeApi, ContactMergePages, ContactPages,
            NumbersController, TemplatesController, TeamController, ApiKeysController, InvitationController,
            ProfileController,
            CannedPages, LabelPages, AttributePages,
            BusinessHoursApi, BusinessHoursPages, WorkflowPages, KeywordSettingsApi,
            WorkflowsApi, WorkflowRunsApi, WorkflowHooks, BroadcastsApi, BroadcastPages, ReportPages,
            FailedMessagesApi, FailedPages, AuditApi, AuditPages,
            ContactImportsApi, ContactExportsApi, ContactImportPages, ContactExportPage, ContactExportJobPages,
            create_static_files_router(path="/static", directories=[ROOT / "static"], include_in_schema=False,
                                       cache_control=CacheControlHeader(no_cache=True)),  # cached, revalidated
        ],
        dependencies={
            "runtime": Provide(lambda: runtime, sync_to_thread=False),
            "principal": Provide(provide_principal),
        },
        # Rate limit before auth (no DB work for refused requests); idempotency after (needs the workspace).
        # (Meta's webhook POSTs never reach this stack: InboxApp answers them before the router.)
        middleware=[rate_limit_middleware, auth_middleware, idempotency_middleware],
        before_send=[add_rate_limit_headers],
        before_request=refuse_unknown_query_parameters,
        csrf_config=CSRFConfig(
            secret=settings.secret_key.get_secret_value(), cookie_secure=settings.secure_cookies,
            cookie_samesite="lax", exclude=CSRF_EXEMPT,
        ),
        template_config=TemplateConfig(directory=ROOT / "templates", engine=JinjaTemplateEngine,
                                       engine_callback=template_globals),
        openapi_config=openapi_config(),  # app/openapi.py: /schema/openapi.json, completed; UI at /api/docs
        exception_handlers={Exception: handle_exception},
        plugins=plugins,
        lifespan=[lifespan],
        logging_config=None,  # structlog (app.logging) owns the handlers
        state=State({"runtime": runtime, "demo": demo, "sandbox": sandbox_state}),
    )
    # The live tabs of this process: one room per workspace, each event rendered once (hub.py).
    app.state.live_hub = LiveHub(channels, LiveFeed(
        lambda name, **context: app.template_engine.get_template(name).render(**context)))
    return app
