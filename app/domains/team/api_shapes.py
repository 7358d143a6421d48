"""OpenAPI shapes of the users / teams / API keys answers (the handlers return the dicts of services.py)."""

from __future__ import annotations

from pydantic import Field

from app.api_shapes import ApiShape, page_of


class UserShape(ApiShape):
    id: str
    email: str
    name: str | None = None
    role: str = Field(examples=["agent"], description="admin, supervisor or agent")
    active: bool
    created_at: str | None = None
    deactivated_at: str | None = None
    all_numbers: bool = Field(True, description="An agent sees every number's conversations (else number_ids')")
    number_ids: list[str] = Field(default_factory=list)


class InvitedUser(UserShape):
    invite_url: str | None = Field(None, description="One-time link to set a password (when none was given)")


class ResetLink(ApiShape):
    reset_url: str = Field(description="One-time link (24 h) to choose a new password")


class TeamShape(ApiShape):
    id: str
    name: str
    member_ids: list[str]
    created_at: str | None = None
    updated_at: str | None = None


class ApiKeyShape(ApiShape):
    id: str
    name: str
    role: str
    prefix: str = Field(description="The key's first characters, to recognise it")
    user_id: str | None = None
    created_at: str | None = None
    last_used_at: str | None = None
    revoked_at: str | None = None
    active: bool


class NewApiKey(ApiKeyShape):
    key: str = Field(description="The key itself: shown this once, store it now")


UserPage = page_of(UserShape, "UserPage")
TeamPage = page_of(TeamShape, "TeamPage")
ApiKeyPage = page_of(ApiKeyShape, "ApiKeyPage")
