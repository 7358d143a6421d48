"""Segments: create, rename, change the filter, delete; count and query their contacts.

A filter is checked with ``parse_filter`` when saved (422 FILTER_INVALID) and a name is unique per
workspace whatever its case (409). Deleting a segment never touches a contact.
"""

from __future__ import annotations

from typing import Any

from beanie import PydanticObjectId
from pymongo.errors import DuplicateKeyError

from app.db import utcnow
from app.domains.contacts.filters import ContactFilter, contact_query, parse_filter
from app.domains.contacts.models import Contact
from app.domains.segments.models import Segment
from app.errors import Conflict, ValidationFailed

MAX_NAME = 80
MAX_SEGMENTS = 500


def _name(name: str | None) -> str:
    name = " ".join((name or "").split())
    if not 1 <= len(name) <= MAX_NAME:
        raise ValidationFailed(f"Name the segment: 1 to {MAX_NAME} characters.", error_code="NAME_INVALID",
                               details={"name": f"{len(name)} characters"})
    return name


def _taken(name: str) -> Conflict:
    return Conflict(f"A segment named “{name}” exists already.", error_code="SEGMENT_EXISTS", details={"name": name})


class SegmentService:
    async def list(self, workspace_id: PydanticObjectId) -> list[Segment]:
        return await Segment.scoped(workspace_id).sort("+name_key").limit(MAX_SEGMENTS).to_list()

    async def get(self, workspace_id: PydanticObjectId, segment_id: str | PydanticObjectId) -> Segment:
        return await Segment.get_scoped(workspace_id, segment_id)

    async def create(self, workspace_id: PydanticObjectId, name: str, filter: Any, *,
                     by: PydanticObjectId | None = None) -> Segment:
        """A new segment; ``filter`` is a ContactFilter, its dict or JSON text (None: every contact)."""
        name = _name(name)
        spec = parse_filter(filter)
        if await Segment.scoped(workspace_id).count() >= MAX_SEGMENTS:
            raise ValidationFailed(f"At most {MAX_SEGMENTS} segments.", error_code="TOO_MANY_SEGMENTS")
        await contact_query(workspace_id, spec)  # attribute values of the wrong type: 422 now, not on each use
        segment = Segment(workspace_id=workspace_id, name=name, name_key=name.casefold(),
                          filter=spec.model_dump(mode="json"), created_by=by)
        try:
            await segment.insert()
        except DuplicateKeyError:
            raise _taken(name) from None
        return segment

    async def update(self, workspace_id: PydanticObjectId, segment_id: str, *, name: str | None = None,
                     filter: Any = None) -> Segment:
        """Rename it and / or replace its filter (None leaves either as it is)."""
        segment = await self.get(workspace_id, segment_id)
        changes: dict[str, Any] = {"updated_at": utcnow()}
        if name is not None:
            changes["name"] = _name(name)
            changes["name_key"] = changes["name"].casefold()
        if filter is not None:
            spec = parse_filter(filter)
            await contact_query(workspace_id, spec)
            changes["filter"] = spec.model_dump(mode="json")
        try:
            await Segment.find_one({"_id": segment.id, "workspace_id": workspace_id}).update({"$set": changes})
        except DuplicateKeyError:
            raise _taken(changes["name"]) from None
        return segment.model_copy(update=changes)

    async def delete(self, workspace_id: PydanticObjectId, segment_id: str) -> None:
        """Forget the segment (its contacts stay as they are)."""
        segment = await self.get(workspace_id, segment_id)
        await Segment.find({"_id": segment.id, "workspace_id": workspace_id}).delete()

    @staticmethod
    def spec(segment: Segment) -> ContactFilter:
        return parse_filter(segment.filter)

    async def query(self, workspace_id: PydanticObjectId, segment_id: str | PydanticObjectId) -> dict[str, Any]:
        """The Mongo filter of the segment's contacts now (scoped, groups left out). A segment id of
        another workspace or none: 404."""
        return await contact_query(workspace_id, self.spec(await self.get(workspace_id, segment_id)))

    async def count(self, segment: Segment) -> int:
        """How many contacts the segment holds now."""
        query = await contact_query(segment.workspace_id, self.spec(segment))
        return await Contact.find(query).count()
