"""JSON API v1: segments (saved contact filters) with their live count. The contacts of one are
listed by ``GET /api/v1/contacts?segment=<id>``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from pydantic import BaseModel, ConfigDict, Field

from app.auth import requires_login
from app.db import as_utc
from app.domains.contacts.filters import FILTER_DESCRIPTION, FILTER_EXAMPLE, ContactFilter
from app.domains.segments.models import Segment
from app.domains.segments.services import SegmentService
from app.domains.workspaces.services import Principal
from app.errors import ValidationFailed

segments = SegmentService()


class SegmentOut(BaseModel):
    id: str = Field(examples=["665f1c2e8a4b5c6d7e8f9012"])
    name: str = Field(examples=["VIP on the pro plan"])
    filter: ContactFilter
    count: int = Field(description="How many contacts it holds now (groups never count)")
    created_by: str | None = Field(None, description="The user who saved it")
    created_at: datetime
    updated_at: datetime


class SegmentList(BaseModel):
    data: list[SegmentOut]
    next_cursor: str | None = Field(None, description="Always null: every segment is in one page")


class SegmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=200, description="Unique in the workspace, whatever its case (409 otherwise)")
    filter: dict[str, Any] = Field(default_factory=dict, description=FILTER_DESCRIPTION, examples=[FILTER_EXAMPLE])


class SegmentPatch(BaseModel):
    """Send only what changes."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=200)
    filter: dict[str, Any] | None = Field(None, description=FILTER_DESCRIPTION, examples=[FILTER_EXAMPLE])


async def segment_out(segment: Segment) -> SegmentOut:
    return SegmentOut(id=str(segment.id), name=segment.name, filter=segments.spec(segment),
                      count=await segments.count(segment),
                      created_by=str(segment.created_by) if segment.created_by else None,
                      created_at=as_utc(segment.created_at), updated_at=as_utc(segment.updated_at))


class SegmentsApi(Controller):
    path = "/api/v1/segments"
    guards = [requires_login]
    tags = ["contacts"]

    @get("/", summary="Segments (saved contact filters), by name, each with its count")
    async def list_segments(self, principal: NamedDependency[Principal]) -> SegmentList:
        return SegmentList(data=[await segment_out(s) for s in await segments.list(principal.workspace_id)])

    @post("/", summary="Save a contact filter as a named segment", status_code=201,
          description="The filter is checked when saved (422 `FILTER_INVALID`); a name in use answers 409.")
    async def create_segment(self, data: JSONBody[SegmentIn], principal: NamedDependency[Principal]) -> SegmentOut:
        return await segment_out(await segments.create(principal.workspace_id, data.name, data.filter,
                                                       by=principal.user_id))

    @get("/{segment_id:str}", summary="One segment with its count")
    async def get_segment(self, segment_id: FromPath[str], principal: NamedDependency[Principal]) -> SegmentOut:
        return await segment_out(await segments.get(principal.workspace_id, segment_id))

    @patch("/{segment_id:str}", summary="Rename a segment or replace its filter")
    async def update_segment(self, segment_id: FromPath[str], data: JSONBody[SegmentPatch], principal: NamedDependency[Principal]) -> SegmentOut:
        await segments.get(principal.workspace_id, segment_id)  # another workspace's: 404 before anything else
        if not data.model_fields_set:
            raise ValidationFailed("Nothing to change.", details={"body": "Send at least one field."})
        for name in ("name", "filter"):
            if name in data.model_fields_set and getattr(data, name) is None:
                raise ValidationFailed(f"{name} cannot be null.", details={name: "cannot be null"})
        return await segment_out(await segments.update(principal.workspace_id, segment_id, name=data.name,
                                                       filter=data.filter))

    @delete("/{segment_id:str}", summary="Delete a segment (its contacts are not touched)", status_code=204)
    async def delete_segment(self, segment_id: FromPath[str], principal: NamedDependency[Principal]) -> None:
        await segments.delete(principal.workspace_id, segment_id)
