"""Hourly rollups of the messages: what the report's message figures are read from.

Why: aggregating the messages on each page load cost 19 s for 30 days of 100,000 messages on the embedded
server (bench/reports.py); the rollups make a 30-day page a read of ~720 small documents per number.

What: one ``ReportHour`` per workspace, number and *local* hour of the workspace's time zone (an hour starts
where the zone's hours start: at :30 UTC in India), with counters:

- ``in`` / ``out``: customers' and our messages (reactions and internal lines are not messages);
  ``in:t:<type>`` / ``out:t:<type>`` by Meta's type;
- ``delivered`` (delivered, read or played), ``read`` (read or played), ``failed``, ``fail:<code>``:
  our messages, each counted in the hour it was sent in, whatever hour its status came in;
- ``billable:<category>``: our messages Meta charges for, by pricing category;
- waits (seconds, whole): ``reply`` (every answer to a waiting customer), ``first`` (the first since the
  conversation started or reopened), the same in business time, ``reply_business`` / ``first_business`` (only
  the seconds the business was open, by the business hours in force when the hour was counted; with business
  hours off every second counts), ``resolution`` (how long the conversations resolved in the hour were open);
- ``agent:<user id>:sent`` / ``:resolved``: what each agent sent and resolved (and their own waits,
  ``reply:<id>``, ``first:<id>``, ``resolution:<id>``), for the agents' leaderboard;
- ``tpl:<name>:sent|delivered|read|failed|replied``: our template messages by template name (replied: the
  customer's next message came within a day, Message.replied_at);
- ``conv:new``: conversations a customer's message started (not those a broadcast or an agent started);
  ``event:<kind>``: the conversations' own lines (resolved, reopened ...), for the conversation figures;
  ``reopened:customer``: a customer writing into a resolved conversation (a returning customer).

And one ``ContactHour`` per workspace and local hour (contacts belong to the workspace, not to a number): contacts
created in the hour, and marketing opt-outs and opt-ins in the hour, by source. Recomputed with the same hours,
from the contacts created in them and those with a consent change in them; the contacts changed since
``seen_until`` (every write to a contact sets its ``updated_at``) mark their hours as messages do.

How they stay exact: an hour is never incremented, it is recomputed from its messages (one indexed read of
that hour), so a retried job or a crash cannot count anything twice. Which hours to recompute: those of the
messages whose ``updated_at`` moved since the workspace's ``seen_until`` (every write to a message sets it:
insert, status, pricing, retry), read through the (workspace_id, updated_at) index, plus hours marked by
deletions (``forget``). ``refresh`` runs from the worker's cron every minute and from each report before it
reads; a lease keeps two refreshes of one workspace apart. The first count of a workspace's past (or a recount
after a change of time zone) goes newest week first and a report gives it only a couple of seconds, showing
how far it got; the cron finishes it.
"""

from __future__ import annotations

import secrets
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from beanie import PydanticObjectId
from pymongo import DeleteMany, ReplaceOne, ReturnDocument

from app.db import utcnow
from app.domains.business_hours.models import BusinessHours
from app.domains.business_hours.rules import Schedule, business_seconds
from app.domains.contacts.models import Contact
from app.domains.conversations.models import Conversation
from app.domains.messages.models import Message
from app.domains.reports.models import ContactHour, ReportHour, ReportState, SliceHour
from app.domains.reports.waits import pack
from app.domains.workspaces.models import Workspace

DELIVERED = frozenset({"delivered", "read", "played"})
READ = frozenset({"read", "played"})
OVERLAP = timedelta(seconds=30)
"""Changes are looked for from this long before the last refresh: a write that set its ``updated_at`` just
before a refresh may land just after it."""
LEASE = timedelta(minutes=5)
HISTORY = timedelta(days=2 * 366)
"""How far before the workspace was created a first count looks (a history imported or backdated; and the
longest report, a year compared with the year before)."""
VERSION = 3
"""What the rollups hold; a workspace counted by another version is counted again (newest week first, as a first
count). 2: business-time waits, returning customers and the contacts' hours; 3: the slices (SliceHour)."""
SLICE_BATCH = 1000
"""Messages tallied at a time: their conversations' slices are read in one query per batch."""
CHUNK = timedelta(days=7)
"""A rebuild reads the messages a week at a time (bounded reads; the server materialises what it matches)."""
_FIELDS = {"account_id": 1, "direction": 1, "type": 1, "status": 1, "timestamp": 1, "error.code": 1,
           "error.agent_message": 1, "error.title": 1, "pricing.billable": 1, "pricing.category": 1,
           "content.kind": 1, "content.name": 1, "content.open_seconds": 1, "content.by_person": 1,
           "content.by_customer": 1, "opened": 1, "conversation_id": 1,
           "response": 1, "sent_by": 1, "replied_at": 1, "_id": 0}


