"""SandboxPlugin (mount the sandbox into any Litestar app) and create_sandbox_app (standalone).

The plugin adds one Router at ``/sandbox`` holding the graph and control routes, with an
exception handler that turns anything into Meta's error shape, and startup / shutdown
hooks that run the webhook dispatcher and its httpx client on the app's event loop.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Litestar, Router
from litestar.config.app import AppConfig
from litestar.plugins import InitPlugin

from app.sandbox.control import control_guard, control_handlers
from app.sandbox.graph import graph_handlers
from app.sandbox.http import exception_to_response
from app.sandbox.state import SandboxState

SANDBOX_PATH = "/sandbox"


def sandbox_router(state: SandboxState) -> Router:
    """``/sandbox/graph/...``, ``/sandbox/lookaside/...`` and ``/sandbox/control/...`` for ``state``."""
    return Router(
        SANDBOX_PATH,
        route_handlers=[*graph_handlers(state),
                        Router("/", route_handlers=control_handlers(state), guards=[control_guard(state)])],
        exception_handlers={Exception: exception_to_response},
        include_in_schema=False,
    )


class SandboxPlugin(InitPlugin):
    """Mount the Cloud API sandbox at ``/sandbox`` and run its webhook delivery with the app."""

    __slots__ = ("state",)

    def __init__(self, state: SandboxState | None = None) -> None:
        self.state = state or SandboxState()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.append(sandbox_router(self.state))
        app_config.on_startup.append(self._startup)
        app_config.on_shutdown.append(self._shutdown)
        return app_config

    async def _startup(self) -> None:
        await self.state.webhooks.start()

    async def _shutdown(self) -> None:
        await self.state.webhooks.stop()


def create_sandbox_app(state: SandboxState | None = None, **litestar_kwargs: Any) -> Litestar:
    """A Litestar app serving only the sandbox (``inbox sandbox --port P``)."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per webhook post is noise
    return Litestar(plugins=[SandboxPlugin(state)], **litestar_kwargs)
