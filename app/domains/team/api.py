"""JSON API v1: users, teams and API keys of the workspace (admins only)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from pydantic import BaseModel, ConfigDict, Field

from app.api_shapes import Flag, documented
from app.auth import requires_admin
from app.domains.team.api_shapes import (
    ApiKeyPage,
    InvitedUser,
    NewApiKey,
    ResetLink,
    TeamPage,
    TeamShape,
    UserPage,
    UserShape,
)
from app.domains.team.services import TeamAdmin, api_key_view, team_view, user_view
from app.domains.workspaces.services import Principal
from app.errors import ValidationFailed
from app.runtime import Runtime


def team_admin(runtime: Runtime) -> TeamAdmin:
    return TeamAdmin(runtime.people, runtime.settings.public_url)


class UserIn(BaseModel):
    """Without a password the user is invited: the answer holds a one-time ``invite_url`` (7 days)."""

    model_config = ConfigDict(extra="forbid")
    email: str = ""
    name: str = ""
    role: str = "agent"
    password: str | None = None


class UserPatch(BaseModel):
    """``active: false`` signs the user out everywhere and stops their API keys at once. An agent sees
    every number's conversations unless ``all_numbers`` is false: then those of ``number_ids``, of
    their teams, and the ones assigned to them. Roles: admin, supervisor (every conversation, no admin
    screens), agent."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    role: str | None = None
    active: Flag | None = None
    password: str | None = None
    all_numbers: Flag | None = None
    number_ids: list[str] | None = None


class TeamIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = ""
    member_ids: list[str] = Field(default_factory=list)


class TeamPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    member_ids: list[str] | None = None


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = ""
    role: str = "agent"


class UsersApi(Controller):
    path = "/api/v1/users"
    guards = [requires_admin]
    tags = ["team"]

    @get("/", summary="Users of the workspace", responses=documented(200, UserPage, "The users"))
    async def list_users(self, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> dict[str, Any]:
        users = await team_admin(runtime).list_users(principal.workspace_id)
        return {"data": [user_view(u) for u in users], "next_cursor": None}

    @post("/", summary="Create a user, or invite one (no password: a one-time link)", status_code=201, responses=documented(201, InvitedUser, "The user"))
    async def create_user(self, data: JSONBody[UserIn], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> dict[str, Any]:
        user, link = await team_admin(runtime).add_user(principal.workspace_id, data.email, data.name, data.role,
                                                        data.password)
        return {**user_view(user), "invite_url": link}

    @get("/{user_id:str}", summary="One user", responses=documented(200, UserShape, "The user"))
    async def get_user(self, user_id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> dict[str, Any]:
        return user_view(await team_admin(runtime).get_user(principal.workspace_id, user_id))

    @patch("/{user_id:str}", summary="Rename, change role, deactivate / reactivate, set a password", responses=documented(200, UserShape, "The user"))
    async def update_user(self, user_id: FromPath[str], data: JSONBody[UserPatch], runtime: NamedDependency[Runtime],
                          principal: NamedDependency[Principal]) -> dict[str, Any]:
        admin = team_admin(runtime)
        user = await admin.get_user(principal.workspace_id, user_id)
        if not data.model_fields_set:
            raise ValidationFailed("Nothing to change.", details={"body": "Send at least one field."})
        return user_view(await admin.update_user(principal, user, **data.model_dump(exclude_unset=True)))

    @post("/{user_id:str}/reset-password", summary="A one-time link (24 h) to choose a new password",
          status_code=200, responses=documented(200, ResetLink, "The link"))
    async def reset_password(self, user_id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> dict[str, Any]:
        admin = team_admin(runtime)
        return {"reset_url": await admin.reset_link(await admin.get_user(principal.workspace_id, user_id))}


class TeamsApi(Controller):
    path = "/api/v1/teams"
    guards = [requires_admin]
    tags = ["team"]

    @get("/", summary="Teams (groups of agents for assignment)", responses=documented(200, TeamPage, "The teams"))
    async def list_teams(self, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> dict[str, Any]:
        return {"data": [team_view(t) for t in await team_admin(runtime).list_teams(principal.workspace_id)],
                "next_cursor": None}

    @post("/", summary="Create a team", status_code=201, responses=documented(201, TeamShape, "The team"))
    async def create_team(self, data: JSONBody[TeamIn], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> dict[str, Any]:
        return team_view(await team_admin(runtime).save_team(principal.workspace_id, data.name, data.member_ids))

    @patch("/{team_id:str}", summary="Rename a team or change its members", responses=documented(200, TeamShape, "The team"))
    async def update_team(self, team_id: FromPath[str], data: JSONBody[TeamPatch], runtime: NamedDependency[Runtime],
                          principal: NamedDependency[Principal]) -> dict[str, Any]:
        admin = team_admin(runtime)
        team = await admin.get_team(principal.workspace_id, team_id)
        members = data.member_ids if data.member_ids is not None else [str(m) for m in team.member_ids]
        return team_view(await admin.save_team(principal.workspace_id, data.name if data.name is not None
                                               else team.name, members, team))

    @delete("/{team_id:str}", summary="Delete a team", status_code=204)
    async def delete_team(self, team_id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> None:
        admin = team_admin(runtime)
        await admin.delete_team(await admin.get_team(principal.workspace_id, team_id))


class ApiKeysApi(Controller):
    path = "/api/v1/api-keys"
    guards = [requires_admin]
    tags = ["team"]

    @get("/", summary="API keys with their last use (never the keys themselves)", responses=documented(200, ApiKeyPage, "The keys"))
    async def list_keys(self, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> dict[str, Any]:
        keys = await team_admin(runtime).list_api_keys(principal.workspace_id)
        return {"data": [api_key_view(k) for k in keys], "next_cursor": None}

    @post("/", summary="Create a key; the answer's `key` is shown this once", status_code=201, responses=documented(201, NewApiKey, "The key"))
    async def create_key(self, data: JSONBody[ApiKeyIn], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> dict[str, Any]:
        record, plaintext = await team_admin(runtime).create_api_key(principal, data.name, data.role)
        return {**api_key_view(record), "key": plaintext}

    @delete("/{key_id:str}", summary="Revoke a key (it stops working at once)", status_code=204)
    async def revoke_key(self, key_id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> None:
        await team_admin(runtime).revoke_api_key(principal.workspace_id, key_id)
