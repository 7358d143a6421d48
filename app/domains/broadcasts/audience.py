"""Who a broadcast goes to: segments, tags, picked contacts and uploaded lists, minus exclusions, counted and frozen.

The audience is one contact query (the contact filter language of segments, ``contacts/filters.py``);
freezing streams it in ``_id`` order and writes the recipients in batches, each unique per
(broadcast, contact), so a freeze cut short and run again writes nothing twice. Contacts who opted
out of marketing are frozen as skipped (with that reason) for a MARKETING template; contacts without
a WhatsApp number or user id are skipped as unreachable.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from beanie import PydanticObjectId
from phonenumbers import timezone as phone_zones
from pymongo.errors import BulkWriteError

from app.db import parse_object_id, utcnow
from app.domains.broadcasts.models import Audience, BroadcastRecipient
from app.domains.contact_files.models import ContactImport
from app.domains.contacts.filters import contact_query, parse_filter
from app.domains.contacts.models import Contact
from app.domains.segments.models import Segment
from app.errors import ValidationFailed

FREEZE_BATCH = 1000
MAX_LISTED = 100_000
OPTED_OUT = "opted out of marketing"
UNREACHABLE = "no WhatsApp number or user id"


def _refuse(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, error_code="AUDIENCE_INVALID", details={field: message})


async def _segment_query(workspace_id: PydanticObjectId, segment_id: str, field: str) -> dict[str, Any]:
    segment = await Segment.find_one({"_id": parse_object_id(segment_id), "workspace_id": workspace_id})
    if segment is None:
        raise _refuse(field, f"no segment {segment_id}")
    return await contact_query(workspace_id, parse_filter(segment.filter))


async def audience_query(workspace_id: PydanticObjectId, audience: Audience) -> dict[str, Any]:
    """The contacts of the audience (groups never), as one Mongo filter; 422 AUDIENCE_INVALID naming the part."""
    include: list[dict[str, Any]] = []
    for i, segment_id in enumerate(audience.segment_ids):
        include.append(await _segment_query(workspace_id, segment_id, f"audience.segment_ids.{i}"))
    if audience.tags:
        include.append({"tags": {"$in": audience.tags}})
    if audience.contact_ids:
        if len(audience.contact_ids) > MAX_LISTED:
            raise _refuse("audience.contact_ids", f"at most {MAX_LISTED:,} listed contacts")
        ids = [parse_object_id(c) for c in audience.contact_ids]
        if any(i is None for i in ids):
            raise _refuse("audience.contact_ids", "not contact ids")
        include.append({"_id": {"$in": ids}})
    if audience.lists:
        include.append({"tags": {"$in": [uploaded.tag for uploaded in audience.lists]}})
    if not include:
        raise _refuse("audience", "pick at least one segment, tag or list of contacts")
    parts: list[dict[str, Any]] = [{"workspace_id": workspace_id, "kind": {"$ne": "group"}},
                                   include[0] if len(include) == 1 else {"$or": include}]
    excluded = [await _segment_query(workspace_id, s, f"audience.exclude_segment_ids.{i}")
                for i, s in enumerate(audience.exclude_segment_ids)]
    if audience.exclude_tags:
        excluded.append({"tags": {"$in": audience.exclude_tags}})
    if excluded:
        parts.append({"$nor": excluded})
    return {"$and": parts}


def list_tag(import_id: str, filename: str) -> str:
    """The tag an uploaded list's contacts get: its file's name (what the tag rules allow) and the import's id's end."""
    stem = re.sub(r"[^A-Za-z0-9 _.&+-]+", " ", filename.rsplit(".", 1)[0]).strip()[:24].strip() or "upload"
    return f"list:{stem}:{import_id[-4:]}"


async def lists_importing(workspace_id: PydanticObjectId, audience: Audience) -> list[ContactImport]:
    """The audience's uploaded lists still being imported (their contacts are not all there yet)."""
    ids = [parse_object_id(uploaded.import_id) for uploaded in audience.lists]
    if not ids:
        return []
    return await ContactImport.find({"_id": {"$in": ids}, "workspace_id": workspace_id,
                                     "status": {"$in": ["uploaded", "running"]}}).to_list()