def shift_of(zone: ZoneInfo, at: datetime | None = None) -> int:
    """Minutes past the UTC hour at which the zone's local hours start (30 in India, 45 in Nepal)."""
    offset = (at or utcnow()).astimezone(zone).utcoffset() or timedelta(0)
    return int(offset.total_seconds() // 60) % 60


def hour_of(at: datetime, shift: int) -> datetime:
    """The start of the local hour ``at`` falls in."""
    moved = at.astimezone(UTC) - timedelta(minutes=shift)
    return moved.replace(minute=0, second=0, microsecond=0) + timedelta(minutes=shift)


@dataclass
class _Tally:
    counts: dict[str, int] = field(default_factory=dict)
    waits: dict[str, list[int]] = field(default_factory=dict)
    reasons: dict[str, dict[str, str]] = field(default_factory=dict)


def _count(doc: dict[str, Any], tally: _Tally, hours: Schedule | None = None) -> None:
    counts, reasons = tally.counts, tally.reasons
    direction, kind = doc.get("direction"), doc.get("type") or "unknown"

    def add(key: str) -> None:
        counts[key] = counts.get(key, 0) + 1

    if direction == "internal":
        if kind == "event":
            content = doc.get("content") or {}
            add(f"event:{content.get('kind') or 'unknown'}")
            if content.get("kind") == "reopened" and content.get("by_customer"):
                add("reopened:customer")
            if content.get("kind") == "resolved" and isinstance(content.get("open_seconds"), int | float):
                tally.waits.setdefault("resolution", []).append(round(content["open_seconds"]))
                add("resolved:person" if content.get("by_person") else "resolved:automation")
                if doc.get("sent_by") is not None:  # the agents' leaderboard
                    add(f"agent:{doc['sent_by']}:resolved")
                    tally.waits.setdefault(f"resolution:{doc['sent_by']}", []).append(round(content["open_seconds"]))
        return
    if kind == "reaction" or direction not in ("inbound", "outbound"):
        return
    short = "in" if direction == "inbound" else "out"
    add(short)
    add(f"{short}:t:{kind}")
    if doc.get("opened") == "new":
        add("conv:new")
    if direction != "outbound":
        return
    status = doc.get("status")
    template = (doc.get("content") or {}).get("name") if kind == "template" else None
    if template:  # the templates panel
        add(f"tpl:{template}:sent")
        for word, states in (("delivered", DELIVERED), ("read", READ), ("failed", ("failed",))):
            if status in states:
                add(f"tpl:{template}:{word}")
        if doc.get("replied_at") is not None:
            add(f"tpl:{template}:replied")
    if status in DELIVERED:
        add("delivered")
    if status in READ:
        add("read")
    if status == "failed":
        error = doc.get("error") or {}
        code = str(error.get("code")) if error.get("code") is not None else "none"
        add("failed")
        add(f"fail:{code}")
        if code not in reasons:
            reasons[code] = {"title": error.get("title") or "", "words": error.get("agent_message") or ""}
    pricing = doc.get("pricing") or {}
    if pricing.get("billable"):
        add(f"billable:{pricing.get('category') or 'unknown'}")
    agent = doc.get("sent_by")
    if agent is not None:
        add(f"agent:{agent}:sent")
    response = doc.get("response") or {}
    if isinstance(response.get("since"), datetime):
        since = response["since"].replace(tzinfo=UTC) if response["since"].tzinfo is None else response["since"]
        answered = _utc(doc["timestamp"])
        waited = max(0, round((answered - _utc(since)).total_seconds()))
        open_for = max(0, round(business_seconds(hours, since, answered)))
        kinds = ("reply", "first") if response.get("first") else ("reply",)
        for kind in kinds:
            tally.waits.setdefault(kind, []).append(waited)
            tally.waits.setdefault(f"{kind}_business", []).append(open_for)
            if agent is not None:
                tally.waits.setdefault(f"{kind}:{agent}", []).append(waited)


async def recompute(workspace_id: PydanticObjectId, ranges: list[tuple[datetime, datetime]], shift: int, *,
                    empty: bool = False, contact_ranges: list[tuple[datetime, datetime]] | None = None) -> int:
    """Rebuilds the rollups of the local hours in each [start, end) (on hour starts) from their messages: one
    read per range, then, per kind of rollup, one read of what is stored and one bulk write of what changed
    (_write_changed); ``empty``: the ranges hold no rollup yet (a first count), so nothing is read back and a
    range without messages costs no write. The ContactHours of ``contact_ranges`` too (by default the same
    ranges). Returns the messages and contacts read."""
    found: dict[tuple[datetime, Any], _Tally] = defaultdict(_Tally)
    sliced: dict[tuple[datetime, Any, str], _Tally] = defaultdict(_Tally)
    slices: dict[Any, tuple[str, ...]] = {}  # conversation id -> its slices now
    batch: list[dict[str, Any]] = []
    read = 0
    hours = await BusinessHours.find_one(BusinessHours.workspace_id == workspace_id)  # for business time

    async def tally() -> None:
        await _slices_of({doc.get("conversation_id") for doc in batch} - slices.keys(), slices)
        for doc in batch:
            hour, account = hour_of(doc["timestamp"], shift), doc.get("account_id")
            _count(doc, found[(hour, account)], hours)
            for name in slices.get(doc.get("conversation_id"), ()):
                _count(doc, sliced[(hour, account, name)], hours)
        batch.clear()

    for start, end in ranges:
        cursor = Message.get_motor_collection().find(
            {"workspace_id": workspace_id, "timestamp": {"$gte": start, "$lt": end}}, projection=_FIELDS)
        async for doc in cursor:
            read += 1
            batch.append(doc)
            if len(batch) >= SLICE_BATCH:
                await tally()
    await tally()

    def rollup(tally: _Tally) -> dict[str, Any]:
        return {"counts": tally.counts, "waits": {kind: pack(waits) for kind, waits in tally.waits.items()},
                "reasons": tally.reasons}

    await _write_changed(ReportHour.get_motor_collection(), workspace_id, ranges, ("hour", "account_id"), {
        (hour, account): {"workspace_id": workspace_id, "hour": hour, "account_id": account, **rollup(tally)}
        for (hour, account), tally in found.items() if account is not None and tally.counts}, empty=empty)
    await _write_changed(SliceHour.get_motor_collection(), workspace_id, ranges, ("slice", "hour", "account_id"), {
        (name, hour, account): {"workspace_id": workspace_id, "slice": name, "hour": hour, "account_id": account,
                                **rollup(tally)}
        for (hour, account, name), tally in sliced.items() if account is not None and tally.counts}, empty=empty)
    return read + await _recompute_contacts(workspace_id, ranges if contact_ranges is None else contact_ranges, shift,
                                            empty=empty)


async def _write_changed(collection: Any, workspace_id: PydanticObjectId, ranges: list[tuple[datetime, datetime]],
                         key: tuple[str, ...], docs: dict[tuple[Any, ...], dict[str, Any]], *, empty: bool) -> None:
    """Makes the rollups stored for ``ranges`` be ``docs`` (their key fields -> the whole document), writing only
    what differs: one read of what is stored, then one bulk write of the documents that changed, appeared or
    went. A recount of an hour mostly finds it as it was: a receipt changes its number's rollup and the slices
    of one conversation, not the hour's other slices. Rewriting every slice of 100 hours (~6,000 documents,
    ~1 ms each on the embedded server) was most of the time of a page after receipts spread over many hours.
    ``empty``: nothing is stored for these hours yet (a first count), so nothing is read."""
    stored: dict[tuple[Any, ...], dict[str, Any]] = {}
    if not empty:
        for start, end in ranges:
            async for doc in collection.find({"workspace_id": workspace_id, "hour": {"$gte": start, "$lt": end}}):
                stored[tuple(_utc(v) if isinstance(v, datetime) else v for v in (doc.get(f) for f in key))] = doc
    gone = [doc["_id"] for k, doc in stored.items() if k not in docs]
    ops: list[Any] = [DeleteMany({"_id": {"$in": gone}})] if gone else []
    for k, doc in sorted(docs.items(), key=lambda item: item[1]["hour"]):
        old = stored.get(k)
        if old is None or any(old.get(f) != value for f, value in doc.items()):
            ops.append(ReplaceOne({"workspace_id": workspace_id, **{f: doc[f] for f in key}}, doc, upsert=True))
    if ops:
        await collection.bulk_write(ops, ordered=True)


async def _slices_of(ids: set[Any], known: dict[Any, tuple[str, ...]]) -> None:
    """Adds to ``known`` the slices each of these conversations is in now (one read)."""
    ids.discard(None)
    if not ids:
        return
    cursor = Conversation.get_motor_collection().find(
        {"_id": {"$in": list(ids)}}, projection={"team_id": 1, "assignee_id": 1, "labels": 1})
    async for conversation in cursor:
        known[conversation["_id"]] = slices_of(conversation)
    for missing in ids - known.keys():
        known[missing] = ()


def slices_of(conversation: dict[str, Any]) -> tuple[str, ...]:
    """A conversation's slices: its team, its agent, each of its labels."""
    names = [f"team:{conversation['team_id']}"] if conversation.get("team_id") else []
    names += [f"agent:{conversation['assignee_id']}"] if conversation.get("assignee_id") else []
    return (*names, *(f"label:{label}" for label in conversation.get("labels") or []))


def slice_query(only: str) -> dict[str, Any]:
    """The conversations of a slice, as a query on conversations."""
    kind, _, value = only.partition(":")
    if kind == "label":
        return {"labels": value}
    field = {"team": "team_id", "agent": "assignee_id"}[kind]
    return {field: PydanticObjectId(value)}


async def _recompute_contacts(workspace_id: PydanticObjectId, ranges: list[tuple[datetime, datetime]], shift: int, *,
                              empty: bool) -> int:
    """The ContactHours of the same ranges: two indexed reads per range (contacts created in it; contacts with a
    consent change in it), one bulk write. Returns the contacts read."""
    found: dict[datetime, dict[str, int]] = defaultdict(dict)
    read = 0

    def add(hour: datetime, key: str) -> None:
        found[hour][key] = found[hour].get(key, 0) + 1

    contacts = Contact.get_motor_collection()
    for start, end in ranges:
        created = contacts.find({"workspace_id": workspace_id, "created_at": {"$gte": start, "$lt": end}},
                                projection={"created_at": 1, "_id": 0})
        async for doc in created:
            read += 1
            add(hour_of(doc["created_at"], shift), "new")
        changed = contacts.find({"workspace_id": workspace_id, "consent.at": {"$gte": start, "$lt": end}},
                                projection={"consent.at": 1, "consent.opted_out": 1, "consent.source": 1, "_id": 0})
        async for doc in changed:
            read += 1
            for change in doc.get("consent") or []:
                at = change.get("at")
                if isinstance(at, datetime) and _utc(start) <= _utc(at) < _utc(end):
                    word = "opt_out" if change.get("opted_out") else "opt_in"
                    add(hour_of(at, shift), word)
                    add(hour_of(at, shift), f"{word}:{change.get('source') or 'unknown'}")
    await _write_changed(ContactHour.get_motor_collection(), workspace_id, ranges, ("hour",), {
        (hour,): {"workspace_id": workspace_id, "hour": hour, "counts": counts} for hour, counts in found.items()},
        empty=empty)
    return read


def contact_times(contact: dict[str, Any]) -> list[datetime]:
    """The times a contact counts at (created, each consent change): for ``forget`` before it is deleted."""
    times = [contact["created_at"]] if isinstance(contact.get("created_at"), datetime) else []
    return times + [c["at"] for c in contact.get("consent") or [] if isinstance(c.get("at"), datetime)]


def _runs(hours: Iterable[datetime]) -> list[tuple[datetime, datetime]]:
    """Consecutive hours joined into [start, end) ranges (one read each)."""
    runs: list[tuple[datetime, datetime]] = []
    for hour in sorted(set(hours)):
        if runs and runs[-1][1] == hour:
            runs[-1] = (runs[-1][0], hour + timedelta(hours=1))
        else:
            runs.append((hour, hour + timedelta(hours=1)))
    return runs


async def _take_lease(workspace_id: PydanticObjectId, now: datetime) -> tuple[str, dict[str, Any]] | None:
    token = secrets.token_hex(8)
    states = ReportState.get_motor_collection()
    await states.update_one({"workspace_id": workspace_id}, {"$setOnInsert": {"workspace_id": workspace_id,
                                                                             "seen_until": None, "dirty": []}},
                            upsert=True)
    state = await states.find_one_and_update(
        {"workspace_id": workspace_id, "$or": [{"lease_until": None}, {"lease_until": {"$lt": now}}]},
        {"$set": {"lease": token, "lease_until": now + LEASE}}, return_document=ReturnDocument.AFTER)
    return (token, state) if state is not None else None


@dataclass
class Freshness:
    """How complete the rollups are after a refresh."""

    complete: bool = True
    back_to: datetime | None = None
    """While past messages are still being counted (newest first): the rollups are complete from here on."""
    progress: float | None = None
    """The share of that first count done (0..1)."""


async def refresh(workspace_id: PydanticObjectId, zone: ZoneInfo, *, budget: float | None = None) -> Freshness:
    """Brings the workspace's rollups up to date with its messages.

    The first time (or when the zone's hours start at another minute) every past hour is counted, newest week
    first, so the recent days are ready first; ``budget`` (seconds; the page's) stops that count after the week
    that passes it, and the next refresh (the cron's, with no budget) carries on from there. Another process
    refreshing now: nothing done here (its work will show)."""
    now = utcnow()
    taken = await _take_lease(workspace_id, now)
    states = ReportState.get_motor_collection()
    if taken is None:
        return _freshness(await states.find_one({"workspace_id": workspace_id}) or {})
    token, state = taken
    shift = shift_of(zone, now)
    try:
        rebuild = state.get("rebuild")
        if rebuild is not None and (rebuild.get("shift") != shift or rebuild.get("version", 1) != VERSION):
            rebuild = None  # the zone changed again, or what is counted: start over
        if rebuild is None and (state.get("seen_until") is None or state.get("shift_minutes", 0) != shift
                                or state.get("version", 1) != VERSION):
            rebuild = await _start_rebuild(workspace_id, shift, now)
        if rebuild is not None:
            rebuild = await _rebuild_some(workspace_id, rebuild, budget)
            if _utc(rebuild["next"]) > _utc(rebuild["first"]):
                await states.update_one({"workspace_id": workspace_id}, {"$set": {"rebuild": rebuild}})
                return _freshness({"rebuild": rebuild})
            # Counted back to the first message: what changed meanwhile is picked up below.
            state["seen_until"] = rebuild["started_at"]
            await states.update_one({"workspace_id": workspace_id},
                                    {"$set": {"rebuild": None, "seen_until": rebuild["started_at"],
                                              "shift_minutes": shift, "version": VERSION}})
        since = _utc(state["seen_until"]) - OVERLAP
        changed = Message.get_motor_collection().find(
            {"workspace_id": workspace_id, "updated_at": {"$gte": since}}, projection={"timestamp": 1, "_id": 0})
        hours = {hour_of(doc["timestamp"], shift) async for doc in changed}
        people = Contact.get_motor_collection().find(
            {"workspace_id": workspace_id, "updated_at": {"$gte": since}},
            projection={"created_at": 1, "consent.at": 1, "_id": 0})
        their_hours = {hour_of(at, shift) async for doc in people for at in contact_times(doc)}
        # Conversations whose team, agent or labels changed: every hour of their messages, for the slices.
        moved = [doc["_id"] async for doc in Conversation.get_motor_collection().find(
            {"workspace_id": workspace_id, "sliced_at": {"$gte": since}}, projection={"_id": 1})]
        if moved:
            theirs = Message.get_motor_collection().find(
                {"workspace_id": workspace_id, "conversation_id": {"$in": moved}}, projection={"timestamp": 1, "_id": 0})
            hours |= {hour_of(doc["timestamp"], shift) async for doc in theirs}
        deleted = {hour_of(_utc(h), shift) for h in state.get("dirty") or []}
        await recompute(workspace_id, _runs(hours | deleted), shift, contact_ranges=_runs(their_hours | deleted))
        await states.update_one({"workspace_id": workspace_id},
                                {"$set": {"seen_until": now, "shift_minutes": shift},
                                 "$pull": {"dirty": {"$in": state.get("dirty") or []}}})
    finally:
        await states.update_one({"workspace_id": workspace_id, "lease": token},
                                {"$set": {"lease": None, "lease_until": None}})
    return Freshness()


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _freshness(state: dict[str, Any]) -> Freshness:
    rebuild = state.get("rebuild")
    if not rebuild:
        return Freshness(complete=state.get("seen_until") is not None)
    first, nxt, end = _utc(rebuild["first"]), _utc(rebuild["next"]), _utc(rebuild["end"])
    span = (end - first).total_seconds() or 1.0
    return Freshness(complete=False, back_to=nxt, progress=round((end - nxt).total_seconds() / span, 3))


async def _start_rebuild(workspace_id: PydanticObjectId, shift: int, now: datetime) -> dict[str, Any]:
    """Every hour from ``HISTORY`` before the workspace was created to now is to be counted again: the old rollups
    go. (Not from its first message: finding it sorts every message of the workspace on the embedded server,
    over a minute at 1,000,000; an empty week costs one index lookup.)"""
    workspace = await Workspace.get_motor_collection().find_one({"_id": workspace_id}, projection={"created_at": 1})
    created = _utc(workspace["created_at"]) if workspace and workspace.get("created_at") else now
    await ReportHour.get_motor_collection().delete_many({"workspace_id": workspace_id})
    await ContactHour.get_motor_collection().delete_many({"workspace_id": workspace_id})
    await SliceHour.get_motor_collection().delete_many({"workspace_id": workspace_id})
    end = hour_of(now, shift) + timedelta(hours=1)
    return {"started_at": now, "shift": shift, "first": hour_of(min(created, now) - HISTORY, shift), "next": end,
            "end": end, "version": VERSION}


async def _rebuild_some(workspace_id: PydanticObjectId, rebuild: dict[str, Any], budget: float | None
                        ) -> dict[str, Any]:
    """Counts weeks back from ``next`` until ``first``, or until ``budget`` seconds have passed (at least one week
    each call). Where it got is saved after each week with messages and every few seconds (a crash carries on
    from there), and the lease renewed with it: a long count keeps it."""
    started = saved = time.monotonic()
    first, nxt = _utc(rebuild["first"]), _utc(rebuild["next"])
    while nxt > first:
        start = max(first, nxt - CHUNK)
        read = await recompute(workspace_id, [(start, nxt)], rebuild["shift"], empty=True)
        nxt = start
        if read or time.monotonic() - saved > 5 or nxt <= first:
            saved = time.monotonic()
            await ReportState.get_motor_collection().update_one(
                {"workspace_id": workspace_id},
                {"$set": {"rebuild": {**rebuild, "next": nxt}, "lease_until": utcnow() + LEASE}})
        if budget is not None and time.monotonic() - started >= budget:
            break
    return {**rebuild, "next": nxt}


async def refresh_all(zone_of_workspace: Callable[[PydanticObjectId], Awaitable[ZoneInfo]]) -> int:
    """Every workspace's rollups brought up to date (the worker's cron). Returns how many were refreshed."""
    refreshed = 0
    for workspace_id in await Workspace.get_motor_collection().distinct("_id"):
        await refresh(workspace_id, await zone_of_workspace(workspace_id))
        refreshed += 1
    return refreshed


async def forget(workspace_id: PydanticObjectId, timestamps: Iterable[datetime]) -> None:
    """Messages at these times are about to be deleted: their hours are recomputed at the next refresh."""
    marks = sorted({t.replace(second=0, microsecond=0) for t in timestamps})  # refresh finds their local hours
    if marks:
        await ReportState.get_motor_collection().update_one(
            {"workspace_id": workspace_id}, {"$addToSet": {"dirty": {"$each": marks}}}, upsert=True)


async def hours(workspace_id: PydanticObjectId, start: datetime, end: datetime,
                accounts: list[PydanticObjectId] | None, only: str | None = None) -> list[dict[str, Any]]:
    """The rollups of [start, end) (of these numbers; None: all), of the conversations in one slice (``only``,
    slices_of: ``team:<id>``, ``agent:<id>``, ``label:<id>``; None: every conversation)."""
    query: dict[str, Any] = {"workspace_id": workspace_id, "hour": {"$gte": start, "$lt": end}}
    if accounts is not None:
        query["account_id"] = {"$in": accounts}
    if only is not None:
        return await SliceHour.get_motor_collection().find(
            {**query, "slice": only}, projection={"hour": 1, "counts": 1, "waits": 1, "reasons": 1, "_id": 0}
        ).to_list(None)
    return await ReportHour.get_motor_collection().find(
        query, projection={"hour": 1, "counts": 1, "waits": 1, "reasons": 1, "_id": 0}).to_list(None)


async def contact_hours(workspace_id: PydanticObjectId, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The workspace's ContactHours of [start, end)."""
    return await ContactHour.get_motor_collection().find(
        {"workspace_id": workspace_id, "hour": {"$gte": start, "$lt": end}},
        projection={"hour": 1, "counts": 1, "_id": 0}).to_list(None)
