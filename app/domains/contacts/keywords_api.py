"""JSON API v1: the workspace's extra STOP / START words and their confirmations (admins only)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody
from pydantic import BaseModel, ConfigDict, Field

from app.api_shapes import ApiShape, documented
from app.auth import requires_admin
from app.domains.workspaces.services import Principal
from app.errors import ValidationFailed
from app.runtime import Runtime


class KeywordSettingsShape(ApiShape):
    opt_out_words: list[str] = Field(examples=[["ALTO", "no más"]],
                                     description="Extra whole-message opt-out words, beside the built-in STOP ones")
    opt_in_words: list[str] = Field(description="Extra whole-message opt-in words, beside the built-in START ones")
    opt_out_confirmation: str = Field(description="Sent when a keyword opted the customer out; empty: none")
    opt_in_confirmation: str = Field(description="Sent when a keyword opted the customer back in; empty: none")
    updated_at: str | None = Field(None, description="Null until first saved (the defaults are shown)")


class KeywordSettingsIn(BaseModel):
    """The fields to change; fields left out keep their values."""

    model_config = ConfigDict(extra="forbid")
    opt_out_words: list[str] | None = Field(None, examples=[["ALTO"]],
                                            description="Replaces the list: ≤ 20 words of ≤ 30 characters")
    opt_in_words: list[str] | None = Field(None, description="Replaces the list; no word of both lists")
    opt_out_confirmation: str | None = Field(None, description="≤ 1024 characters; empty: none")
    opt_in_confirmation: str | None = Field(None, description="≤ 1024 characters; empty: none")


class KeywordSettingsApi(Controller):
    path = "/api/v1/opt-out-keywords"
    guards = [requires_admin]
    tags = ["settings"]

    @get("/", summary="Extra STOP / START words and their confirmations",
         responses=documented(200, KeywordSettingsShape, "The settings (the defaults until first saved)"))
    async def show(self, principal: NamedDependency[Principal], runtime: NamedDependency[Runtime]) -> dict[str, Any]:
        service = runtime.consent_keywords
        return service.values(await service.current(principal.workspace_id))

    @put("/", summary="Change the extra STOP / START words or their confirmations",
         description="Validated as a whole: more than 20 words in a list, a word longer than 30 characters, a "
                     "word in both lists (or a built-in word of the other kind) or a confirmation longer than 1024 characters answers 422 "
                     "KEYWORDS_INVALID with one message per field in ``details``; nothing is saved.",
         responses=documented(200, KeywordSettingsShape, "The saved settings"))
    async def change(self, data: JSONBody[KeywordSettingsIn], principal: NamedDependency[Principal],
                     runtime: NamedDependency[Runtime]) -> dict[str, Any]:
        fields = data.model_dump(exclude_none=True)
        if not fields:
            raise ValidationFailed("Nothing to change.", details={"body": "Send at least one field."})
        service = runtime.consent_keywords
        return service.values(await service.update(principal.workspace_id, fields))