def is_empty(audience: Audience) -> bool:
    """Nothing picked yet (a draft may be saved so, say to upload a list next; it cannot start so)."""
    return not (audience.segment_ids or audience.tags or audience.contact_ids or audience.lists)


async def count(workspace_id: PydanticObjectId, audience: Audience, *, marketing: bool) -> dict[str, int]:
    """How many the audience holds now, and how many of them would be skipped as opted out."""
    if is_empty(audience):
        return {"contacts": 0, "opted_out": 0, "to_send": 0}
    query = await audience_query(workspace_id, audience)
    total = await Contact.find(query).count()
    opted_out = await Contact.find({"$and": [query, {"opted_out_marketing": True}]}).count() if marketing else 0
    return {"contacts": total, "opted_out": opted_out, "to_send": total - opted_out}


def local_moment(wa_id: str | None, hhmm: str, after: datetime, fallback_zone: str) -> datetime:
    """The first ``hhmm`` on the recipient's own clock at or after ``after``: their zone from their number's
    country (phonenumbers' time zone data; a country with several zones: the first), else ``fallback_zone``."""
    zone_name = fallback_zone
    if wa_id:
        try:
            zones = phone_zones.time_zones_for_number(phonenumbers.parse("+" + wa_id))
        except phonenumbers.NumberParseException:
            zones = ()
        if zones and zones[0] != "Etc/Unknown":
            zone_name = zones[0]
    zone = ZoneInfo(zone_name)
    local = after.astimezone(zone)
    hour, minute = (int(x) for x in hhmm.split(":"))
    moment = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if moment < local:
        moment += timedelta(days=1)
    return moment.astimezone(UTC)


async def freeze(workspace_id: PydanticObjectId, broadcast_id: PydanticObjectId, audience: Audience, *,
                 marketing: bool, local_time: str | None = None, zone: str = "UTC",
                 each_batch: Callable[[], Awaitable[Any]] | None = None) -> tuple[int, int]:
    """Write the recipients (again: only those missing), each with its place (``seq``) in ``_id`` order of the
    contacts; returns how many the broadcast has, and the end of the places. With ``local_time`` each gets the
    moment it may be sent (``not_before``)."""
    started = utcnow()
    query = await audience_query(workspace_id, audience)
    batch: list[dict[str, Any]] = []
    projection = {"_id": 1, "opted_out_marketing": 1, "wa_id": 1, "user_id": 1}
    collection = Contact.get_motor_collection()
    seq = 0
    async for raw in collection.find(query, projection).sort("_id", 1):
        reason = None
        if not raw.get("wa_id") and not raw.get("user_id"):
            reason = UNREACHABLE
        elif marketing and raw.get("opted_out_marketing"):
            reason = OPTED_OUT
        now = utcnow()
        batch.append({"workspace_id": workspace_id, "broadcast_id": broadcast_id, "contact_id": raw["_id"],
                      "status": "skipped" if reason else "pending", "reason": reason, "message_id": None,
                      "not_before": local_moment(raw.get("wa_id"), local_time, started, zone) if local_time else None,
                      "replied_at": None, "seq": seq, "created_at": now, "updated_at": now})
        seq += 1
        if len(batch) >= FREEZE_BATCH:
            await _insert(batch)
            batch = []
            if each_batch is not None:  # a long freeze keeps its lease
                await each_batch()
    if batch:
        await _insert(batch)
    return await BroadcastRecipient.find({"broadcast_id": broadcast_id}).count(), seq


async def _insert(batch: list[dict[str, Any]]) -> None:
    try:
        await BroadcastRecipient.get_motor_collection().insert_many(batch, ordered=False)
    except BulkWriteError as exc:  # written by a freeze cut short: the unique index keeps one of each
        if any(error.get("code") != 11000 for error in exc.details.get("writeErrors", [])):
            raise
