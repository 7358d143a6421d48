"""A workspace for the contacts list tests: typed attribute definitions, three people who differ in
every field the filters know, a labelled conversation, a WhatsApp group, admin and agent API keys."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from beanie import PydanticObjectId

from app.domains.catalog.models import ContactAttribute, Label
from app.domains.contacts.models import Contact
from app.domains.contacts.services import ContactService
from app.domains.conversations.models import Conversation
from app.domains.workspaces.models import Role

_n = itertools.count(1)
BOB_USER_ID = "US.13491208655302741918"


@dataclass
class People:
    workspace_id: PydanticObjectId
    admin_key: str
    agent_key: str
    ids: dict[str, str]
    """Name ("Ada", "Bob", "Cleo", "Group") -> contact id."""
    label_id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}

    @property
    def agent_auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.agent_key}"}

    def names(self, answer: dict[str, Any]) -> set[str]:
        """The names of the people a list answer holds."""
        by_id = {v: k for k, v in self.ids.items()}
        return {by_id.get(c["id"], c["display_name"]) for c in answer["data"]}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def build_people(client: Any) -> People:
    runtime = client.app.state.runtime
    n = next(_n)
    workspace, admin = await runtime.people.create_workspace("Shop", f"people-owner{n}@example.com", "owner password")
    _, admin_key = await runtime.people.create_api_key(workspace.id, "tests", Role.ADMIN, admin.id)
    agent = await runtime.people.create_user(workspace.id, f"people-agent{n}@example.com", "agent password",
                                             Role.AGENT, "Ann")
    _, agent_key = await runtime.people.create_api_key(workspace.id, "agent", Role.AGENT, agent.id)
    ws = workspace.id
    for key, name, type_, options in (("plan", "Plan", "list", ["Basic", "Pro"]), ("orders", "Orders", "number", []),
                                      ("renewal", "Renewal", "date", []), ("last_order", "Last order", "datetime", []),
                                      ("newsletter", "Newsletter", "boolean", []), ("city", "City", "text", [])):
        await ContactAttribute(workspace_id=ws, key=key, name=name, type=type_, options=options).insert()
    auth = {"Authorization": f"Bearer {admin_key}"}
    ada = await client.post("/api/v1/contacts", headers=auth, json={
        "phone": "+44 20 7946 0958", "name": "Ada Lovelace", "email": "Ada@Example.com", "tags": ["vip", "beta"],
        "attributes": {"plan": "pro", "orders": 12, "renewal": "2025-03-01", "last_order": "2025-03-01T14:30:00Z",
                       "newsletter": True, "city": "London"}})
    assert ada.status_code == 201, ada.text
    bob, _ = await ContactService().upsert(ws, wa_id="15551230001", user_id=BOB_USER_ID, username="bobm",
                                           profile_name="Bob Marley", wrote_at=at("2025-01-10T09:00:00"))
    edited = await client.patch(f"/api/v1/contacts/{bob.id}", headers=auth, json={
        "tags": ["wholesale"], "opted_out_marketing": True,
        "attributes": {"plan": "Basic", "orders": "2", "renewal": "2024-12-31", "newsletter": "no",
                       "last_order": "2024-12-31T23:59:59+00:00"}})
    assert edited.status_code == 200, edited.text
    cleo = await client.post("/api/v1/contacts", headers=auth, json={"phone": "+33 6 12 34 56 78", "name": "Cléo"})
    assert cleo.status_code == 201, cleo.text
    group = await ContactService().group(ws, "120363025555555555", subject="Ada's team")
    await Contact.get_motor_collection().update_one({"_id": group.id}, {"$set": {"tags": ["vip"]}})
    ids = {"Ada": ada.json()["id"], "Bob": str(bob.id), "Cleo": cleo.json()["id"], "Group": str(group.id)}
    for name, created in (("Ada", "2024-06-01T10:00:00"), ("Bob", "2024-07-15T10:00:00"),
                          ("Cleo", "2024-08-20T10:00:00"), ("Group", "2024-06-01T10:00:00")):
        await Contact.get_motor_collection().update_one({"_id": PydanticObjectId(ids[name])},
                                                        {"$set": {"created_at": at(created)}})
    label = await Label(workspace_id=ws, name="Complaint").insert()
    await Conversation(workspace_id=ws, account_id=PydanticObjectId(), contact_id=PydanticObjectId(ids["Cleo"]),
                       labels=[str(label.id)]).insert()
    await Conversation(workspace_id=ws, account_id=PydanticObjectId(), contact_id=PydanticObjectId(ids["Ada"])).insert()
    return People(ws, admin_key, agent_key, ids, str(label.id))


def as_filter(*conditions: tuple[str, str, Any], match: str = "all") -> str:
    return json.dumps({"match": match, "conditions": [{"field": f, "op": o, "value": v} for f, o, v in conditions]})
