"""Contact: a customer of one workspace, found by any of the identifiers WhatsApp gives for them.

Meta names one person by up to three identifiers: the phone number (``wa_id``), the business-scoped
user id (BSUID, ``user_id``: every webhook since spring 2026; a user who adopts a username may write
with no phone number at all) and the parent BSUID shared across a company's portfolios. Each is kept
in ``identities`` ("wa:…", "user:…", "parent:…"), unique per workspace, so any of them finds the
same contact and two contacts can never claim the same one. ``key`` is the identity a contact was
created with (kept unique for contacts stored before ``identities`` existed).

A WhatsApp group the business takes part in is a contact too (``kind == "group"``, key
"group:<group_id>"), so it has its own conversation per number; its messages name the participant
who wrote them (``Message.sender_contact_id``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import pymongo
from beanie import Insert, PydanticObjectId, Replace, Save, before_event
from pydantic import BaseModel, Field

from app.db import WorkspaceDocument, utcnow


def contact_key(wa_id: str | None, user_id: str | None) -> str:
    """The identity a new contact is created with: wa_id when Meta gives one, else the BSUID."""
    if wa_id:
        return f"wa:{wa_id}"
    if user_id:
        return f"user:{user_id}"
    raise ValueError("a contact needs a wa_id or a user_id")


def identities_of(wa_id: str | None = None, user_id: str | None = None,
                  parent_user_id: str | None = None) -> list[str]:
    """Every identity these identifiers name, strongest first (phone, BSUID, parent BSUID)."""
    return [f"{prefix}:{value}" for prefix, value in (("wa", wa_id), ("user", user_id), ("parent", parent_user_id))
            if value]


def identity_of_customer(wa_id_or_user_id: str) -> str:
    """The identity a customer id given by an integrator names: a BSUID ("US.1349…") or a wa_id."""
    from app.whatsapp.payloads import BSUID_PATTERN

    text = wa_id_or_user_id.strip()
    return f"user:{text}" if BSUID_PATTERN.match(text) else f"wa:{text.lstrip('+')}"


def holding(*identities: str) -> dict[str, Any]:
    """The filter on ``identities`` that the unique partial index serves: the planner uses a partial
    index only when the query implies its filter, so the ``$type`` test is repeated here."""
    return {"identities": {"$in": list(identities), "$type": "string"}}


def group_key(group_id: str) -> str:
    return f"group:{group_id}"


class IdentityNote(BaseModel):
    """Something WhatsApp said about who this person is that agents should know: a new number or
    user id, or another contact that carries one of their identifiers (never merged silently)."""

    kind: Literal["number_changed", "user_id_changed", "linked", "conflict"]
    text: str
    other_contact_id: PydanticObjectId | None = None
    at: datetime = Field(default_factory=utcnow)


ConsentSource = Literal["agent", "api", "import", "keyword", "meta", "failed_send", "merge"]
"""Who said a contact may (or may not) get marketing: an agent in the inbox or contacts page, an
integrator's API call, an import column, the customer writing STOP / START, Meta's
``user_preferences`` webhook, a send Meta failed with 131050, or a merge of two contacts."""
CONSENT_KEPT = 50


class ConsentChange(BaseModel):
    """One entry of a contact's marketing consent history (newest last, capped at CONSENT_KEPT)."""

    opted_out: bool
    source: ConsentSource
    at: datetime = Field(default_factory=utcnow)
    by: str | None = None
    """The user id of the agent or API key owner, the import's id, or Meta's event id."""
    note: str = ""


class GroupInfo(BaseModel):
    """A WhatsApp group the number takes part in (a contact of kind "group")."""

    group_id: str
    subject: str = ""
    description: str = ""
    participant_ids: list[PydanticObjectId] = Field(default_factory=list)
    """Contacts of the participants we know (from group webhooks and their messages)."""
    deleted: bool = False


class Contact(WorkspaceDocument):
    key: str
    kind: Literal["person", "group"] = "person"
    identities: list[str] = Field(default_factory=list)
    """"wa:<wa_id>", "user:<BSUID>", "parent:<parent BSUID>": each finds this contact (unique per workspace)."""
    wa_id: str | None = None
    user_id: str | None = None
    """Meta's business-scoped user id (BSUID): sends go to it when no phone number is known."""
    parent_user_id: str | None = None
    username: str | None = None
    """The WhatsApp username the customer chose (shown instead of a number they keep private)."""
    profile_name: str = ""
    """The name the customer set in WhatsApp (updated from every webhook)."""
    name: str = ""
    """The name agents gave the contact; shown instead of profile_name when set."""
    phone: str | None = None
    """E.164 with +, formatted from wa_id with phonenumbers."""
    attributes: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    opted_out_marketing: bool = False
    """The contact's current marketing consent (True: never send them marketing templates)."""
    consent: list[ConsentChange] = Field(default_factory=list)
    """How ``opted_out_marketing`` came to be: every change with its source and time, newest last."""
    email: str | None = None
    """Lower-cased; set by agents, the API or an import (WhatsApp never sends one)."""
    last_inbound_at: datetime | None = None
    """When the customer last wrote to any of the workspace's numbers."""
    previous_wa_ids: list[str] = Field(default_factory=list)
    previous_user_ids: list[str] = Field(default_factory=list)
    identity_notes: list[IdentityNote] = Field(default_factory=list)
    """Newest last, capped: shown in the inbox's details panel."""
    group: GroupInfo | None = None
    updated_at: datetime = Field(default_factory=utcnow)
    search_tokens: list[str] = Field(default_factory=list)
    """Words of name / profile name / username and suffixes of the number, for the inbox search."""

    @before_event(Insert, Replace, Save)
    def _fill_search_tokens(self) -> None:
        from app.domains.conversations.search import contact_tokens_of

        self.search_tokens = contact_tokens_of(self)

    @property
    def display_name(self) -> str:
        if self.group is not None:
            return self.name or self.group.subject or "WhatsApp group"
        return self.name or self.profile_name or self.phone or (f"@{self.username.lstrip('@')}" if self.username
                                                                else None) or self.user_id or self.key

    @property
    def is_group(self) -> bool:
        return self.kind == "group"

    class Settings:
        name = "contacts"
        indexes = [
            pymongo.IndexModel([("workspace_id", 1), ("key", 1)], unique=True),
            # Any identifier finds the contact; no two contacts share one (contacts stored before
            # identities existed have none, and are found by key until they are next written).
            pymongo.IndexModel([("workspace_id", 1), ("identities", 1)], unique=True, name="identities",
                               partialFilterExpression={"identities": {"$type": "string"}}),
            pymongo.IndexModel([("workspace_id", 1), ("updated_at", -1), ("_id", -1)]),
            pymongo.IndexModel([("workspace_id", 1), ("phone", 1)]),
            # The contacts page's sorts (keyset on (field, _id)) and its common filters.
            pymongo.IndexModel([("workspace_id", 1), ("created_at", -1), ("_id", -1)]),
            pymongo.IndexModel([("workspace_id", 1), ("last_inbound_at", -1), ("_id", -1)]),
            pymongo.IndexModel([("workspace_id", 1), ("tags", 1)]),
            pymongo.IndexModel([("workspace_id", 1), ("email", 1)], partialFilterExpression={"email": {"$type": "string"}}),
            # Inbox search (app/domains/conversations/search.py): prefix regexes on these tokens.
            pymongo.IndexModel([("workspace_id", 1), ("search_tokens", 1)]),
        ]
