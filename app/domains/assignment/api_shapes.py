"""OpenAPI shapes of the assignment rules and availability answers (``rule_view`` / ``availability_view``)."""

from __future__ import annotations

from pydantic import Field

from app.api_shapes import ApiShape, page_of

REASSIGN_HELP = ("When an agent holding open conversations under this rule goes away or offline (chose it, or no "
                 "inbox tab open for the presence timeout; busy keeps theirs), each of those open conversations "
                 "goes to an online agent by this rule's method and cap, with a line in the thread saying why: "
                 "every open one of theirs, a person's assignment included (pending, snoozed and resolved ones "
                 "stay). Nobody online: they stay with their agent and move when someone comes online.")


class AssignmentRuleShape(ApiShape):
    id: str
    name: str = Field(examples=["Sales number, in turn"])
    enabled: bool
    account_id: str | None = Field(None, description="The number whose conversations it gives out; null: every number")
    team_id: str | None = Field(None, description="Give to this team's members; null: whoever sees the number")
    method: str = Field(examples=["round_robin"], description="round_robin or least_open")
    max_open_per_agent: int | None = Field(None, description="No more for an agent holding this many open; null: no cap")
    reassign_when_offline: bool = Field(False, description=REASSIGN_HELP)
    created_at: str | None = None
    updated_at: str | None = None


AssignmentRulePage = page_of(AssignmentRuleShape, "AssignmentRulePage")


class AvailabilityShape(ApiShape):
    user_id: str
    availability: str = Field(examples=["online"], description="What the user chose: online, busy, away or offline")
    status: str = Field(examples=["online"], description="What others see: the chosen status while an inbox tab "
                                                         "of theirs is open, else offline")
    connected: bool = Field(description="An inbox tab of theirs is open")
    inactive: bool = Field(description="Offline only because no inbox tab is open")
    label: str = Field(examples=["Online"])
    changed_at: str | None = None
