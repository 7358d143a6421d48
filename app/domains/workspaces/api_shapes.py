"""OpenAPI shape of ``GET /api/v1/me`` (the handler returns a dict; see app/api_shapes.py)."""

from __future__ import annotations

from pydantic import Field

from app.api_shapes import ApiShape


class WorkspaceRef(ApiShape):
    id: str
    name: str


class ApiKeyRef(ApiShape):
    id: str
    name: str


class UserRef(ApiShape):
    id: str
    email: str


class MeShape(ApiShape):
    workspace: WorkspaceRef
    role: str = Field(examples=["admin"])
    api_key: ApiKeyRef | None = Field(None, description="The key used, when called with one")
    user: UserRef | None = Field(None, description="The signed-in user, when called from a session")
