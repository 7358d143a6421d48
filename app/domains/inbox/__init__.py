"""The agent inbox in the browser: list, thread, composer, side panel (server-rendered, HTMX)."""

from __future__ import annotations


def _handlers() -> list:
    from app.domains.inbox.automations import AutomationsController
    from app.domains.inbox.composer import ComposerController
    from app.domains.inbox.controllers import InboxController
    from app.domains.inbox.panel import PanelController
    from app.domains.inbox.simulate import SimulateController
    from app.domains.live.controllers import live_socket

    return [InboxController, ComposerController, PanelController, AutomationsController, SimulateController,
            live_socket]


INBOX_HANDLERS = _handlers()
