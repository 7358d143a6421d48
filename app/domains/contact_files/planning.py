"""One batch of an import, planned in memory: which contact each row names, what it changes, the writes.

The importer reads the contacts a batch names in one ``find`` (by identity and email), then each row
in turn is matched and applied to the contacts as the batch sees them, so two rows of one number in
one batch make one contact (the second row is "unchanged", or "updated" when it says something new).
The batch's writes are then one ``bulk_write``: an insert per new contact, an update per changed one,
setting only what changed; a contact no row changes is not written at all. Planned again from what
is stored, a batch that was written already plans no writes: this is how a resumed import changes
nothing twice.

Matching: a row's phone number names the contact holding that number (``wa:`` identity); its user id
the one holding the BSUID; only a row with neither is matched by email. A phone and a user id held by
two different contacts, or a user id whose contact has another number, refuse the row (merging is an
admin's decision: app/domains/contacts/merge.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from beanie import PydanticObjectId
from beanie.odm.utils.dump import get_dict
from pymongo import InsertOne, UpdateOne

from app.db import as_utc
from app.domains.contact_files.rows import RowValues
from app.domains.contacts.editing import MAX_ATTRIBUTES, MAX_TAGS
from app.domains.contacts.models import CONSENT_KEPT, ConsentChange, Contact, holding, sort_name_of
from app.domains.conversations.search import contact_tokens_of

PROJECTION = {f: 1 for f in ("key", "kind", "identities", "wa_id", "phone", "user_id", "parent_user_id", "name",
                             "profile_name", "username", "email", "tags", "attributes", "opted_out_marketing",
                             "consent", "group")}
"""What planning needs of a stored contact (not its notes, identity notes or search tokens)."""
_TOKEN_FIELDS = ("name", "wa_id", "phone")


@dataclass
class Outcome:
    kind: str
    """created, updated, unchanged or skipped"""
    reason: str = ""


@dataclass
class Planned:
    """A contact as the batch sees it: the stored document with the batch's changes applied."""

    doc: dict[str, Any]
    new: bool
    rows: list[int] = field(default_factory=list)
    sets: dict[str, Any] = field(default_factory=dict)
    """Top-level fields the batch changes (attributes and tags apart: a row adds to them, never replaces
    them, so an agent's edit of another attribute or tag meanwhile is kept)."""
    attributes: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    added_identities: list[str] = field(default_factory=list)
    consent: list[dict[str, Any]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.new or bool(self.sets or self.attributes or self.tags or self.added_identities or self.consent)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, datetime) and isinstance(b, datetime):
        return as_utc(a) == as_utc(b)
    return type(a) is type(b) and a == b


def lookups(workspace_id: PydanticObjectId, rows: list[RowValues], *, exact: bool = False) -> list[dict[str, Any]]:
    """The queries that find every contact a batch's rows may name: usually one, by phone number.

    A contact holding a number has it as ``phone`` too (E.164, as the row's), so the batch reads them by
    ``phone`` (the (workspace_id, phone) index); user ids by identity and emails by the email index, each
    only when rows carry them. Separate queries, not one ``$or``: each is served by its own index on
    mongod, and the embedded server answers an ``$in`` of 500 values on a single-valued indexed field in
    a fraction of a second but scans the collection for an ``$or``, or for an ``$in`` on the multikey
    ``identities`` (both measured at 90 s and 70 s for 500 values at 20,000 contacts). A number held
    only in ``identities`` (a merged contact's second number) is not found this way: the insert the plan
    makes for it fails on the unique index, and those rows are planned again with ``exact`` (by identity).
    """
    phones = sorted({r.phone for r in rows if r.phone})
    users = sorted({f"user:{r.user_id}" for r in rows if r.user_id})
    emails = sorted({r.email for r in rows if r.email and not r.wa_id and not r.user_id})
    queries: list[dict[str, Any]] = []
    if exact:
        identities = sorted({f"wa:{r.wa_id}" for r in rows if r.wa_id} | set(users))
        if identities:
            queries.append({"workspace_id": workspace_id, "$or": [holding(*identities), {"key": {"$in": identities}}]})
    elif phones:
        queries.append({"workspace_id": workspace_id, "phone": {"$in": phones}})
    if users and not exact:
        queries.append({"workspace_id": workspace_id, **holding(*users)})
    if emails:
        queries.append({"workspace_id": workspace_id, "email": {"$in": emails, "$type": "string"}})
    return queries


