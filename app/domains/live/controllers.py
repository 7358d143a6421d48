"""GET /live: one WebSocket per tab, fed by its web process's room for the workspace (see hub.py).

Works with several web processes: every process subscribes to the same Redis channel. The
handler holds no database resource while it waits, and it sends what the tab shows only.

Protocol, client to server (JSON): ``{"type": "hello", "since": seq, "view": {...}}`` right
after connecting (the server answers with everything after that event sequence, or asks the tab
to reload when those events are gone), then ``{"type": "view", "view": {"conversation": id|null,
"filters": {...}}}`` whenever the tab's view changes.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

from litestar import WebSocket, websocket
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect

from app.domains.live.feed import Hits, TabState
from app.domains.live.hub import LiveHub, LiveTab
from app.domains.workspaces.services import Principal
from app.logging import get_logger
from app.runtime import Runtime

log = get_logger(__name__)


def same_origin(socket: WebSocket) -> bool:
    """Refuse cross-site WebSocket hijacking: the Origin must be this host."""
    origin = socket.headers.get("origin")
    if not origin:
        return True  # not a browser (tests, tools); the session cookie still decides who it is
    return urlsplit(origin).netloc == socket.headers.get("host", "")


async def _catch_up(hub: LiveHub, runtime: Runtime, tab: LiveTab, since: Any) -> None:
    if not isinstance(since, str) or not since:
        return  # a page rendered while Redis was down: nothing to resume from
    events = await runtime.live.events_since(tab.state.workspace_id, since)
    if events is None:
        tab.push(hub.feed.reload())
        return
    if not events:
        return
    hits = Hits(hub.feed.queries)
    for rendered in await hub.feed.catch_up(tab.state, events):
        tab.push(await hub.feed.frame(rendered, tab.state, hits))
    unread = await hub.feed.queries.unread_total(tab.state.sees)
    tab.push(hub.feed.totals(unread, events[-1]["seq"]))


async def _heartbeat(runtime: Runtime, principal: Principal) -> None:
    """While the tab is open its user is present (app/domains/assignment/presence.py); never ends on its own."""
    if principal.user_id is None:
        return await asyncio.Event().wait()
    while True:
        try:
            await runtime.presence.beat(principal.workspace_id, principal.user_id)
        except Exception as exc:  # noqa: BLE001 - Redis away: the tab keeps working, presence lapses
            log.warning("presence heartbeat failed", error=type(exc).__name__)
        await asyncio.sleep(runtime.presence.beat_every)


@websocket("/live", include_in_schema=False)
async def live_socket(socket: WebSocket, runtime: NamedDependency[Runtime]) -> None:
    principal = socket.scope.get("user")
    if not isinstance(principal, Principal) or principal.user is None or not same_origin(socket):
        await socket.close(code=4401, reason="sign in first")
        return
    await socket.accept()
    hub: LiveHub = socket.app.state.live_hub
    tab = LiveTab(TabState(principal.workspace_id, principal.user_id, scope=principal.scope), socket.send_text)

    async def receive() -> None:
        while True:
            text = await socket.receive_text()
            try:
                command = json.loads(text)
            except ValueError:
                continue
            if not isinstance(command, dict):
                continue
            tab.state.update(command.get("view") or {})
            if command.get("type") == "hello":
                await _catch_up(hub, runtime, tab, command.get("since"))

    async with hub.join(tab):
        tasks = [asyncio.create_task(receive()), asyncio.create_task(tab.run_writer()),
                 asyncio.create_task(tab.closed.wait()), asyncio.create_task(_heartbeat(runtime, principal))]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            tab.closed.set()
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for result in results:
                if isinstance(result, Exception) and not isinstance(result, (WebSocketDisconnect, RuntimeError)):
                    log.warning("live socket ended", error=type(result).__name__)
    if not socket.connection_state == "disconnect":
        try:
            await socket.close()
        except Exception:  # noqa: BLE001 - already gone
            pass
