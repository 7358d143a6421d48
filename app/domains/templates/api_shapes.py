"""OpenAPI shapes of the templates API answers (``TemplateService.view``, ``SyncReport.to_dict``);
the handlers keep returning those dicts (see app/api_shapes.py)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from app.api_shapes import ApiShape, page_of


class TemplateShape(ApiShape):
    id: str
    waba_id: str | None = None
    meta_id: str | None = Field(None, description="Meta's id of the template")
    name: str = Field(examples=["order_update"])
    language: str = Field(examples=["en_US"])
    category: str = Field(examples=["UTILITY"])
    status: str = Field(description="PENDING, APPROVED, REJECTED, PAUSED, DISABLED ...", examples=["APPROVED"])
    parameter_format: str | None = Field(None, examples=["POSITIONAL"])
    components: list[dict[str, Any]] = Field(default_factory=list, description="Meta's components")
    rejected_reason: str | None = None
    rejection_detail: str | None = None
    quality_score: str | None = None
    previous_category: str | None = None
    synced_at: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class TemplateSyncReport(ApiShape):
    created: int
    updated: int
    removed: int
    wabas: list[str] = Field(description="The WABAs read")
    errors: list[dict[str, Any]] = Field(description="Per WABA that failed: Meta's error in words")


TemplatePage = page_of(TemplateShape, "TemplatePage")