class BatchPlan:
    def __init__(self, workspace_id: PydanticObjectId, *, import_id: str, mode: str, tags: list[str],
                 now: datetime) -> None:
        self.workspace_id = workspace_id
        self.import_id = import_id
        self.mode = mode
        self.tags = tags
        self.now = now
        self.contacts: dict[Any, Planned] = {}
        """By ``_id``, in the order the batch met them."""
        self.by_identity: dict[str, Planned] = {}
        self.by_email: dict[str, Planned] = {}
        self.outcomes: dict[int, Outcome] = {}
        self.values: dict[int, RowValues] = {}
        self._stored_defaults: dict[str, Any] | None = None

    def know(self, docs: list[dict[str, Any]]) -> None:
        """The stored contacts the batch's ``find`` returned."""
        for doc in docs:
            if doc.get("kind") == "group" or doc["_id"] in self.contacts:  # a group, or found by two queries
                continue
            self._index(Planned(doc=doc, new=False))

    def _index(self, planned: Planned) -> None:
        self.contacts.setdefault(planned.doc["_id"], planned)
        doc = planned.doc
        for identity in [*(doc.get("identities") or []), doc.get("key")]:
            if identity:
                self.by_identity.setdefault(identity, planned)
        if doc.get("email"):
            self.by_email.setdefault(doc["email"], planned)

    # ---- one row ------------------------------------------------------------------------------------

    def apply(self, row: int, values: RowValues) -> Outcome:
        outcome = self._apply(row, values)
        self.outcomes[row], self.values[row] = outcome, values
        return outcome

    def _apply(self, row: int, values: RowValues) -> Outcome:
        by_phone = self.by_identity.get(f"wa:{values.wa_id}") if values.wa_id else None
        by_user = self.by_identity.get(f"user:{values.user_id}") if values.user_id else None
        if by_phone is not None and by_user is not None and by_phone is not by_user:
            return Outcome("skipped", f"the number {values.phone} and the user id {values.user_id} belong to two "
                                      "different contacts (merge them first)")
        target = by_phone or by_user
        if target is None and not values.wa_id and not values.user_id and values.email:
            target = self.by_email.get(values.email)
        if target is None:
            if self.mode == "update":
                return Outcome("skipped", f"no contact has {_named(values)} (mode: update existing contacts only)")
            if not values.wa_id:
                return Outcome("skipped", f"no contact has {_named(values)}, and a new contact needs a phone number")
            return self._create(row, values)
        doc = target.doc
        if values.wa_id and f"wa:{values.wa_id}" not in (doc.get("identities") or []) and doc.get("key") != \
                f"wa:{values.wa_id}" and doc.get("wa_id"):
            return Outcome("skipped", f"the contact with {_named(values, phone=False)} has another number "
                                      f"({doc.get('phone') or doc.get('wa_id')})")
        if values.user_id and doc.get("user_id") and doc["user_id"] != values.user_id:
            return Outcome("skipped", f"the contact with {values.phone or values.email} has another user id "
                                      f"({doc['user_id']})")
        return self._update(row, target, values)

    def _create(self, row: int, values: RowValues) -> Outcome:
        identities = [f"wa:{values.wa_id}", *([f"user:{values.user_id}"] if values.user_id else [])]
        tags = _union([], [*values.tags, *self.tags])
        if len(tags) > MAX_TAGS:
            return Outcome("skipped", f"more than {MAX_TAGS} tags")
        doc: dict[str, Any] = {
            "_id": PydanticObjectId(), "workspace_id": self.workspace_id, "key": identities[0], "kind": "person",
            "identities": identities, "wa_id": values.wa_id, "phone": values.phone, "user_id": values.user_id,
            "name": values.name or "", "email": values.email, "tags": tags, "attributes": dict(values.attributes),
            "opted_out_marketing": bool(values.opted_out), "consent": [], "created_at": self.now,
            "updated_at": self.now,
        }
        planned = Planned(doc=doc, new=True, rows=[row])
        if values.opted_out is not None:
            planned.consent.append(self._change(values.opted_out))
            doc["consent"] = list(planned.consent)
        self._index(planned)
        return Outcome("created")

    def _update(self, row: int, target: Planned, values: RowValues) -> Outcome:
        doc = target.doc
        sets: dict[str, Any] = {}
        identities: list[str] = []
        if values.wa_id and not doc.get("wa_id"):
            sets.update(wa_id=values.wa_id, phone=values.phone)
            identities.append(f"wa:{values.wa_id}")
        if values.user_id and not doc.get("user_id"):
            sets["user_id"] = values.user_id
            identities.append(f"user:{values.user_id}")
        if values.name and values.name != doc.get("name"):
            sets["name"] = values.name
        if values.email and values.email != doc.get("email"):
            sets["email"] = values.email
        tags = _union(doc.get("tags") or [], [*values.tags, *self.tags])
        new_tags = tags[len(doc.get("tags") or []):]
        if len(tags) > MAX_TAGS and new_tags:
            return Outcome("skipped", f"the contact would have more than {MAX_TAGS} tags")
        attributes = {k: v for k, v in values.attributes.items()
                      if k not in (doc.get("attributes") or {}) or not _same(doc["attributes"][k], v)}
        if len({*(doc.get("attributes") or {}), *attributes}) > MAX_ATTRIBUTES:
            return Outcome("skipped", f"the contact would have more than {MAX_ATTRIBUTES} attributes")
        consent = None
        if values.opted_out is not None and (values.opted_out != bool(doc.get("opted_out_marketing"))
                                             or (values.explicit and not doc.get("consent"))):
            consent = self._change(values.opted_out)
            sets["opted_out_marketing"] = values.opted_out
        if not sets and consent is None and not identities and not new_tags and not attributes:
            return Outcome("unchanged")
        if self.mode == "create":
            return Outcome("skipped", "already a contact (mode: create only leaves existing contacts as they are)")
        doc.update(sets)
        target.sets.update(sets)
        if new_tags:
            doc["tags"] = tags
            target.tags += new_tags
        if attributes:
            doc["attributes"] = {**(doc.get("attributes") or {}), **attributes}
            target.attributes.update(attributes)
        if identities:
            doc["identities"] = [*(doc.get("identities") or []), *identities]
            target.added_identities += identities
        if consent is not None:
            doc["consent"] = [*(doc.get("consent") or []), consent][-CONSENT_KEPT:]
            target.consent.append(consent)
        target.rows.append(row)
        self._index(target)
        return Outcome("updated")

    def _defaults(self) -> dict[str, Any]:
        """Every field of a new Contact as Beanie would store it (made once per batch: building and encoding
        a Document per row took most of the import's CPU); a row's fields go over it."""
        if self._stored_defaults is None:
            self._stored_defaults = get_dict(Contact(workspace_id=self.workspace_id, key=""), to_db=True)
            self._stored_defaults.pop("_id", None)
        return self._stored_defaults

    def _change(self, opted_out: bool) -> dict[str, Any]:
        return ConsentChange(opted_out=opted_out, source="import", by=self.import_id, at=self.now,
                             note="CSV import").model_dump()

    # ---- the writes -------------------------------------------------------------------------------------

    def operations(self) -> tuple[list[Any], list[Planned]]:
        """The bulk write's operations, and the planned contact each one writes."""
        ops: list[Any] = []
        whose: list[Planned] = []
        for planned in self.contacts.values():
            if not planned.changed:
                continue
            doc = planned.doc
            if planned.new:
                ops.append(InsertOne({**self._defaults(), **doc, "search_tokens": contact_tokens_of(doc),
                                      "sort_name": sort_name_of(doc)}))
            else:
                sets = {**planned.sets, **{f"attributes.{k}": v for k, v in planned.attributes.items()},
                        "updated_at": self.now}
                if any(f in planned.sets for f in _TOKEN_FIELDS):
                    sets["search_tokens"] = contact_tokens_of(doc)
                    sets["sort_name"] = sort_name_of(doc)
                update: dict[str, Any] = {"$set": sets}
                add = {name: {"$each": values} for name, values in (("identities", planned.added_identities),
                                                                    ("tags", planned.tags)) if values}
                if add:
                    update["$addToSet"] = add
                if planned.consent:
                    update["$push"] = {"consent": {"$each": planned.consent, "$slice": -CONSENT_KEPT}}
                ops.append(UpdateOne({"_id": doc["_id"], "workspace_id": self.workspace_id}, update))
            whose.append(planned)
        return ops, whose


def _union(tags: list[str], more: list[str]) -> list[str]:
    out = list(tags)
    seen = {t.lower() for t in out}
    for tag in more:
        if tag.lower() not in seen:
            out.append(tag)
            seen.add(tag.lower())
    return out


def _named(values: RowValues, *, phone: bool = True) -> str:
    if phone and values.phone:
        return f"the number {values.phone}"
    if values.user_id:
        return f"the user id {values.user_id}"
    return f"the email {values.email}"
