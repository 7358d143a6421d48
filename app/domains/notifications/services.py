"""The admins' WhatsApp notices: what the badge in the top navigation counts, and "Mark as seen".

The notices themselves are the events Meta's account and number webhooks left on each number
(``health.account_events``, written by app/domains/webhooks/updates.py with their severity and
``seen_at``); a WABA-wide event is on every number of that WABA under the same key, so it counts
once and is seen once. A number whose sends Meta stopped (``health.sending_stopped``) is named in
the badge until an admin resumes it: marking notices seen does not hide it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from beanie import PydanticObjectId

from app.db import utcnow
from app.domains.accounts.models import WhatsAppAccount
from app.domains.notifications.notices import NOTIFY, counts


@dataclass(frozen=True)
class Badge:
    """What the admins' "WhatsApp notices" indicator shows."""

    count: int = 0
    """Unseen warning and critical notices (one per webhook event, however many numbers it concerns)."""
    severity: str = "warning"
    """The worst of them ("critical" also when a number's sends are stopped)."""
    href: str = "/admin/numbers"
    """Where to read them: the number's page when one number has them all."""
    stopped: list[dict[str, str]] = field(default_factory=list)
    """Numbers whose sends Meta stopped: ``{"id", "name"}``."""

    @property
    def shown(self) -> bool:
        return bool(self.count or self.stopped)

    @property
    def label(self) -> str:
        if not self.count:
            return ""
        return f"{self.count} WhatsApp notice" + ("" if self.count == 1 else "s")


_UNSEEN = {"$elemMatch": {"severity": {"$in": list(NOTIFY)}, "seen_at": None}}


class Notices:
    async def badge(self, workspace_id: PydanticObjectId) -> Badge:
        """One query over the workspace's numbers that have something to show."""
        accounts = await WhatsAppAccount.scoped(workspace_id, {"$or": [
            {"health.account_events": _UNSEEN}, {"health.sending_stopped": {"$ne": None}}]}).to_list()
        keys: dict[str, str] = {}
        holders: set[str] = set()
        stopped = []
        for account in accounts:
            for event in account.health.account_events:
                if isinstance(event, dict) and counts(event):
                    keys.setdefault(str(event.get("key")), str(event.get("severity")))
                    holders.add(str(account.id))
            if account.health.sending_stopped is not None:
                stopped.append({"id": str(account.id), "name": account.name})
        severity = "critical" if stopped or "critical" in keys.values() else "warning"
        href = f"/admin/numbers/{next(iter(holders))}#notices" if len(holders) == 1 else "/admin/numbers"
        if not holders and len(stopped) == 1:
            href = f"/admin/numbers/{stopped[0]['id']}"
        return Badge(len(keys), severity, href, stopped)

    async def mark_seen(self, workspace_id: PydanticObjectId, user_id: PydanticObjectId | None,
                        account: WhatsAppAccount | None = None) -> int:
        """Mark the workspace's notices seen (or those of one number, and the same webhook events on
        the other numbers of its WABA); returns how many numbers changed."""
        match: dict[str, Any] = {"e.seen_at": None}
        if account is not None:
            keys = [str(e["key"]) for e in account.health.account_events
                    if isinstance(e, dict) and e.get("key") and e.get("seen_at") is None]
            if not keys:
                return 0
            match["e.key"] = {"$in": keys}
        result = await WhatsAppAccount.scoped(workspace_id).update(
            {"$set": {"health.account_events.$[e].seen_at": utcnow(), "health.account_events.$[e].seen_by": user_id}},
            array_filters=[match])
        return int(getattr(result, "modified_count", 0) or 0)
