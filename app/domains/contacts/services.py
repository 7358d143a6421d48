"""Contacts: found or created from webhooks and API calls by any of their identifiers (phone, BSUID,
parent BSUID), phone formatted; identity changes applied and noted, never merged silently."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import phonenumbers
from beanie import PydanticObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from app.db import utcnow
from app.domains.contacts.models import (
    CONSENT_KEPT,
    ConsentChange,
    ConsentSource,
    Contact,
    GroupInfo,
    IdentityNote,
    contact_key,
    group_key,
    holding,
    identities_of,
    sort_name_of,
)
from app.domains.conversations.search import contact_tokens_of
from app.logging import get_logger

log = get_logger(__name__)


def e164_from_wa_id(wa_id: str | None) -> str | None:
    """wa_id is the number's digits with country code; None when it is not a valid phone number."""
    if not wa_id or not wa_id.isdigit():
        return None
    try:
        parsed = phonenumbers.parse("+" + wa_id, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


IDENTITY_NOTES_KEPT = 20


def _note(kind: str, text: str, other: PydanticObjectId | None = None) -> dict[str, Any]:
    return IdentityNote(kind=kind, text=text, other_contact_id=other).model_dump()  # type: ignore[arg-type]


def _noted(contact: Contact, kind: str, other: PydanticObjectId | None) -> bool:
    return any(n.kind == kind and n.other_contact_id == other for n in contact.identity_notes)


def _primary(identities: list[str]) -> str:
    """The contact's ``key``: its phone identity, else its BSUID (``key`` is unique too, so it must
    always be one of the contact's current identities)."""
    return next((i for prefix in ("wa:", "user:", "group:") for i in identities if i.startswith(prefix)),
                identities[0])


def _shown(wa_id: str | None) -> str:
    return e164_from_wa_id(wa_id) or f"+{wa_id}"


def consent_update(opted_out: bool, source: ConsentSource, *, by: str | None = None, note: str = "",
                   at: datetime | None = None) -> dict[str, Any]:
    """The update that sets a contact's marketing consent and records the change in its history."""
    now = utcnow()
    change = ConsentChange(opted_out=bool(opted_out), source=source, by=by, note=note[:200], at=at or now)
    # updated_at is when it was written, whatever ``at`` says (a STOP's time is its message's, which may come
    # late): what reads "contacts changed since" (the reports, date triggers) must see it.
    return {"$set": {"opted_out_marketing": bool(opted_out), "updated_at": now},
            "$push": {"consent": {"$each": [change.model_dump()], "$slice": -CONSENT_KEPT}}}


class ContactService:
    async def upsert(self, workspace_id: PydanticObjectId, *, wa_id: str | None = None, user_id: str | None = None,
                     parent_user_id: str | None = None, profile_name: str | None = None,
                     username: str | None = None, wrote_at: datetime | None = None) -> tuple[Contact, bool]:
        """The contact any of these identifiers names, created if none does; returns (contact, created).

        The usual case is one operation: the contact that holds one of the identifiers and agrees with
        the others gets the new ones and the profile (and ``wrote_at``, when the customer wrote, moves
        ``last_inbound_at`` forward in the same update). A new person is one insert; the unique index on
        ``identities`` makes two workers ingesting the same new customer end with one contact. When
        stored contacts disagree with what WhatsApp says (this BSUID with another number, or the phone
        on one contact and the BSUID on another), :meth:`_reconcile` links and notes it, never merging
        two contacts silently.
        """
        ids = identities_of(wa_id, user_id, parent_user_id)
        if not ids:
            raise ValueError("a contact needs a wa_id or a user_id")
        now = utcnow()
        fields: dict[str, Any] = {"updated_at": now}
        if profile_name:
            fields["profile_name"] = profile_name
        if username:
            fields["username"] = username
        if wa_id:
            fields["wa_id"], fields["phone"] = wa_id, e164_from_wa_id(wa_id)
        if user_id:
            fields["user_id"] = user_id
        if parent_user_id:
            fields["parent_user_id"] = parent_user_id
        collection = Contact.get_motor_collection()
        agrees: dict[str, Any] = {"workspace_id": workspace_id, **holding(*ids)}
        if wa_id:
            agrees["wa_id"] = {"$in": [wa_id, None]}
        if user_id:
            agrees["user_id"] = {"$in": [user_id, None]}
        contact: Contact | None = None
        created = False
        for _ in range(3):  # each step can race another worker's; the next round sees its result
            try:
                raw = await collection.find_one_and_update(
                    agrees, {"$set": fields, "$addToSet": {"identities": {"$each": ids}},
                             **({"$max": {"last_inbound_at": wrote_at}} if wrote_at else {})},
                    return_document=ReturnDocument.AFTER)
            except DuplicateKeyError:  # one of the identifiers is another contact's
                raw = None
            else:
                if raw is not None:
                    contact = Contact.model_validate(raw)
                    break
            fresh = Contact(workspace_id=workspace_id, key=contact_key(wa_id, user_id), identities=ids,
                            created_at=now, last_inbound_at=wrote_at, **fields)
            try:
                await fresh.insert()
            except DuplicateKeyError:
                pass
            else:
                contact, created = fresh, True
                break
            contact = await self._reconcile(workspace_id, ids, wa_id, user_id, fields)
            if contact is not None:
                break
        if contact is None:
            raise RuntimeError(f"contact {ids} could not be stored")
        tokens, sort_name = contact_tokens_of(contact), sort_name_of(contact)
        if contact.search_tokens != tokens or contact.sort_name != sort_name:  # a new profile name: the
            contact.search_tokens, contact.sort_name = tokens, sort_name  # search words and order follow
            await collection.update_one({"_id": contact.id}, {"$set": {"search_tokens": tokens,
                                                                       "sort_name": sort_name}})
        return contact, created

    async def _reconcile(self, workspace_id: PydanticObjectId, ids: list[str], wa_id: str | None,
                         user_id: str | None, fields: dict[str, Any]) -> Contact | None:
        """Stored contacts disagree with the identifiers WhatsApp just sent: decide which contact the
        message belongs to, give it what is not another contact's, and note (and log) the rest.

        - The BSUID names the person (it is Meta's id of them for this business): its contact wins.
          A new phone number on it is a number change (the old one is kept in ``previous_wa_ids``);
          a new BSUID on a phone's contact is a user id change.
        - An identifier another contact holds stays there: both contacts get a "linked" note naming
          the other, for an agent to merge if they are one person.
        Contacts stored before ``identities`` existed are found by ``key`` and adopted here.
        """
        keys = [i for i in ids if not i.startswith("parent:")]
        found = [Contact.model_validate(raw) async for raw in Contact.get_motor_collection().find(
            {"workspace_id": workspace_id, "$or": [holding(*ids), {"key": {"$in": keys}}]}).limit(10)]
        if not found:
            return None  # it went away meanwhile (erased): the caller inserts it again

        def holds(contact: Contact, identity: str) -> bool:
            return identity in contact.identities or contact.key == identity

        chosen = (next((c for c in found if user_id and holds(c, f"user:{user_id}")), None)
                  or next((c for c in found if wa_id and holds(c, f"wa:{wa_id}")), None) or found[0])
        others = [c for c in found if c.id != chosen.id]
        taken = {i for c in others for i in [*c.identities, c.key] if i in ids}
        identities = [i for i in (chosen.identities or [chosen.key]) if i not in taken]
        changes = dict(fields)
        notes: list[dict[str, Any]] = []
        pushes: dict[str, Any] = {}
        if "wa:" + (wa_id or "") in taken:
            changes.pop("wa_id", None)
            changes.pop("phone", None)
        elif wa_id and chosen.wa_id and chosen.wa_id != wa_id and f"wa:{wa_id}" not in chosen.identities:
            # (a number the contact holds already, e.g. two merged contacts' numbers: replies follow the
            # one they wrote from, and both keep finding them)
            identities = [i for i in identities if i != f"wa:{chosen.wa_id}"]
            pushes["previous_wa_ids"] = chosen.wa_id
            notes.append(_note("number_changed", f"WhatsApp now gives {_shown(wa_id)} for this customer "
                                                 f"(was {_shown(chosen.wa_id)})."))
        if "user:" + (user_id or "") in taken:
            changes.pop("user_id", None)
        elif user_id and chosen.user_id and chosen.user_id != user_id and f"user:{user_id}" not in chosen.identities:
            identities = [i for i in identities if i != f"user:{chosen.user_id}"]
            pushes["previous_user_ids"] = chosen.user_id
            notes.append(_note("user_id_changed", f"WhatsApp's user id for this customer changed "
                                                  f"from {chosen.user_id} to {user_id}."))
        if any(i.startswith("parent:") for i in taken):
            changes.pop("parent_user_id", None)
        identities += [i for i in ids if i not in taken and i not in identities]
        for other in others:
            shared = ", ".join(sorted(i for i in [*other.identities, other.key] if i in ids))
            if not _noted(chosen, "linked", other.id):
                notes.append(_note("linked", f"Contact {other.display_name} also has {shared}: "
                                             "the same person? Not merged.", other.id))
            if not _noted(other, "linked", chosen.id):
                await Contact.get_motor_collection().update_one({"_id": other.id}, {"$push": {"identity_notes": {
                    "$each": [_note("linked", f"Contact {chosen.display_name} also has {shared}: the same "
                                              "person? Not merged.", chosen.id)], "$slice": -IDENTITY_NOTES_KEPT}}})
            log.warning("identifiers shared by two contacts; not merged", contact_id=str(chosen.id),
                        other_contact_id=str(other.id), shared=shared)
        if notes:
            log.warning("contact identity changed", contact_id=str(chosen.id),
                        changes=[n["kind"] for n in notes])
        update: dict[str, Any] = {"$set": {**changes, "identities": identities, "key": _primary(identities)}}
        push: dict[str, Any] = {k: v for k, v in pushes.items()}
        if notes:
            push["identity_notes"] = {"$each": notes, "$slice": -IDENTITY_NOTES_KEPT}
        if push:
            update["$push"] = push
        try:
            raw = await Contact.get_motor_collection().find_one_and_update(
                {"_id": chosen.id}, update, return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:
            return None  # another worker took one of them meanwhile: look again
        return Contact.model_validate(raw) if raw is not None else None

    async def group(self, workspace_id: PydanticObjectId, group_id: str, *, subject: str | None = None,
                    description: str | None = None) -> Contact:
        """The contact standing for a WhatsApp group (its conversation is the group's thread); a
        subject or description given is stored."""
        key = group_key(group_id)
        now = utcnow()
        known = {name: value for name, value in (("subject", subject), ("description", description))
                 if value is not None}
        collection = Contact.get_motor_collection()
        raw = None
        if known:  # an existing group takes the new words in place
            raw = await collection.find_one_and_update(
                {"workspace_id": workspace_id, "key": key},
                {"$set": {"updated_at": now, **{f"group.{k}": v for k, v in known.items()}}},
                return_document=ReturnDocument.AFTER)
        if raw is None:
            new = Contact(workspace_id=workspace_id, key=key, kind="group", identities=[key], created_at=now,
                          updated_at=now, group=GroupInfo(group_id=group_id, **known))
            on_insert = new.model_dump(exclude={"id", "revision_id"})
            on_insert["search_tokens"] = contact_tokens_of(new)
            for _ in range(2):  # an upsert racing another upsert can hit the unique index once
                try:
                    raw = await collection.find_one_and_update(
                        {"workspace_id": workspace_id, "key": key}, {"$setOnInsert": on_insert},
                        upsert=True, return_document=ReturnDocument.AFTER)
                    break
                except DuplicateKeyError:
                    continue
            else:
                raw = await collection.find_one({"workspace_id": workspace_id, "key": key})
        group = Contact.model_validate(raw)
        if known and group.search_tokens != contact_tokens_of(group):  # a new subject: the search follows
            group.search_tokens = contact_tokens_of(group)
            await collection.update_one({"_id": group.id}, {"$set": {"search_tokens": group.search_tokens}})
        return group

    async def add_participants(self, group: Contact, participant_ids: list[PydanticObjectId]) -> None:
        await Contact.find_one(Contact.id == group.id).update(
            {"$addToSet": {"group.participant_ids": {"$each": participant_ids}}})

    async def remove_participants(self, group: Contact, participant_ids: list[PydanticObjectId]) -> None:
        await Contact.find_one(Contact.id == group.id).update(
            {"$pull": {"group.participant_ids": {"$in": participant_ids}}})

    async def find(self, workspace_id: PydanticObjectId, *, wa_id: str | None = None, user_id: str | None = None,
                   parent_user_id: str | None = None, username: str | None = None) -> Contact | None:
        """The contact any of these identifiers names (a username only when no identifier is given)."""
        ids = identities_of(wa_id, user_id, parent_user_id)
        if ids:
            keys = [i for i in ids if not i.startswith("parent:")]
            return await Contact.find_one({"workspace_id": workspace_id,
                                           "$or": [holding(*ids), {"key": {"$in": keys}}]})
        if username:
            bare = username.lstrip("@")
            return await Contact.find_one({"workspace_id": workspace_id, "username": {"$in": [bare, f"@{bare}"]},
                                           "kind": {"$ne": "group"}})
        return None

    async def change_number(self, workspace_id: PydanticObjectId, old_wa_id: str | None, new_wa_id: str | None, *,
                            old_user_id: str | None = None, new_user_id: str | None = None,
                            new_parent_user_id: str | None = None) -> Contact | None:
        """WhatsApp's ``user_changed_number`` / ``user_changed_user_id``: the same person, now under a new
        number and/or business-scoped user id. Applying it twice changes nothing more. When the new
        identifier is already another contact's, both are kept and linked, never merged silently."""
        if new_wa_id == old_wa_id:
            new_wa_id = None
        if new_user_id == old_user_id:
            new_user_id = None
        if not new_wa_id and not new_user_id:
            return None
        contact = await self.find(workspace_id, wa_id=old_wa_id, user_id=old_user_id)
        already = await self.find(workspace_id, wa_id=new_wa_id, user_id=new_user_id)
        if contact is None:
            return already
        if already is not None and already.id == contact.id:
            return contact  # applied by an earlier run
        if already is not None:
            for one, other in ((contact, already), (already, contact)):
                if not _noted(one, "linked", other.id):
                    await Contact.get_motor_collection().update_one({"_id": one.id}, {"$push": {"identity_notes": {
                        "$each": [_note("linked", f"WhatsApp says this customer is now {other.display_name} "
                                                  "(another contact): the same person? Not merged.", other.id)],
                        "$slice": -IDENTITY_NOTES_KEPT}}})
            log.warning("changed identifier belongs to another contact; not merged", contact_id=str(contact.id),
                        other_contact_id=str(already.id))
            return already
        identities = list(contact.identities or [contact.key])
        sets: dict[str, Any] = {"updated_at": utcnow()}
        pushes: dict[str, Any] = {}
        notes = []
        if new_wa_id:
            identities = [i for i in identities if not i.startswith("wa:")] + [f"wa:{new_wa_id}"]
            sets.update(wa_id=new_wa_id, phone=e164_from_wa_id(new_wa_id))
            if contact.wa_id:
                pushes["previous_wa_ids"] = contact.wa_id
            notes.append(_note("number_changed", f"The customer changed their number to {_shown(new_wa_id)}"
                                                 + (f" (was {_shown(contact.wa_id)})." if contact.wa_id else ".")))
        if new_user_id:
            identities = [i for i in identities if not i.startswith("user:")] + [f"user:{new_user_id}"]
            sets["user_id"] = new_user_id
            if contact.user_id:
                pushes["previous_user_ids"] = contact.user_id
            if not new_wa_id:
                notes.append(_note("user_id_changed", f"WhatsApp's user id for this customer changed to {new_user_id}."))
        if new_parent_user_id:
            identities = [i for i in identities if not i.startswith("parent:")] + [f"parent:{new_parent_user_id}"]
            sets["parent_user_id"] = new_parent_user_id
        sets["identities"], sets["key"] = identities, _primary(identities)
        pushes["identity_notes"] = {"$each": notes, "$slice": -IDENTITY_NOTES_KEPT}
        try:
            raw = await Contact.get_motor_collection().find_one_and_update(
                {"_id": contact.id}, {"$set": sets, "$push": pushes}, return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:  # the new identifier arrived on another contact meanwhile
            return await self.find(workspace_id, wa_id=new_wa_id, user_id=new_user_id)
        return Contact.model_validate(raw) if raw is not None else None

    async def set_marketing_opt_out(self, workspace_id: PydanticObjectId, contact_id: PydanticObjectId,
                                    opted_out: bool, *, source: ConsentSource, by: str | None = None,
                                    note: str = "") -> None:
        """Mark the contact opted out of (or back into) marketing messages, and say who said so in its
        consent history: the send path refuses marketing templates to an opted-out contact. One update."""
        await Contact.get_motor_collection().update_one(
            {"_id": contact_id, "workspace_id": workspace_id}, consent_update(opted_out, source, by=by, note=note))
