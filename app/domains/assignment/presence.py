"""Who is at their inbox: a heartbeat per user in Redis, and the status each user chose.

Every open inbox tab (the /live WebSocket, in whichever web process serves it) refreshes the key
``inbox:presence:<user id>`` with a time to live of INBOX_PRESENCE_TIMEOUT_SECONDS. When the user's
last tab closes the key lapses, and the user counts as offline "by inactivity": nothing is written,
so no process has to notice the moment, and opening the inbox again brings back the status they
chose (online, or the busy / away they set; an offline they chose stays offline).

A user's status as everyone sees it = the chosen one while a heartbeat is alive, else offline.

Each heartbeat also marks its minute (a Redis set per user and UTC hour; tabs at once mark it once), and
``keep_minutes`` (a worker cron, every minute) keeps them in ``InboxMinutes``: the reports' time in the inbox.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from beanie import PydanticObjectId
from redis.asyncio import Redis

from app.db import utcnow
from app.domains.assignment.models import InboxMinutes
from app.domains.workspaces.models import Availability, User
from app.errors import ValidationFailed
from app.logging import get_logger

log = get_logger(__name__)

PREFIX = "inbox:presence:"
MINUTES = "inbox:present-minutes:"
"""+ <workspace id>:<user id>:<UTC hour, YYYYmmddHH>: the minutes of that hour with a heartbeat."""
MINUTE_KEYS = "inbox:present-minute-keys"
"""The MINUTES keys not yet kept in full (their hour may still be running)."""
MINUTES_TTL = 3 * 86400
CameOnline = Callable[[PydanticObjectId, PydanticObjectId], Awaitable[None]]
WentAway = Callable[[PydanticObjectId, PydanticObjectId], Awaitable[None]]

LABELS = {Availability.ONLINE: "Online", Availability.BUSY: "Busy", Availability.AWAY: "Away",
          Availability.OFFLINE: "Offline"}


@dataclass(frozen=True)
class Status:
    """A user's availability as shown and as auto-assignment counts it."""

    chosen: Availability
    connected: bool
    """An inbox tab of theirs is open (a heartbeat is alive)."""

    @property
    def value(self) -> Availability:
        return self.chosen if self.connected else Availability.OFFLINE

    @property
    def inactive(self) -> bool:
        """Offline only because no inbox tab is open (their chosen status comes back with one)."""
        return not self.connected and self.chosen is not Availability.OFFLINE

    @property
    def label(self) -> str:
        return LABELS[self.value] + (" (no inbox open)" if self.inactive else "")

    @property
    def takes_conversations(self) -> bool:
        return self.value is Availability.ONLINE


def parse_availability(value: str | None) -> Availability:
    try:
        return Availability(str(value or "").strip().lower())
    except ValueError:
        raise ValidationFailed("Availability is online, busy, away or offline.", error_code="BAD_AVAILABILITY",
                               details={"availability": str(value)[:40]}) from None


