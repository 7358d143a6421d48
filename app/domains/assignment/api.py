"""JSON API v1: auto-assignment rules (admins) and the caller's own availability."""

from __future__ import annotations

from typing import Any

from litestar import Controller, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from pydantic import BaseModel, ConfigDict, Field

from app.api_shapes import Flag, documented
from app.auth import requires_admin, requires_login
from app.domains.assignment.api_shapes import (
    REASSIGN_HELP,
    AssignmentRulePage,
    AssignmentRuleShape,
    AvailabilityShape,
)
from app.domains.assignment.presence import availability_view
from app.domains.assignment.services import rule_view
from app.domains.workspaces.services import Principal
from app.errors import Forbidden, ValidationFailed
from app.runtime import Runtime


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    enabled: Flag = True
    account_id: str | None = Field(None, description="A number's id; null or left out: every number")
    team_id: str | None = Field(None, description="A team's id; null or left out: whoever sees the number")
    method: str = Field("round_robin", description="round_robin or least_open")
    max_open_per_agent: int | None = Field(None, description="1 to 1000; null: no cap")
    reassign_when_offline: Flag = Field(False, description=REASSIGN_HELP)


class RulePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    enabled: Flag | None = None
    account_id: str | None = None
    team_id: str | None = None
    method: str | None = None
    max_open_per_agent: int | None = None
    reassign_when_offline: Flag | None = Field(None, description=REASSIGN_HELP)


class AvailabilityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    availability: str = Field(description="online, busy, away or offline")


def _changes(data: RulePatch) -> dict[str, Any]:
    fields = data.model_dump(exclude_unset=True)
    if not fields:
        raise ValidationFailed("Nothing to change.", details={"body": "Send at least one field."})
    for name in ("name", "enabled", "method", "reassign_when_offline"):
        if name in fields and fields[name] is None:
            raise ValidationFailed("Check the highlighted fields.", details={name: "May not be null."})
    return fields


class AssignmentRulesApi(Controller):
    path = "/api/v1/assignment-rules"
    guards = [requires_admin]
    tags = ["settings"]

    @get("/", summary="Auto-assignment rules", responses=documented(200, AssignmentRulePage, "The rules"))
    async def list_rules(self, principal: NamedDependency[Principal], runtime: NamedDependency[Runtime]) -> dict[str, Any]:
        rules = await runtime.auto_assigner.rules.list(principal.workspace_id)
        return {"data": [rule_view(r) for r in rules], "next_cursor": None}

    @post("/", summary="Create an auto-assignment rule", status_code=201,
          responses=documented(201, AssignmentRuleShape, "The rule"))
    async def create_rule(self, data: JSONBody[RuleIn], principal: NamedDependency[Principal], runtime: NamedDependency[Runtime]) -> dict[str, Any]:
        return rule_view(await runtime.auto_assigner.rules.save(principal.workspace_id, data.model_dump()))

    @get("/{rule_id:str}", summary="One auto-assignment rule", responses=documented(200, AssignmentRuleShape, "It"))
    async def get_rule(self, rule_id: FromPath[str], principal: NamedDependency[Principal], runtime: NamedDependency[Runtime]) -> dict[str, Any]:
        return rule_view(await runtime.auto_assigner.rules.get(principal.workspace_id, rule_id))

    @patch("/{rule_id:str}", summary="Change an auto-assignment rule",
           responses=documented(200, AssignmentRuleShape, "The rule"))
    async def update_rule(self, rule_id: FromPath[str], data: JSONBody[RulePatch], principal: NamedDependency[Principal],
                          runtime: NamedDependency[Runtime]) -> dict[str, Any]:
        rules = runtime.auto_assigner.rules
        rule = await rules.get(principal.workspace_id, rule_id)
        return rule_view(await rules.save(principal.workspace_id, _changes(data), rule))

    @delete("/{rule_id:str}", summary="Delete an auto-assignment rule", status_code=204)
    async def delete_rule(self, rule_id: FromPath[str], principal: NamedDependency[Principal], runtime: NamedDependency[Runtime]) -> None:
        rules = runtime.auto_assigner.rules
        await rules.delete(await rules.get(principal.workspace_id, rule_id))


def _own_user(principal: Principal) -> Any:
    if principal.user_id is None:
        raise Forbidden("This API key acts for no user: availability belongs to a user.", error_code="NO_USER")
    return principal.user_id


class AvailabilityApi(Controller):
    path = "/api/v1/me/availability"
    guards = [requires_login]
    tags = ["workspace"]

    @get("/", summary="Your availability", responses=documented(200, AvailabilityShape, "Your availability"))
    async def show(self, principal: NamedDependency[Principal], runtime: NamedDependency[Runtime]) -> dict[str, Any]:
        user, status = await runtime.presence.current(principal.workspace_id, _own_user(principal))
        return availability_view(user, status)

    @put("/", summary="Set your availability (online, busy, away, offline)",
         responses=documented(200, AvailabilityShape, "Your availability"))
    async def set_availability(self, data: JSONBody[AvailabilityIn], principal: NamedDependency[Principal], runtime: NamedDependency[Runtime]) -> dict[str, Any]:
        user = await runtime.presence.choose(principal.workspace_id, _own_user(principal), data.availability)
        return availability_view(user, await runtime.presence.status_of(user))
