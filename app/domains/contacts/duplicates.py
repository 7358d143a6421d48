"""Likely duplicate contacts of a workspace, with why each pair looks like one person.

Reasons, strongest first:
- ``phone``: the same normalised number (E.164), or one contact's current number is the other's
  previous one (WhatsApp told us the customer changed number);
- ``user_id``: the same WhatsApp user id (BSUID), current or previous;
- ``email``: the same e-mail address (stored lower-cased);
- ``linked``: WhatsApp gave one contact an identifier the other holds, and ingestion linked them
  with a note instead of merging (app/domains/contacts/services.py ``_reconcile``);
- ``name_phone``: the same name (case and accents folded) and numbers ending in the same 7 digits.

One streamed, projected read of the workspace's people (groups are never duplicates), grouped in
memory: at 100,000 contacts that is a few MB of keys, for an admin screen opened now and then.
When three contacts share a key they are paired with the oldest one, not every pair among them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from beanie import PydanticObjectId

from app.domains.contacts.models import Contact
from app.domains.contacts.services import e164_from_wa_id
from app.domains.conversations.search import words

REASONS = {
    "phone": "Same phone number",
    "user_id": "Same WhatsApp user id",
    "email": "Same email",
    "linked": "WhatsApp linked them (a shared identifier)",
    "name_phone": "Same name and a similar number (same last 7 digits)",
}
RANK = {reason: rank for rank, reason in enumerate(REASONS)}
SIMILAR_DIGITS = 7
MAX_LIMIT = 200

_PROJECTION = {"_id": 1, "name": 1, "profile_name": 1, "phone": 1, "wa_id": 1, "user_id": 1, "email": 1,
               "previous_wa_ids": 1, "previous_user_ids": 1, "identity_notes.kind": 1,
               "identity_notes.other_contact_id": 1}


@dataclass
class DuplicatePair:
    """Two contacts that look like one person; ``a`` is the older one (the suggested survivor)."""

    a: Contact
    b: Contact
    reasons: list[str] = field(default_factory=list)

    @property
    def reason_texts(self) -> list[str]:
        return [REASONS[r] for r in self.reasons]


def _phone(raw: dict[str, Any]) -> str | None:
    return raw.get("phone") or e164_from_wa_id(raw.get("wa_id"))


def _keys(raw: dict[str, Any]) -> dict[str, set[str]]:
    """The values this contact is compared by, per reason (current ones, and previous ones that
    point at another contact's current number or user id)."""
    keys: dict[str, set[str]] = defaultdict(set)
    phone = _phone(raw)
    if phone:
        keys["phone"].add(phone)
    for old in raw.get("previous_wa_ids") or ():
        shown = e164_from_wa_id(old)
        if shown:
            keys["phone"].add(shown)
    for user_id in [raw.get("user_id"), *(raw.get("previous_user_ids") or ())]:
        if user_id:
            keys["user_id"].add(user_id)
    if raw.get("email"):
        keys["email"].add(str(raw["email"]).strip().lower())
    name = " ".join(words(raw.get("name") or raw.get("profile_name") or ""))
    digits = re.sub(r"\D", "", phone or "")
    if len(name) >= 2 and len(digits) >= SIMILAR_DIGITS:
        keys["name_phone"].add(f"{name}|{digits[-SIMILAR_DIGITS:]}")
    return keys


async def find_duplicates(workspace_id: PydanticObjectId, limit: int = 50) -> list[DuplicatePair]:
    """Up to ``limit`` likely duplicate pairs, strongest reason first, then newest contacts first."""
    limit = max(1, min(limit, MAX_LIMIT))
    holders: dict[tuple[str, str], list[PydanticObjectId]] = defaultdict(list)
    links: list[tuple[PydanticObjectId, PydanticObjectId]] = []
    seen: set[PydanticObjectId] = set()
    cursor = Contact.get_motor_collection().find(
        {"workspace_id": workspace_id, "kind": {"$ne": "group"}}, projection=_PROJECTION).sort("_id", 1)
    async for raw in cursor:  # oldest first: each key's first holder is its oldest contact
        contact_id = raw["_id"]
        seen.add(contact_id)
        for reason, values in _keys(raw).items():
            for value in values:
                holders[(reason, value)].append(contact_id)
        for note in raw.get("identity_notes") or ():
            if note.get("kind") == "linked" and note.get("other_contact_id"):
                links.append((contact_id, note["other_contact_id"]))
    pairs: dict[tuple[PydanticObjectId, PydanticObjectId], set[str]] = defaultdict(set)
    for (reason, _), ids in holders.items():
        for other in dict.fromkeys(ids[1:]):
            if other != ids[0]:
                pairs[(ids[0], other)].add(reason)
    for one, other in links:
        if other in seen and one != other:
            pairs[(min(one, other), max(one, other))].add("linked")
    ranked = sorted(pairs.items(), key=lambda item: (min(RANK[r] for r in item[1]), -int(str(item[0][1]), 16)))
    chosen = ranked[:limit]
    wanted = {i for pair, _ in chosen for i in pair}
    contacts = {c.id: c for c in await Contact.find(
        {"workspace_id": workspace_id, "_id": {"$in": list(wanted)}}).to_list()}
    return [DuplicatePair(contacts[a], contacts[b], sorted(reasons, key=RANK.__getitem__))
            for (a, b), reasons in chosen if a in contacts and b in contacts]
