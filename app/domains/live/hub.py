"""One web process's live tabs: per workspace, one subscription, each event read and rendered once.

Before, every tab read and rendered every event itself and counted the unread total after its
frames: with 50 tabs open, one message cost ~50 times the reads. A :class:`LiveHub` keeps a
room per workspace with open tabs in this process: the room's one Redis subscription feeds
:meth:`LiveFeed.prepare` once per event, then each tab gets its frame chosen in memory (its open
conversation, its filters; a search is asked once per search text). After a burst the room
counts the unread total once and sends it, with the last event's sequence, to every tab.

Each tab has its own bounded queue and writer, so a slow browser never holds the others; a tab
that falls ``MAX_BEHIND`` frames behind is closed and catches up from its sequence on reconnect.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from beanie import PydanticObjectId
from litestar.channels import ChannelsPlugin

from app.domains.live.feed import Hits, LiveFeed, TabState
from app.logging import get_logger
from app.metrics import STORED_TO_LIVE
from app.realtime import workspace_channel

log = get_logger(__name__)

TOTALS_INTERVAL = 0.25
"""The unread total follows a burst of frames at most this often (one count per room, not per tab)."""
MAX_BEHIND = 500


class LiveTab:
    """One connected tab: what it shows, and its frames waiting to be written."""

    def __init__(self, state: TabState, write: Callable[[str], Awaitable[None]]) -> None:
        self.state = state
        self.frames: asyncio.Queue[str | None] = asyncio.Queue(MAX_BEHIND)
        self._write = write
        self.closed = asyncio.Event()

    def push(self, frame: str) -> None:
        if not frame or self.closed.is_set():
            return
        try:
            self.frames.put_nowait(frame)
        except asyncio.QueueFull:  # a browser that stopped reading: it reconnects and catches up
            log.info("live tab too far behind; closing it")
            self.closed.set()

    async def run_writer(self) -> None:
        while not self.closed.is_set():
            frame = await self.frames.get()
            if frame is None:
                return
            await self._write(frame)


class _Room:
    def __init__(self, hub: LiveHub, workspace_id: PydanticObjectId) -> None:
        self.hub = hub
        self.workspace_id = workspace_id
        self.tabs: set[LiveTab] = set()
        self.last_seq: str | None = None
        self.totals_due = asyncio.Event()
        self.ready = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        counting = asyncio.create_task(self._totals())
        try:
            async with self.hub.channels.start_subscription([workspace_channel(self.workspace_id)]) as subscriber:
                self.ready.set()
                async for raw in subscriber.iter_events():
                    try:
                        await self._event(json.loads(raw))
                    except Exception as exc:  # one bad event must not end the room's feed
                        log.warning("live frame failed", error=type(exc).__name__)
        finally:
            self.ready.set()
            counting.cancel()

    async def _event(self, event: dict[str, Any]) -> None:
        if isinstance(event.get("seq"), str):
            self.last_seq = event["seq"]
        if event.get("event") == "conversation.removed":  # nothing left to read: every tab drops the row
            for tab in list(self.tabs):
                tab.push(self.hub.feed.removed(event.get("conversation_id")))
            self.totals_due.set()
            return
        rendered = await self.hub.feed.prepare(self.workspace_id, event)
        if rendered is not None:
            hits = Hits(self.hub.feed.queries)
            for tab in list(self.tabs):
                tab.push(await self.hub.feed.frame(rendered, tab.state, hits))
            published_ms = str(event.get("seq") or "").partition("-")[0]  # the stream id: Redis's ms at publishing
            if published_ms.isdigit() and self.tabs:
                STORED_TO_LIVE.observe(max(0.0, time.time() - int(published_ms) / 1000))
        self.totals_due.set()

    async def _totals(self) -> None:
        while True:
            await self.totals_due.wait()
            self.totals_due.clear()
            # Once per scope (agents limited to some numbers or teams count only what they see).
            by_scope: dict[Any, list[LiveTab]] = {}
            for tab in list(self.tabs):
                by_scope.setdefault(tab.state.sees, []).append(tab)
            for scope, tabs in by_scope.items():
                try:
                    unread = await self.hub.feed.queries.unread_total(scope)
                except Exception as exc:  # noqa: BLE001 - the next burst counts again
                    log.warning("unread total not counted", error=type(exc).__name__)
                    continue
                totals = self.hub.feed.totals(unread, self.last_seq)
                for tab in tabs:
                    tab.push(totals)
            await asyncio.sleep(TOTALS_INTERVAL)


class LiveHub:
    """The rooms of one web process (kept on the app's state)."""

    def __init__(self, channels: ChannelsPlugin, feed: LiveFeed) -> None:
        self.channels = channels
        self.feed = feed
        self._rooms: dict[PydanticObjectId, _Room] = {}

    @asynccontextmanager
    async def join(self, tab: LiveTab) -> AsyncIterator[None]:
        """The tab receives its workspace's frames while inside; the room closes with its last tab."""
        workspace_id = tab.state.workspace_id
        room = self._rooms.get(workspace_id)
        if room is None or room.task.done():
            room = self._rooms[workspace_id] = _Room(self, workspace_id)
        room.tabs.add(tab)
        try:
            await room.ready.wait()  # subscribed before the tab's catch-up is read: nothing falls between
            yield
        finally:
            room.tabs.discard(tab)
            if not room.tabs and self._rooms.get(workspace_id) is room:
                del self._rooms[workspace_id]
                room.task.cancel()
                await asyncio.gather(room.task, return_exceptions=True)
