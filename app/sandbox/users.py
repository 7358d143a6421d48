"""Simulated WhatsApp customers and their business-scoped user ids (BSUIDs), per WABA.

Every customer has a BSUID (``contacts[].user_id``, ``from_user_id``, ``recipient_user_id``):
the ISO 3166 country of the phone, a dot and 20 digits, derived from (WABA, phone) so tests
can predict it::

    bsuid_for(waba_id, wa_id) == f"{country}.{int(sha256(f'{waba_id}:{wa_id}')[:16], 16):020d}"

(``US.13491208655302741918``-like; Meta scopes BSUIDs to the business portfolio, the sandbox
to the WABA).  A customer known by phone has ``wa_id``; a username-only customer has only
``user_id`` (+ ``username``): their webhooks carry no ``wa_id`` and no ``from``.  A customer
can be addressed by phone or by BSUID (``recipient``); both map to the same record, whose
``key`` (phone when known, else BSUID) keys the 24-hour window and the per-user pacing.
A new phone number gets a new BSUID, as Meta does (``change_number``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import phonenumbers

from app.sandbox.errors import invalid_param

BSUID_RE = re.compile(r"^[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}$")
USERNAME_RE = re.compile(r"^@?[A-Za-z0-9._]{1,35}$")


def country_of(wa_id: str) -> str:
    """ISO 3166 alpha-2 country of an E.164 number (digits only); ``US`` when unknown."""
    try:
        parsed = phonenumbers.parse("+" + wa_id)
    except phonenumbers.NumberParseException:
        return "US"
    region = phonenumbers.region_code_for_number(parsed) or phonenumbers.region_code_for_country_code(
        parsed.country_code or 0)
    return region if region and region != "ZZ" else "US"


def _digits(seed: str) -> str:
    return f"{int(hashlib.sha256(seed.encode()).hexdigest()[:16], 16):020d}"


def bsuid_for(waba_id: str, wa_id: str) -> str:
    """The BSUID the sandbox gives the owner of ``wa_id`` in ``waba_id`` (deterministic)."""
    return f"{country_of(wa_id)}.{_digits(f'{waba_id}:{wa_id}')}"


def is_bsuid(value: Any) -> bool:
    return isinstance(value, str) and BSUID_RE.match(value) is not None


def check_bsuid(value: Any, field_name: str) -> str:
    if not is_bsuid(value):
        raise invalid_param(f"Param {field_name} must be a business-scoped user ID like US.13491208655302741918.")
    return str(value)


@dataclass
class Customer:
    """One WhatsApp user as one business (WABA) sees them."""

    waba_id: str
    user_id: str
    wa_id: str | None = None
    name: str | None = None
    username: str | None = None
    parent_user_id: str | None = None
    previous_user_ids: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """What the service window and the per-user pacing are keyed by."""
        return self.wa_id or self.user_id

    def contact(self, *, with_username: bool = True) -> dict[str, Any]:
        """The ``contacts[]`` item Meta sends for this user."""
        profile: dict[str, Any] = {}
        if self.name:
            profile["name"] = self.name
        if self.username and with_username:
            profile["username"] = self.username
        out: dict[str, Any] = {"profile": profile}
        if self.wa_id:
            out["wa_id"] = self.wa_id
        out["user_id"] = self.user_id
        if self.parent_user_id:
            out["parent_user_id"] = self.parent_user_id
        return out

    def participant(self, given: str | None = None) -> dict[str, Any]:
        """A group webhook's participant item: ``{input, wa_id?, user_id}``."""
        out: dict[str, Any] = {"input": given or self.wa_id or self.user_id}
        if self.wa_id:
            out["wa_id"] = self.wa_id
        out["user_id"] = self.user_id
        if self.parent_user_id:
            out["parent_user_id"] = self.parent_user_id
        return out

    def view(self) -> dict[str, Any]:
        return {"waba_id": self.waba_id, "user_id": self.user_id, "wa_id": self.wa_id, "username": self.username,
                "name": self.name, "parent_user_id": self.parent_user_id,
                "previous_user_ids": list(self.previous_user_ids)}


