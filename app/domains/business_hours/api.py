"""JSON API v1: the workspace's business hours, away message and greeting (admins only)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody
from pydantic import BaseModel, ConfigDict, Field

from app.api_shapes import ApiShape, documented
from app.auth import requires_admin
from app.domains.business_hours.rules import Holiday, OpenInterval
from app.domains.workspaces.services import Principal
from app.errors import ValidationFailed
from app.runtime import Runtime


class BusinessHoursShape(ApiShape):
    enabled: bool = Field(description="Business hours apply (the inbox's notice, the away message)")
    time_zone: str = Field(examples=["Europe/Berlin"], description="IANA time zone of the hours")
    weekly: dict[str, list[OpenInterval]] = Field(
        description="mon … sun -> open intervals, local HH:MM (end may be 24:00); an empty list: closed")
    holidays: list[Holiday] = Field(description="Local dates closed all day")
    away_message: str = Field(description="Sent once per conversation per closed period to a customer who "
                                          "writes while closed; empty: none")
    greeting_message: str = Field(description="Sent once on a new conversation's first customer message, "
                                              "open or closed; empty: none")
    open_now: bool
    opens: str | None = Field(None, examples=["Mon 09:00"], description="When it opens next, while closed")
    updated_at: str | None = Field(None, description="Null until first saved (the defaults are shown)")


class BusinessHoursIn(BaseModel):
    """The fields to change; fields left out keep their values, and so do days left out of ``weekly``."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool | None = None
    time_zone: str | None = Field(None, examples=["Europe/Berlin"])
    weekly: dict[str, list[OpenInterval]] | None = Field(
        None, examples=[{"mon": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}], "sun": []}],
        description="Days to change (mon … sun); intervals must not overlap nor cross midnight")
    holidays: list[Holiday] | None = Field(None, description="Replaces the holiday list")
    away_message: str | None = None
    greeting_message: str | None = None


class BusinessHoursApi(Controller):
    path = "/api/v1/business-hours"
    guards = [requires_admin]
    tags = ["settings"]

    @get("/", summary="Business hours, away message and greeting",
         responses=documented(200, BusinessHoursShape, "The settings (the defaults until first saved)"))
    async def show(self, principal: NamedDependency[Principal], runtime: NamedDependency[Runtime]) -> dict[str, Any]:
        service = runtime.business_hours
        return service.view(await service.current(principal.workspace_id))

    @put("/", summary="Change business hours, the away message or the greeting",
         description="Validated as a whole: an unknown time zone, a time that is not HH:MM, an interval that "
                     "ends before it starts or overlaps another, or a bad date answers 422 "
                     "BUSINESS_HOURS_INVALID with one message per field in ``details``; nothing is saved.",
         responses=documented(200, BusinessHoursShape, "The saved settings"))
    async def change(self, data: JSONBody[BusinessHoursIn], principal: NamedDependency[Principal], runtime: NamedDependency[Runtime]) -> dict[str, Any]:
        fields = data.model_dump(exclude_unset=True)
        if not fields:
            raise ValidationFailed("Nothing to change.", details={"body": "Send at least one field."})
        service = runtime.business_hours
        return service.view(await service.update(principal.workspace_id, fields))
