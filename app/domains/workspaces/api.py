"""JSON API: who am I."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency

from app.api_shapes import documented
from app.auth import requires_login
from app.domains.workspaces.api_shapes import MeShape
from app.domains.workspaces.services import Principal
from app.runtime import Runtime


class MeApi(Controller):
    path = "/api/v1"
    guards = [requires_login]
    tags = ["workspace"]

    @get("/me", summary="The API key's workspace and role", responses=documented(200, MeShape, "Who is calling"))
    async def me(self, principal: NamedDependency[Principal], runtime: NamedDependency[Runtime]) -> dict:
        workspace = await runtime.people.workspace(principal.workspace_id)
        return {
            "workspace": {"id": str(principal.workspace_id), "name": workspace.name if workspace else ""},
            "role": principal.role.value,
            "api_key": {"id": str(principal.api_key.id), "name": principal.api_key.name} if principal.api_key else None,
            "user": {"id": str(principal.user.id), "email": principal.user.email} if principal.user else None,
        }