class Presence:
    """Heartbeats (Redis) and chosen statuses (the User document)."""

    def __init__(self, redis: Redis, timeout_seconds: float) -> None:
        self.redis = redis
        self.timeout_seconds = timeout_seconds
        self.came_online: list[CameOnline] = []
        """Told when a user's heartbeat starts (first tab after a lapse) or they choose online."""
        self.went_away: list[WentAway] = []
        """Told when a user chooses away or offline (a lapse by inactivity is noticed by the reassignment cron)."""

    @property
    def beat_every(self) -> float:
        """How often an open tab refreshes its heartbeat: well inside the time to live."""
        return max(0.05, min(30.0, self.timeout_seconds / 3))

    async def beat(self, workspace_id: PydanticObjectId, user_id: PydanticObjectId) -> bool:
        """An inbox tab of this user is open; True when it starts a heartbeat that had lapsed."""
        key = f"{PREFIX}{user_id}"
        ttl = max(1, int(self.timeout_seconds * 1000))
        now = utcnow()
        minutes = f"{MINUTES}{workspace_id}:{user_id}:{now:%Y%m%d%H}"
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(key, "1", nx=True, px=ttl)
            pipe.pexpire(key, ttl)
            pipe.sadd(minutes, now.minute)  # beats come at most every 30 s: every minute with a tab open has one
            pipe.expire(minutes, MINUTES_TTL)
            pipe.sadd(MINUTE_KEYS, minutes)
            started, *_ = await pipe.execute()
        if started:
            await self._tell(workspace_id, user_id)
        return bool(started)

    async def connected(self, user_ids: Iterable[PydanticObjectId]) -> set[PydanticObjectId]:
        """Which of these users have an inbox tab open now (one round trip)."""
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return set()
        values = await self.redis.mget([f"{PREFIX}{i}" for i in ids])
        return {i for i, v in zip(ids, values, strict=True) if v is not None}

    async def statuses(self, users: Iterable[User]) -> dict[PydanticObjectId, Status]:
        listed = [u for u in users if u.id is not None]
        connected = await self.connected(u.id for u in listed if u.id is not None)
        return {u.id: Status(u.availability, u.id in connected) for u in listed if u.id is not None}

    async def status_of(self, user: User) -> Status:
        return (await self.statuses([user]))[user.id] if user.id is not None else Status(user.availability, False)

    async def choose(self, workspace_id: PydanticObjectId, user_id: PydanticObjectId | None,
                     availability: str | Availability | None) -> User:
        """The user sets their own status (the inbox header, their profile, or the API)."""
        chosen = parse_availability(availability)
        user = await User.get_scoped(workspace_id, user_id)
        now = utcnow()
        await User.find_one(User.id == user.id).update(
            {"$set": {"availability": chosen.value, "availability_changed_at": now}})
        user.availability, user.availability_changed_at = chosen, now
        if chosen is Availability.ONLINE and user.id is not None:
            await self._tell(workspace_id, user.id)
        elif chosen in (Availability.AWAY, Availability.OFFLINE) and user.id is not None:
            await self._tell(workspace_id, user.id, self.went_away)
        return user

    async def current(self, workspace_id: PydanticObjectId, user_id: PydanticObjectId | None) -> tuple[User, Status]:
        user = await User.get_scoped(workspace_id, user_id)
        return user, await self.status_of(user)

    async def keep_minutes(self) -> int:
        """The heartbeats' minutes kept in InboxMinutes (idempotent: each minute is added once); a past hour's
        key is then dropped. Returns the hours written."""
        kept = 0
        current = f"{utcnow():%Y%m%d%H}"
        for raw in await self.redis.smembers(MINUTE_KEYS):
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            try:
                workspace_id, user_id, hour = key.removeprefix(MINUTES).split(":")
                at = datetime.strptime(hour, "%Y%m%d%H").replace(tzinfo=UTC)
                ids = PydanticObjectId(workspace_id), PydanticObjectId(user_id)
            except ValueError:
                await self.redis.srem(MINUTE_KEYS, raw)
                continue
            minutes = sorted(int(m) for m in await self.redis.smembers(key))
            if minutes:
                await InboxMinutes.get_motor_collection().update_one(
                    {"workspace_id": ids[0], "user_id": ids[1], "hour": at},
                    {"$addToSet": {"minutes": {"$each": minutes}}}, upsert=True)
                kept += 1
            if hour < current:  # that hour is over: nothing more will come
                await self.redis.delete(key)
                await self.redis.srem(MINUTE_KEYS, raw)
        return kept

    async def _tell(self, workspace_id: PydanticObjectId, user_id: PydanticObjectId,
                    listeners: list[CameOnline] | None = None) -> None:
        for listener in self.came_online if listeners is None else listeners:
            try:
                await listener(workspace_id, user_id)
            except Exception as exc:  # noqa: BLE001 - a tab's heartbeat must not end because a listener failed
                log.warning("presence listener failed", error=type(exc).__name__)


def availability_view(user: User, status: Status) -> dict[str, object]:
    """The JSON / template shape of a user's availability."""
    return {"user_id": str(user.id), "availability": status.chosen.value, "status": status.value.value,
            "connected": status.connected, "inactive": status.inactive, "label": status.label,
            "changed_at": user.availability_changed_at.isoformat() if user.availability_changed_at else None}
