"""GET /live: one WebSocket per tab, fed by the workspace's Redis channel through Litestar Channels.

Works with several web processes: every process subscribes to the same Redis channel. The
handler holds no database resource while it waits (no injected session; each event does its own
short reads), and it sends what the tab shows only (see LiveFeed).

Protocol, client to server (JSON): ``{"type": "hello", "since": iso, "view": {...}}`` right
after connecting (the server answers with everything changed since), then ``{"type": "view",
"view": {"conversation": id|null, "filters": {...}}}`` whenever the tab's view changes.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from litestar import WebSocket, websocket
from litestar.channels import ChannelsPlugin
from litestar.exceptions import WebSocketDisconnect

from app.db import as_utc, utcnow
from app.domains.live.feed import LiveFeed, TabState
from app.domains.workspaces.services import Principal
from app.logging import get_logger
from app.realtime import workspace_channel

log = get_logger(__name__)
# A tab that was away longer than this reloads instead of catching up event by event.
MAX_CATCH_UP = timedelta(hours=6)
# Clocks of web and worker processes differ a little; re-sending a few seconds is harmless (upserts).
CLOCK_MARGIN = timedelta(seconds=5)
TOTALS_INTERVAL = 0.25


def same_origin(socket: WebSocket) -> bool:
    """Refuse cross-site WebSocket hijacking: the Origin must be this host."""
    origin = socket.headers.get("origin")
    if not origin:
        return True  # not a browser (tests, tools); the session cookie still decides who it is
    return urlsplit(origin).netloc == socket.headers.get("host", "")


def parse_since(value: Any) -> datetime | None:
    try:
        since = as_utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except (TypeError, ValueError):
        return None
    return max(since - CLOCK_MARGIN, utcnow() - MAX_CATCH_UP)


@websocket("/live", include_in_schema=False)
async def live_socket(socket: WebSocket, channels: ChannelsPlugin) -> None:
    principal = socket.scope.get("user")
    if not isinstance(principal, Principal) or principal.user is None or not same_origin(socket):
        await socket.close(code=4401, reason="sign in first")
        return
    await socket.accept()
    tab = TabState(principal.workspace_id, principal.user_id)
    feed = LiveFeed(lambda name, **context: socket.app.template_engine.get_template(name).render(**context))
    lock = asyncio.Lock()

    async def send(frame: str | None) -> None:
        if frame:
            async with lock:
                await socket.send_text(frame)

    async def pump(subscriber: Any) -> None:
        totals_due = asyncio.Event()

        async def totals() -> None:
            # The tab title's unread total follows the frames, at most a few times a second: a burst
            # of events costs one count, and the count never delays a message on its way.
            while True:
                await totals_due.wait()
                totals_due.clear()
                await send(await feed.totals(tab))
                await asyncio.sleep(TOTALS_INTERVAL)

        counting = asyncio.create_task(totals())
        try:
            async for raw in subscriber.iter_events():
                try:
                    frame = await feed.frame(json.loads(raw), tab)
                    if frame:
                        await send(frame)
                        totals_due.set()
                except (WebSocketDisconnect, RuntimeError):
                    return
                except Exception as exc:  # one bad event must not end the tab's feed
                    log.warning("live frame failed", error=type(exc).__name__)
        finally:
            counting.cancel()

    async with channels.start_subscription([workspace_channel(principal.workspace_id)]) as subscriber:
        pumping = asyncio.create_task(pump(subscriber))
        try:
            while True:
                text = await socket.receive_text()
                try:
                    command = json.loads(text)
                except ValueError:
                    continue
                if not isinstance(command, dict):
                    continue
                tab.update(command.get("view") or {})
                if command.get("type") == "hello":
                    since = parse_since(command.get("since"))
                    if since is not None:
                        await send(await feed.catch_up(tab, since))
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            pumping.cancel()
            await asyncio.gather(pumping, return_exceptions=True)
