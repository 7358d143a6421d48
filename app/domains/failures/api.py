"""JSON API v1 of the failed messages (services.py): bulk retry, bulk discard, and the list's filter. Admins.

The list itself, ``GET /api/v1/messages?status=failed``, is served by outbox/api.py's controller: one controller per
path (Litestar answers OPTIONS per path), and POST /api/v1/messages (send) is there."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.params import Body
from pydantic import BaseModel, Field

from app.auth import requires_admin
from app.db import parse_object_id
from app.domains.failures.services import MAX_BATCH, FailedFilter, discard_many, retry_many
from app.domains.messages.api_shapes import documented
from app.domains.messages.schemas import MessageOut
from app.domains.workspaces.services import Principal
from app.errors import ValidationFailed
from app.runtime import Runtime


class FailedList(BaseModel):
    data: list[MessageOut]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page; null on the last")


class MessageIds(BaseModel):
    ids: list[str] = Field(description=f"Message ids, at most {MAX_BATCH}", max_length=MAX_BATCH)


class RetriedMany(BaseModel):
    retried: int = Field(description="Queued again (each a new attempt of the same message)")
    skipped: dict[str, int] = Field(description="Not queued, by the reason's error code (WINDOW_CLOSED, "
                                                "NOT_FAILED, TEMPLATE_NOT_APPROVED ...)")


class DiscardedMany(BaseModel):
    discarded: int = Field(description="Set aside (the others were not failed, or already aside)")


def filter_of(account_id: str | None, error_code: int | None, start: datetime | None, end: datetime | None,
              discarded: bool, cursor: str | None, limit: int) -> FailedFilter:
    """The list's filter, each bad value refused with its name (400 FILTER_INVALID)."""
    def invalid(field: str, why: str) -> ValidationFailed:
        return ValidationFailed(f"{field}: {why}.", error_code="FILTER_INVALID", details={field: why}, status_code=400)

    number = parse_object_id(account_id) if account_id else None
    if account_id and number is None:
        raise invalid("account_id", "not a number's id")
    before = parse_object_id(cursor) if cursor else None
    if cursor and before is None:
        raise invalid("cursor", "not a cursor this list gave")
    if not 1 <= limit <= 200:
        raise invalid("limit", "between 1 and 200")
    if start is not None and end is not None and end <= start:
        raise invalid("to", "after from")
    return FailedFilter(account_id=number, error_code=error_code, start=start, end=end, discarded=discarded,
                        before=before, limit=limit)


class FailedMessagesApi(Controller):
    path = "/api/v1/messages"
    guards = [requires_admin]
    tags = ["messages"]

    @post("/retry", status_code=202, summary="Send failed messages again",
          responses=documented(202, RetriedMany, "What was queued again, and what was not (by reason)"))
    async def retry(self, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal],
                    data: Annotated[MessageIds, Body()]) -> dict[str, Any]:
        return await retry_many(runtime.outbox, principal.workspace_id, data.ids)

    @post("/discard", status_code=200, summary="Set failed messages aside (they leave the failed list)",
          responses=documented(200, DiscardedMany, "How many were set aside"))
    async def discard(self, principal: NamedDependency[Principal], data: Annotated[MessageIds, Body()]
                      ) -> dict[str, Any]:
        return {"discarded": await discard_many(principal.workspace_id, data.ids, principal.who)}
