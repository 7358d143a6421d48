"""What one caller may see of a workspace's conversations (and so of their messages and media).

Admins and supervisors see every conversation. An agent sees the conversations of the numbers an
admin gave them (every number unless the admin chose some: ``User.all_numbers``), of the teams
they belong to, and those assigned to them. An API key acts as its user, or sees everything when
it belongs to no user (an integration). Contacts are the workspace's address book, visible to
everyone as in Chatwoot; what they said to a number an agent cannot see is not.

A conversation outside the scope is answered exactly as one of another workspace: 404, so a
caller cannot even learn that it exists. Workers and system jobs use ``Scope.everything``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from beanie import PydanticObjectId


class _Conversation(Protocol):
    workspace_id: PydanticObjectId
    account_id: PydanticObjectId
    team_id: PydanticObjectId | None
    assignee_id: PydanticObjectId | None


@dataclass(frozen=True)
class Scope:
    workspace_id: PydanticObjectId
    everything: bool = True
    account_ids: frozenset[PydanticObjectId] = field(default_factory=frozenset)
    team_ids: frozenset[PydanticObjectId] = field(default_factory=frozenset)
    user_id: PydanticObjectId | None = None

    @classmethod
    def whole(cls, workspace_id: PydanticObjectId) -> Scope:
        """Everything in the workspace (admins, supervisors, integrations, workers)."""
        return cls(workspace_id)

    def conversation_filter(self) -> dict[str, Any]:
        """A MongoDB filter on conversations (to combine with ``$and``); {} when it sees everything."""
        if self.everything:
            return {}
        branches: list[dict[str, Any]] = []
        if self.account_ids:
            branches.append({"account_id": {"$in": sorted(self.account_ids)}})
        if self.team_ids:
            branches.append({"team_id": {"$in": sorted(self.team_ids)}})
        if self.user_id is not None:
            branches.append({"assignee_id": self.user_id})
        return {"$or": branches} if branches else {"_id": {"$exists": False}}

    def restrict(self, query: dict[str, Any]) -> dict[str, Any]:
        """``query`` (on conversations) narrowed to what this scope sees."""
        extra = self.conversation_filter()
        if not extra:
            return query
        return {**query, "$and": [*query.get("$and", []), extra]}

    def sees(self, conversation: _Conversation) -> bool:
        if conversation.workspace_id != self.workspace_id:
            return False
        if self.everything:
            return True
        return (conversation.account_id in self.account_ids
                or (conversation.team_id is not None and conversation.team_id in self.team_ids)
                or (self.user_id is not None and conversation.assignee_id == self.user_id))

    def sees_number(self, account_id: PydanticObjectId) -> bool:
        """Whether every conversation of this number is visible (the number filter of the inbox)."""
        return self.everything or account_id in self.account_ids


def workspace_of(who: PydanticObjectId | Scope) -> PydanticObjectId:
    return who.workspace_id if isinstance(who, Scope) else who


def scope_of(who: PydanticObjectId | Scope) -> Scope:
    """A scope as given; a bare workspace id (a worker, the system) sees everything."""
    return who if isinstance(who, Scope) else Scope.whole(who)
