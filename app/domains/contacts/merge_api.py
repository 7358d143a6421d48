"""JSON API v1: likely duplicate contacts, a merge preview, and merging two contacts (admins only).

The merge is recorded and crash-safe (app/domains/contacts/merge.py): calling it again for the same
pair finishes one that was cut short or returns the finished one. Afterwards the merged contact's id
answers 404, and ``contact.merged`` is sent to event subscriptions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, Parameter
from pydantic import BaseModel, ConfigDict, Field

from app.auth import requires_admin
from app.db import as_utc
from app.domains.contacts.duplicates import MAX_LIMIT, REASONS
from app.domains.contacts.merge import ContactMerger
from app.domains.contacts.merge_preview import ConversationSide
from app.domains.contacts.models import ContactMerge
from app.domains.contacts.schemas import ContactOut, contact_out
from app.domains.workspaces.services import Principal
from app.runtime import Runtime


class DuplicatePairOut(BaseModel):
    a: ContactOut = Field(description="The older contact (the suggested survivor)")
    b: ContactOut
    reasons: list[str] = Field(description=f"Why they look like one person: {', '.join(REASONS)}",
                               examples=[["phone", "name_phone"]])


class DuplicateList(BaseModel):
    data: list[DuplicatePairOut]


class MergePair(BaseModel):
    model_config = ConfigDict(extra="forbid")
    survivor_id: str = Field(description="The contact that stays", max_length=64)
    other_id: str = Field(description="The contact merged into it (deleted afterwards)", max_length=64)


class MergeIn(MergePair):
    choose: dict[str, str] = Field(
        default_factory=dict, max_length=200,
        description='For fields that differ (see the preview): "survivor" or "other". Fields left out keep '
                    "the default: the survivor's value, or the other's when the survivor has none; marketing "
                    "consent defaults to opted out when either is. Tags, identities, notes and consent history "
                    "are always united.",
        examples=[{"name": "other", "attributes.plan": "survivor"}])


class FieldChoiceOut(BaseModel):
    field: str = Field(examples=["email", "attributes.plan"])
    label: str
    survivor: Any = None
    other: Any = None
    default: str = Field(description='"survivor" or "other"')


class ConversationSideOut(BaseModel):
    id: str
    account_id: str
    account_name: str
    status: str
    messages: int
    last_message_at: datetime | None = None
    folds_into: str | None = Field(None, description="The other contact's conversation on a number where the "
                                   "survivor has one: it is folded into that one (messages moved, then deleted)")


class MergePreviewOut(BaseModel):
    survivor: ContactOut
    other: ContactOut
    fields: list[FieldChoiceOut] = Field(description="Fields whose value differs: pick one side each")
    tags: list[str] = Field(description="The merged contact's tags (both contacts' tags)")
    survivor_conversations: list[ConversationSideOut]
    other_conversations: list[ConversationSideOut]


class MergePickOut(BaseModel):
    field: str
    keep: str


class MergeOut(BaseModel):
    id: str
    state: str = Field(description="running, done or failed", examples=["done"])
    survivor_id: str
    other_id: str = Field(description="The merged contact: its id now answers 404")
    picks: list[MergePickOut]
    conversations_moved: int = Field(description="The other's conversations moved to the survivor")
    conversations_folded: int = Field(description="The other's conversations folded into the survivor's "
                                      "conversation on the same number")
    messages_moved: int
    created_at: datetime
    finished_at: datetime | None = None
    contact: ContactOut | None = Field(None, description="The merged contact as it is now")


def _side(side: ConversationSide) -> ConversationSideOut:
    c = side.conversation
    return ConversationSideOut(id=str(c.id), account_id=str(c.account_id), account_name=side.account_name,
                               status=c.status.value, messages=side.messages,
                               last_message_at=as_utc(c.last_message_at) if c.last_message_at else None,
                               folds_into=str(side.folds_into) if side.folds_into else None)


def merge_out(merge: ContactMerge, contact: Any = None) -> MergeOut:
    folded = sum(1 for c in merge.conversations if c.into_id != c.conversation_id)
    return MergeOut(id=str(merge.id), state=merge.state, survivor_id=str(merge.survivor_id),
                    other_id=str(merge.other_id), picks=[MergePickOut(field=p.field, keep=p.keep) for p in merge.picks],
                    conversations_moved=len(merge.conversations) - folded, conversations_folded=folded,
                    messages_moved=merge.messages_moved, created_at=as_utc(merge.created_at),
                    finished_at=as_utc(merge.finished_at) if merge.finished_at else None,
                    contact=contact_out(contact) if contact is not None else None)


def merger(runtime: Runtime) -> ContactMerger:
    return ContactMerger(runtime.live, runtime.integrations)


class ContactMergeApi(Controller):
    path = "/api/v1/contacts"
    guards = [requires_admin]
    tags = ["contacts"]

    @get("/duplicates", summary="Likely duplicate contacts (same number, user id, email, or name and similar "
                                "number; or linked by WhatsApp), strongest first")
    async def list_duplicates(self, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal],
                              limit: int = Parameter(default=50, ge=1, le=MAX_LIMIT)) -> DuplicateList:
        pairs = await merger(runtime).duplicates(principal.workspace_id, limit)
        return DuplicateList(data=[DuplicatePairOut(a=contact_out(p.a), b=contact_out(p.b), reasons=p.reasons)
                                   for p in pairs])

    @post("/merge/preview", summary="What merging two contacts would do: the fields that differ, and each "
                                    "one's conversations", status_code=200)
    async def preview_merge(self, data: JSONBody[MergePair], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> MergePreviewOut:
        preview = await merger(runtime).preview(principal.workspace_id, data.survivor_id, data.other_id)
        return MergePreviewOut(
            survivor=contact_out(preview.survivor), other=contact_out(preview.other),
            fields=[FieldChoiceOut(field=f.field, label=f.label, survivor=f.survivor, other=f.other, default=f.default)
                    for f in preview.fields],
            tags=preview.tags, survivor_conversations=[_side(s) for s in preview.survivor_conversations],
            other_conversations=[_side(s) for s in preview.other_conversations])

    @post("/merge", summary="Merge two contacts: conversations, messages, tags, consent and the picked fields "
                            "move to the survivor; the other is deleted (recorded, never loses a message)",
          status_code=200)
    async def merge_contacts(self, data: JSONBody[MergeIn], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> MergeOut:
        by = str(principal.user_id or (principal.api_key.id if principal.api_key else ""))
        merge, survivor = await merger(runtime).merge_and_show(principal.workspace_id, data.survivor_id,
                                                               data.other_id, choose=data.choose, by=by)
        return merge_out(merge, survivor)
