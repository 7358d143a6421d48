"""OpenAPI shapes of the canned responses / labels / attributes answers (``Catalog.view`` dicts)."""

from __future__ import annotations

from pydantic import Field

from app.api_shapes import ApiShape, page_of


class CannedResponseShape(ApiShape):
    id: str
    shortcut: str = Field(examples=["thanks"])
    text: str = Field(examples=["Thank you, {{contact.name}}!"])
    updated_at: str | None = None


class LabelShape(ApiShape):
    id: str
    name: str = Field(examples=["VIP"])
    colour: str = Field(examples=["#128c7e"])
    updated_at: str | None = None


class AttributeShape(ApiShape):
    id: str
    key: str = Field(examples=["plan"])
    name: str
    type: str = Field(examples=["text"])
    options: list[str] = Field(default_factory=list)
    updated_at: str | None = None


CannedResponsePage = page_of(CannedResponseShape, "CannedResponsePage")
LabelPage = page_of(LabelShape, "LabelPage")
AttributePage = page_of(AttributeShape, "AttributePage")
