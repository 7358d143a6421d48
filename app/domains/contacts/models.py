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


UNNAMED = "\U0010ffff"


def sort_name_of(doc: Any) -> str:
    """The key of the contacts page's "name" order (Contact model or raw document): the name shown,
    case- and accent-folded; contacts known only by a number or user id come after every name
    (UNNAMED, the highest code point, sorts after any text), in the order of their number."""
    from app.domains.conversations.search import words

    get = doc.get if isinstance(doc, dict) else lambda key: getattr(doc, key, None)
    group = get("group")
    subject = (group.get("subject") if isinstance(group, dict) else getattr(group, "subject", None)) if group else None
    for text in (get("name"), subject, get("profile_name"), get("username")):
        folded = " ".join(words(text))
        if folded:
            return folded[:60]
    return UNNAMED + (get("phone") or get("user_id") or get("key") or "")[:60]


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


class ContactNote(BaseModel):
    """A note agents keep about the person (not about one conversation: those are conversation notes)."""

    id: str
    text: str
    by: PydanticObjectId | None = None
    by_name: str = ""
    at: datetime = Field(default_factory=utcnow)


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
    notes: list[ContactNote] = Field(default_factory=list)
    """Agents' notes about the person, newest last (capped; app/domains/contacts/notes.py)."""
    updated_at: datetime = Field(default_factory=utcnow)
    search_tokens: list[str] = Field(default_factory=list)
    """Words of name / profile name / username and suffixes of the number, for the inbox search."""
    sort_name: str | None = None
    """The contacts page's "name" order: see :func:`sort_name_of` (kept with ``search_tokens``)."""

    @before_event(Insert, Replace, Save)
    def _fill_search_tokens(self) -> None:
        from app.domains.conversations.search import contact_tokens_of

        self.search_tokens = contact_tokens_of(self)
        self.sort_name = sort_name_of(self)

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
            pymongo.IndexModel([("workspace_id", 1), ("consent.at", 1)]),  # the reports' opt-ins and opt-outs
            pymongo.IndexModel([("workspace_id", 1), ("last_inbound_at", -1), ("_id", -1)]),
            pymongo.IndexModel([("workspace_id", 1), ("tags", 1)]),
            pymongo.IndexModel([("workspace_id", 1), ("sort_name", 1), ("_id", 1)]),
            pymongo.IndexModel([("workspace_id", 1), ("email", 1)], partialFilterExpression={"email": {"$type": "string"}}),
            # Inbox search (app/domains/conversations/search.py): prefix regexes on these tokens.
            pymongo.IndexModel([("workspace_id", 1), ("search_tokens", 1)]),
        ]


class FoldedConversation(BaseModel):
    """One of the other contact's conversations that a merge moved or folded into the survivor's."""

    conversation_id: PydanticObjectId
    account_id: PydanticObjectId
    into_id: PydanticObjectId
    """The survivor's conversation on the same number (== conversation_id when it was simply moved)."""


class MergePick(BaseModel):
    """Whose value a merged contact keeps for one field ("name", "email", "attributes.plan" ...)."""

    field: str
    keep: Literal["survivor", "other"]


class ContactMerge(WorkspaceDocument):
    """Two contacts made one (app/domains/contacts/merge.py): the record is written first, with a
    snapshot of the other contact and the admin's choices, then each step is applied and noted in
    ``steps``; an unfinished merge is completed by the next call or the sweeper. ``other_id`` is the
    contact that no longer exists: ``merged_into`` (= ``survivor_id``) is where its page now leads."""

    survivor_id: PydanticObjectId
    other_id: PydanticObjectId
    picks: list[MergePick] = Field(default_factory=list)
    """Every field that differed, with the side kept (the admin's choice, else the default)."""
    by: str = ""
    state: Literal["running", "done", "failed"] = "running"
    steps: list[str] = Field(default_factory=list)
    """The steps applied so far (merge.STEPS order)."""
    other: dict[str, Any] = Field(default_factory=dict)
    """The other contact as it was when the merge was planned (it is deleted by the last step); cut
    down to its name once the merge has settled, so no copy of the person's data outlives the merge."""
    absorbed_ids: list[PydanticObjectId] = Field(default_factory=list)
    """Contacts a webhook created for the other's identifiers while they moved: folded in too."""
    conversations: list[FoldedConversation] = Field(default_factory=list)
    messages_moved: int = 0
    locked: list[PydanticObjectId] | None = None
    """Both contacts while running: the unique index keeps a second merge of either out meanwhile."""
    error: str | None = None
    updated_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    settled: bool = False
    """The late pass after ``finished_at`` (a message that was being ingested for the other contact
    during the merge lands on the survivor too) has run."""

    @property
    def merged_into(self) -> PydanticObjectId:
        return self.survivor_id

    class Settings:
        name = "contact_merges"
        indexes = [
            pymongo.IndexModel([("workspace_id", 1), ("locked", 1)], unique=True, name="locked",
                               partialFilterExpression={"locked": {"$type": "objectId"}}),
            pymongo.IndexModel([("workspace_id", 1), ("other_id", 1)]),
            pymongo.IndexModel([("workspace_id", 1), ("survivor_id", 1), ("created_at", -1)]),
            pymongo.IndexModel([("state", 1), ("settled", 1), ("updated_at", 1)]),
        ]


class KeywordSettings(WorkspaceDocument):
    """The workspace's own STOP / START words and the confirmations sent back (contacts/keywords.py)."""

    opt_out_words: list[str] = Field(default_factory=list)
    """Extra whole-message words that opt out of marketing, beside the built-in ones (consent.py)."""
    opt_in_words: list[str] = Field(default_factory=list)
    """Extra whole-message words that opt back in."""
    opt_out_confirmation: str = ""
    """Sent to the customer when a keyword opted them out ("" = none)."""
    opt_in_confirmation: str = ""
    """Sent to the customer when a keyword opted them back in ("" = none)."""
    updated_at: datetime = Field(default_factory=utcnow)

    @property
    def confirms(self) -> bool:
        """Whether a keyword may get a confirmation (the webhook path's cached question)."""
        return bool(self.opt_out_confirmation or self.opt_in_confirmation)

    class Settings:
        name = "keyword_settings"
        indexes = [pymongo.IndexModel([("workspace_id", 1)], unique=True)]
