"""The embedded database's size warning: past the size it serves, admins and the log hear it once a day.

The embedded server (SecantusDB, `inbox run` without INBOX_MONGODB_URL) answers every query correctly,
but its planner sorts in memory and scans for anchored regexes where mongod walks an index, so the
inbox slows as conversations grow. bench/embedded_size.py measures the size at which the inbox
list's p95 passes 200 ms; past it, the product says to move to MongoDB (docker-compose.yml).
"""

from __future__ import annotations

import asyncio

from app.domains.conversations.models import Conversation
from app.logging import get_logger

log = get_logger(__name__)

EMBEDDED_CONVERSATION_LIMIT = 1_000
"""Conversations at which the inbox list's p95 passed 200 ms on the embedded server (bench/embedded_size.py)."""

CHECK_EVERY_SECONDS = 24 * 3600


class EmbeddedSizeWatch:
    """Counts conversations at start and once a day; remembers whether the embedded server is outgrown."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit or EMBEDDED_CONVERSATION_LIMIT
        self.conversations: int | None = None

    @property
    def outgrown(self) -> bool:
        return self.conversations is not None and self.conversations > self.limit

    def notice(self) -> str | None:
        """The admins' banner text, or None while the embedded server is big enough."""
        if not self.outgrown:
            return None
        return (f"This workspace runs on the embedded database, which serves up to about {self.limit:,} conversations "
                f"quickly; it now holds {self.conversations:,}. Move to MongoDB (docker-compose.yml, or set "
                "INBOX_MONGODB_URL) to keep the inbox fast.")

    async def check(self) -> None:
        try:
            self.conversations = await Conversation.get_motor_collection().estimated_document_count()
        except Exception as error:  # noqa: BLE001 - a database outage is reported by /health/ready
            log.warning("embedded database size check failed", error=type(error).__name__)
            return
        if self.outgrown:
            log.warning("embedded database outgrown: move to MongoDB", conversations=self.conversations,
                        serves_up_to=self.limit)

    async def run(self, every: float = CHECK_EVERY_SECONDS, first_after: float = 0.0) -> None:
        await asyncio.sleep(first_after)
        while True:
            await self.check()
            await asyncio.sleep(every)
