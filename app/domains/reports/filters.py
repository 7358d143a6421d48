"""What a report can be narrowed to besides a number: the conversations of one team, one agent (their assignee
now) or one label, one at a time (each is a slice of the rollups: rollups.slices_of)."""

from __future__ import annotations

from dataclasses import dataclass

from beanie import PydanticObjectId

from app.db import parse_object_id
from app.domains.catalog.models import Label
from app.domains.team.models import Team
from app.domains.workspaces.models import User
from app.errors import ValidationFailed


@dataclass(frozen=True)
class Choice:
    value: str
    """The slice: ``team:<id>``, ``agent:<id>``, ``label:<id>``."""
    words: str


async def choices(workspace_id: PydanticObjectId) -> dict[str, list[Choice]]:
    """The teams, agents and labels a report can be narrowed to, by group, each by name."""
    teams = await Team.find(Team.workspace_id == workspace_id).sort("name").to_list()
    people = await User.find({"workspace_id": workspace_id, "active": True}).to_list()
    labels = await Label.find(Label.workspace_id == workspace_id).sort("name").to_list()
    return {
        "Teams": [Choice(f"team:{t.id}", t.name) for t in teams],
        "Agents": sorted((Choice(f"agent:{p.id}", p.name or p.email) for p in people), key=lambda c: c.words.lower()),
        "Labels": [Choice(f"label:{label.id}", label.name) for label in labels],
    }


def _invalid(message: str, field: str, value: str) -> ValidationFailed:
    return ValidationFailed(message, error_code="FILTER_INVALID", details={field: value[:60]}, status_code=400)


async def slice_of(workspace_id: PydanticObjectId, *, team_id: str | None = None, agent_id: str | None = None,
                   label: str | None = None) -> str | None:
    """The slice asked for (None: every conversation); 400 FILTER_INVALID for more than one, or one this workspace
    does not have."""
    given = {name: value for name, value in (("team_id", team_id), ("agent_id", agent_id), ("label", label)) if value}
    if len(given) > 1:
        raise _invalid("Narrow a report to one team, one agent or one label at a time.", "filter", ", ".join(given))
    if not given:
        return None
    (name, value), = given.items()
    oid = parse_object_id(value)
    model = {"team_id": Team, "agent_id": User, "label": Label}[name]
    if oid is None or await model.find_one({"_id": oid, "workspace_id": workspace_id}) is None:
        raise _invalid(f"No such {name.removesuffix('_id')} in this workspace.", name, value)
    return f"{name.removesuffix('_id')}:{oid}"


async def slice_of_choice(workspace_id: PydanticObjectId, value: str | None) -> str | None:
    """The page's one select (``team:<id>`` / ``agent:<id>`` / ``label:<id>``) as a checked slice."""
    if not value:
        return None
    kind, _, raw = value.partition(":")
    field = {"team": "team_id", "agent": "agent_id", "label": "label"}.get(kind)
    if field is None:
        raise _invalid("Narrow a report to a team, an agent or a label.", "only", value)
    return await slice_of(workspace_id, **{field: raw})
