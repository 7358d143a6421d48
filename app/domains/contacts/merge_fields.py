"""What merging two contacts does to the survivor's fields: which fields differ, whose value each
keeps (the admin's pick, else a default), and the one update that gives the survivor the other's data.

- Fields picked per field: name, WhatsApp name, username, email, the number messages go to, the
  WhatsApp user id, marketing consent, and each attribute. Default: the survivor's value, unless it
  has none (then the other's); consent defaults to opted out when either is (the safe side).
- Always united: identities (so the other's number, user id and parent id find the survivor),
  tags, previous numbers and user ids, agents' notes, identity notes (minus the "linked" note
  between the two, now one), and the consent history in time order, ending with a "merge" entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from typing import Any, Literal

from app.db import utcnow
from app.domains.contacts.models import CONSENT_KEPT, ConsentChange, Contact, ContactMerge, MergePick
from app.errors import ValidationFailed

Side = Literal["survivor", "other"]

FIELDS = {
    "name": "Name",
    "profile_name": "WhatsApp name",
    "username": "Username",
    "email": "Email",
    "phone": "Phone number (messages go to it)",
    "user_id": "WhatsApp user id",
    "opted_out_marketing": "Marketing messages",
}
ATTRIBUTE = "attributes."
NOTES_KEPT = 200
IDENTITY_NOTES_KEPT = 20


@dataclass
class FieldChoice:
    """One field that differs between the two contacts, as the merge page and the API show it."""

    field: str
    label: str
    survivor: Any
    other: Any
    default: Side

    def text(self, value: Any) -> str:
        """A value as the merge page shows it."""
        if self.field == "opted_out_marketing":
            return "Opted out" if value else "Opted in"
        if value is None or value == "":
            return "—"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, datetime):
            return value.date().isoformat() if value.time() == time(0) else value.isoformat(timespec="minutes")
        return str(value)


def value_of(contact: Contact, field: str) -> Any:
    if field.startswith(ATTRIBUTE):
        return contact.attributes.get(field[len(ATTRIBUTE):])
    if field == "phone":
        return contact.phone or (f"+{contact.wa_id}" if contact.wa_id else None)
    return getattr(contact, field)


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def differing_fields(survivor: Contact, other: Contact) -> list[FieldChoice]:
    """The fields where keeping the other's value would change the survivor (the other has a value,
    and a different one)."""
    names = list(FIELDS) + [ATTRIBUTE + k for k in dict.fromkeys([*survivor.attributes, *other.attributes])]
    found = []
    for field in names:
        mine, theirs = value_of(survivor, field), value_of(other, field)
        if field == "opted_out_marketing":
            if mine != theirs:
                found.append(FieldChoice(field, FIELDS[field], mine, theirs, "survivor" if mine else "other"))
            continue
        if _empty(theirs) or mine == theirs:
            continue
        label = FIELDS.get(field) or f"Attribute {field[len(ATTRIBUTE):]}"
        found.append(FieldChoice(field, label, mine, theirs, "other" if _empty(mine) else "survivor"))
    return found


def complete_picks(survivor: Contact, other: Contact, choose: dict[str, str] | None) -> list[MergePick]:
    """Every differing field with the side kept: ``choose`` where given, else the default. Unknown
    field names and sides other than "survivor" / "other" are refused (422, CHOOSE_INVALID); a known
    field that does not differ is ignored (its value is the same on both)."""
    choose = dict(choose or {})
    known = set(FIELDS) | {ATTRIBUTE + k for k in [*survivor.attributes, *other.attributes]}
    bad = {k: "not a field of these contacts" for k in choose if k not in known}
    bad |= {k: 'keep "survivor" or "other"' for k, v in choose.items() if k in known and v not in ("survivor", "other")}
    if bad:
        raise ValidationFailed("Choose a side for fields of these contacts only.", error_code="CHOOSE_INVALID",
                               details=bad)
    return [MergePick(field=f.field, keep=choose.get(f.field, f.default))  # type: ignore[arg-type]
            for f in differing_fields(survivor, other)]


def survivor_update(merge: ContactMerge, survivor: Contact, other: Contact) -> dict[str, Any]:
    """The one update that merges ``other`` (the planned snapshot) into ``survivor`` (as it is now).
    Applied once: its consent entry carries the merge's id, and the update is conditioned on it."""
    now = utcnow()
    sets: dict[str, Any] = {"updated_at": now}
    unsets: dict[str, str] = {}
    keep_other = {p.field for p in merge.picks if p.keep == "other"}
    for field in keep_other:
        if field.startswith(ATTRIBUTE):
            key = field[len(ATTRIBUTE):]
            if other.attributes.get(key) is None:
                unsets[field] = ""
            else:
                sets[field] = other.attributes[key]
        elif field == "phone":
            sets["wa_id"], sets["phone"] = other.wa_id, other.phone
        elif field == "user_id":
            sets["user_id"] = other.user_id
            if other.parent_user_id:
                sets["parent_user_id"] = other.parent_user_id
        elif field != "opted_out_marketing":
            sets[field] = getattr(other, field)
    opted_out = other.opted_out_marketing if "opted_out_marketing" in keep_other else survivor.opted_out_marketing
    sets["opted_out_marketing"] = opted_out
    if not survivor.parent_user_id and other.parent_user_id:
        sets["parent_user_id"] = other.parent_user_id
    entry = ConsentChange(opted_out=opted_out, source="merge", by=str(merge.id), at=now,
                          note=f"Merged with {other.display_name}"[:200])
    history = [c.model_dump() for c in other.consent] + [entry.model_dump()]
    identity_notes = [n.model_dump() for n in other.identity_notes
                      if not (n.kind == "linked" and n.other_contact_id == survivor.id)]
    update: dict[str, Any] = {
        "$set": sets,
        "$addToSet": {"identities": {"$each": list(merge.other.get("identities") or [])},
                      "tags": {"$each": list(other.tags)},
                      "previous_wa_ids": {"$each": list(other.previous_wa_ids)},
                      "previous_user_ids": {"$each": list(other.previous_user_ids)}},
        "$push": {"consent": {"$each": history, "$sort": {"at": 1}, "$slice": -CONSENT_KEPT}},
    }
    if other.notes:
        update["$push"]["notes"] = {"$each": [n.model_dump() for n in other.notes], "$sort": {"at": 1},
                                    "$slice": -NOTES_KEPT}
    if identity_notes:
        update["$push"]["identity_notes"] = {"$each": identity_notes, "$sort": {"at": 1}, "$slice": -IDENTITY_NOTES_KEPT}
    if unsets:
        update["$unset"] = unsets
    if other.last_inbound_at is not None:  # the person last wrote when either of them did
        update["$max"] = {"last_inbound_at": other.last_inbound_at}
    update["$min"] = {"created_at": other.created_at}  # and has been a contact since the older one
    return update


def identities_of_snapshot(contact: Contact) -> list[str]:
    """The identities a contact holds (contacts stored before ``identities`` existed hold their key)."""
    return list(contact.identities) or ([contact.key] if not contact.key.startswith(("group:", "merged:")) else [])
