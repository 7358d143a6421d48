"""The admin area's vocabularies as the inbox uses them: labels, teams, canned responses, attributes.

Imports are late and tolerant so the inbox keeps working (without those fields) in an
installation or a test that does not load the admin area.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from beanie import PydanticObjectId


@dataclass(frozen=True)
class LabelInfo:
    id: str
    name: str
    colour: str


async def labels_of(workspace_id: PydanticObjectId) -> dict[str, LabelInfo]:
    """Label id (as stored in Conversation.labels) -> its name and colour."""
    try:
        from app.domains.catalog.models import Label
    except ImportError:
        return {}
    docs = await Label.find({"workspace_id": workspace_id}).to_list()
    return {str(d.id): LabelInfo(str(d.id), d.name, d.colour) for d in sorted(docs, key=lambda d: d.name.lower())}


async def teams_of(workspace_id: PydanticObjectId) -> list[Any]:
    try:
        from app.domains.team.models import Team
    except ImportError:
        return []
    return sorted(await Team.find({"workspace_id": workspace_id}).to_list(), key=lambda t: t.name.lower())


async def attribute_keys(workspace_id: PydanticObjectId) -> list[Any]:
    try:
        from app.domains.catalog.models import ContactAttribute
    except ImportError:
        return []
    return await ContactAttribute.find({"workspace_id": workspace_id}).to_list()


async def canned_responses(workspace_id: PydanticObjectId, q: str, variables: dict[str, Any]) -> list[dict[str, str]]:
    """Canned responses whose shortcut or text contains ``q``, variables filled for this contact."""
    try:
        from app.domains.catalog.models import CannedResponse
        from app.domains.catalog.services import fill_variables
    except ImportError:
        return []
    docs = await CannedResponse.find({"workspace_id": workspace_id}).sort("shortcut").limit(500).to_list()
    q = q.lower().lstrip("/")
    out = []
    for doc in docs:
        if not q or q in doc.shortcut.lower() or q in doc.text.lower():
            out.append({"shortcut": doc.shortcut, "text": fill_variables(doc.text, variables)})
    return out[:20]