class Directory:
    """Customers by (WABA, BSUID), (WABA, phone), (WABA, parent BSUID) and (WABA, username)."""

    def __init__(self) -> None:
        self._by_user: dict[tuple[str, str], Customer] = {}
        self._by_phone: dict[tuple[str, str], Customer] = {}
        self._by_parent: dict[tuple[str, str], Customer] = {}
        self._by_username: dict[tuple[str, str], Customer] = {}

    def clear(self) -> None:
        self._by_user.clear()
        self._by_phone.clear()
        self._by_parent.clear()
        self._by_username.clear()

    def all(self, waba_id: str | None = None) -> list[Customer]:
        return [c for c in self._by_user.values() if waba_id is None or c.waba_id == waba_id]

    def _index(self, customer: Customer) -> Customer:
        waba = customer.waba_id
        self._by_user[(waba, customer.user_id)] = customer
        if customer.wa_id:
            self._by_phone[(waba, customer.wa_id)] = customer
        if customer.parent_user_id:
            self._by_parent[(waba, customer.parent_user_id)] = customer
        if customer.username:
            self._by_username[(waba, customer.username.lower())] = customer
        return customer

    def by_phone(self, waba_id: str, wa_id: str) -> Customer:
        """The owner of ``wa_id``; every phone has a BSUID, so an unseen one is created."""
        customer = self._by_phone.get((waba_id, wa_id))
        if customer is None:
            customer = self._index(Customer(waba_id, bsuid_for(waba_id, wa_id), wa_id))
        return customer

    def by_user_id(self, waba_id: str, user_id: str) -> Customer | None:
        """The customer behind a BSUID or a parent BSUID (None when unknown)."""
        return self._by_user.get((waba_id, user_id)) or self._by_parent.get((waba_id, user_id))

    def by_username(self, waba_id: str, username: str) -> Customer | None:
        return self._by_username.get((waba_id, username.lower()))

    def identify(self, waba_id: str, *, wa_id: str | None, user_id: str | None, username: str | None,
                 name: str | None, parent_user_id: str | None) -> Customer:
        """The customer an inbound message comes from (created or updated); 100 on contradictions."""
        if user_id is not None:
            check_bsuid(user_id, "user_id")
        if parent_user_id is not None:
            check_bsuid(parent_user_id, "parent_user_id")
        if username is not None and not USERNAME_RE.match(username):
            raise invalid_param("Param username must be 1-35 letters, digits, dots or underscores.")
        known_by_id = self._by_user.get((waba_id, user_id)) if user_id else None
        if wa_id is not None:
            customer = self._by_phone.get((waba_id, wa_id))
            if customer is not None:
                customer.wa_id = wa_id  # writing from it shows the number (after an unshared change)
            if customer is not None and user_id is not None and customer.user_id != user_id:
                raise invalid_param(f"Param user_id ({user_id}) is not the BSUID of {wa_id} "
                                    f"({customer.user_id}) in this business.")
            if customer is None and known_by_id is not None:
                if known_by_id.wa_id not in (None, wa_id):
                    raise invalid_param(f"Param user_id ({user_id}) belongs to another phone number.")
                known_by_id.wa_id = wa_id  # a username-only customer now shares their phone
                customer = known_by_id
            if customer is None:
                customer = Customer(waba_id, user_id or bsuid_for(waba_id, wa_id), wa_id)
        elif user_id is not None:
            customer = known_by_id or Customer(waba_id, user_id)
        elif username is not None:
            found = self.by_username(waba_id, username)
            if found is None:
                raise invalid_param(f"No customer with username {username!r} yet: give from or user_id.")
            customer = found
        else:
            raise invalid_param("Give from (the customer's phone) or user_id (their BSUID).")
        if name:
            customer.name = name
        if username is not None:
            if customer.username and customer.username.lower() != username.lower():
                self._by_username.pop((waba_id, customer.username.lower()), None)
            customer.username = username
        if parent_user_id is not None:
            customer.parent_user_id = parent_user_id
        return self._index(customer)

    def change_number(self, customer: Customer, new_wa_id: str | None, *, share: bool = True) -> str:
        """The customer moves to ``new_wa_id``: a new BSUID (from the new phone), as Meta does.

        ``share=False`` (or no new number): the new phone is not shared, so the customer has no
        visible ``wa_id`` any more (a later message from that phone shows it again).  Returns
        the previous BSUID; the old phone and BSUID no longer address this customer.
        """
        waba = customer.waba_id
        old = customer.user_id
        if new_wa_id is not None and new_wa_id != customer.wa_id and (waba, new_wa_id) in self._by_phone:
            raise invalid_param(f"Param new_wa_id ({new_wa_id}) already belongs to another customer.")
        self._by_user.pop((waba, old), None)
        if customer.wa_id:
            self._by_phone.pop((waba, customer.wa_id), None)
        customer.previous_user_ids.append(old)
        if new_wa_id is not None:
            customer.user_id = bsuid_for(waba, new_wa_id)
            self._by_phone[(waba, new_wa_id)] = customer
        else:
            seed = f"{old}:{len(customer.previous_user_ids)}"
            customer.user_id = f"{old.split('.', 1)[0]}.{_digits(f'{waba}:{seed}')}"
        customer.wa_id = new_wa_id if share else None
        self._index(customer)
        return old
