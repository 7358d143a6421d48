"""Who a credential is, remembered for a few seconds per process.

Resolving an API key or a session cookie read two documents (the key or session, then its user)
on every request: two of the operations of every API send and of every page and HTMX request.
A web process now keeps each resolved Principal for ``TTL_SECONDS``.

A change that must stop a credential at once (a key revoked, a user deactivated or demoted, a
password set, a sign-out) empties the cache of this process and, through one Redis PUBLISH, of
every other process (app.changes); should that message be lost (Redis down), no process trusts
its copy longer than the TTL. Only credentials that resolved are kept: an unknown key is read
every time, as before.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.changes import Changes
    from app.domains.workspaces.services import Principal

TTL_SECONDS = 5.0
TOPIC = "credentials"
MAX_ENTRIES = 10_000


class PrincipalCache:
    def __init__(self, changes: Changes | None = None, ttl: float = TTL_SECONDS) -> None:
        self.changes = changes
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Principal]] = {}
        if changes is not None:
            changes.on(TOPIC, self.forget_here)

    def get(self, digest: str) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            del self._entries[digest]
            return None
        return entry[1]

    def put(self, digest: str, principal: Principal, *, until: float | None = None) -> None:
        """Remember ``principal`` for the TTL (or less: ``until``, a monotonic deadline such as a session's end)."""
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()  # a burst of distinct credentials: start over rather than grow
        expires = time.monotonic() + self.ttl
        self._entries[digest] = (expires if until is None else min(expires, until), principal)

    def forget_here(self, _key: str | None = None) -> None:
        self._entries.clear()

    async def forget_everywhere(self) -> None:
        """Credentials changed: no process may answer from its copy any more."""
        if self.changes is None:
            self.forget_here()
        else:
            await self.changes.publish(TOPIC)
