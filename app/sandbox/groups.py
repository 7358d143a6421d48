"""Simulated WhatsApp groups (Groups API): creation, participants, group sends and their webhooks.

A group lives on one business number; participants are customers (phone or BSUID).  Creating
one posts ``group_lifecycle_update`` (``group_create`` with ``added_participants``), adding or
removing participants posts ``group_participants_update`` (``group_participants_add`` /
``group_participants_remove``), deleting posts ``group_delete``, each as
``{messaging_product, metadata, groups: [item]}`` like Meta's Groups webhooks reference.

Sends with ``recipient_type: "group"`` and ``to: <group_id>``: 131215 when the number has
groups disabled, 131041 for an unknown group (or one on another number), 131020 for a group
with no participant, 131051 for types groups do not support (interactive, location, contacts,
reactions, authentication templates).  Any participant writing opens the group's 24-hour
window; free-form sends outside it fail with 131047 per participant.
"""

from __future__ import annotations

import base64
import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.sandbox import outcomes
from app.sandbox.errors import GraphError, invalid_param, webhook_error
from app.sandbox.models import SentRecord
from app.sandbox.users import Customer, is_bsuid
from app.sandbox.validation import normalise_to

if TYPE_CHECKING:
    from app.sandbox.models import Number
    from app.sandbox.state import SandboxState
    from app.sandbox.validation import ParsedSend

MAX_PARTICIPANTS = 8
GROUP_TYPES = frozenset({"text", "image", "video", "audio", "document", "sticker", "template"})


@dataclass
class Group:
    """One group on one business number."""

    id: str
    phone_number_id: str
    waba_id: str
    subject: str
    description: str | None
    created_at: float
    participants: list[Customer] = field(default_factory=list)  # in joining order (BSUIDs may change)
    last_inbound: float | None = None

    def view(self) -> dict[str, Any]:
        return {"group_id": self.id, "phone_number_id": self.phone_number_id, "subject": self.subject,
                "description": self.description, "creation_timestamp": int(self.created_at),
                "participants": [c.participant() for c in self.participants],
                "total_participant_count": len(self.participants)}


class GroupStore:
    """Every group, by id."""

    def __init__(self, state: SandboxState) -> None:
        self._state = state
        self._groups: dict[str, Group] = {}
        self._counter = itertools.count(1)

    def clear(self) -> None:
        self._groups.clear()

    def get(self, group_id: str) -> Group | None:
        return self._groups.get(group_id)

    def of_number(self, phone_number_id: str | None = None) -> list[Group]:
        return [g for g in self._groups.values() if phone_number_id is None or g.phone_number_id == phone_number_id]

    def _number(self, phone_number_id: str) -> Number:
        number = self._state.numbers.get(phone_number_id)
        if number is None:
            raise invalid_param(f"Unknown phone_number_id {phone_number_id!r}; register it first.")
        if not number.groups_enabled:
            raise GraphError(131215, "Groups APIs are only available for eligible phone numbers.")
        return number

    def _owned(self, group_id: str) -> tuple[Group, Number]:
        group = self._groups.get(group_id)
        if group is None:
            raise GraphError(131041, f"Group {group_id} was not found.")
        return group, self._number(group.phone_number_id)

    def customer(self, waba_id: str, given: Any) -> Customer:
        """A participant named by phone (any E.164 spelling) or by BSUID."""
        if is_bsuid(given):
            found = self._state.users.by_user_id(waba_id, given)
            if found is None:
                raise invalid_param(f"Unknown business-scoped user ID {given!r} in this business.")
            return found
        return self._state.users.by_phone(waba_id, normalise_to(given))

    def _emit(self, number: Number, field_name: str, item: dict[str, Any]) -> None:
        self._state.webhooks.emit(number.phone_number_id, ("field", (field_name, {"groups": [item]})))

    @staticmethod
    def _item(group: Group, kind: str) -> dict[str, Any]:
        return {"timestamp": str(int(time.time())), "group_id": group.id, "type": kind,
                "request_id": secrets.token_hex(16).upper()}

    # ---- control ------------------------------------------------------------------------

    def create(self, phone_number_id: str, subject: str, participants: list[Any],
               description: str | None = None) -> tuple[Group, list[dict[str, Any]]]:
        """A new group with ``participants``; posts ``group_lifecycle_update`` (group_create)."""
        number = self._number(phone_number_id)
        if not subject.strip() or len(subject) > 128:
            raise invalid_param("Param subject must be 1 to 128 characters.")
        if description is not None and len(description) > 2048:
            raise invalid_param("Param description must be at most 2048 characters.")
        if len(participants) > MAX_PARTICIPANTS:
            raise GraphError(131204, f"A group has at most {MAX_PARTICIPANTS} participants.")
        members = [(self.customer(number.waba_id, p), str(p)) for p in participants]
        if len({c.user_id for c, _ in members}) != len(members):
            raise GraphError(131202, "Duplicate participants in the participant array input.")
        raw = f"capi_group:{number.display_digits}:{120363000000000000 + next(self._counter)}".encode()
        group = Group(base64.urlsafe_b64encode(raw).decode().rstrip("="), phone_number_id, number.waba_id,
                      subject, description, time.time())
        group.participants = [c for c, _ in members]
        self._groups[group.id] = group
        added = [c.participant(given) for c, given in members]
        item = self._item(group, "group_create")
        item["subject"] = subject
        if description:
            item["description"] = description
        item["added_participants"] = added
        self._emit(number, "group_lifecycle_update", item)
        return group, added

    def change_participants(self, group_id: str, action: str, participants: list[Any]) -> dict[str, Any]:
        """Add or remove participants; posts ``group_participants_update``."""
        group, number = self._owned(group_id)
        if action not in ("add", "remove"):
            raise invalid_param("Param action must be 'add' or 'remove'.")
        done: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        for given in participants:
            customer = self.customer(number.waba_id, given)
            present = any(c is customer for c in group.participants)
            if action == "add" and not present:
                if len(group.participants) >= MAX_PARTICIPANTS:
                    raise GraphError(131204, f"A group has at most {MAX_PARTICIPANTS} participants.")
                group.participants.append(customer)
                done.append(customer.participant(str(given)))
            elif action == "remove" and present:
                group.participants = [c for c in group.participants if c is not customer]
                done.append(customer.participant(str(given)))
            else:
                code = 131212 if action == "remove" else 131202
                failed.append({**customer.participant(str(given)),
                               "errors": [webhook_error(code, "Participant is not a part of the group."
                                                        if action == "remove" else "Already a participant.")]})
        item = self._item(group, f"group_participants_{action}")
        if action == "remove":
            item["initiated_by"] = "business"
        item["added_participants" if action == "add" else "removed_participants"] = done
        if failed:
            item["failed_participants"] = failed
        self._emit(number, "group_participants_update", item)
        return {"group_id": group.id, "added" if action == "add" else "removed": done, "failed": failed}

    def delete(self, group_id: str) -> None:
        group, number = self._owned(group_id)
        del self._groups[group_id]
        self._emit(number, "group_lifecycle_update", self._item(group, "group_delete"))

    def participant_of(self, number: Number, group_id: str, customer: Customer) -> Group:
        """The group an inbound message is posted in; 131041 / 131212 otherwise."""
        group = self._groups.get(group_id)
        if group is None or group.phone_number_id != number.phone_number_id:
            raise GraphError(131041, f"Group {group_id} was not found on this number.")
        if not any(c is customer for c in group.participants):
            raise GraphError(131212, "Participant is not a part of the group.")
        return group

    # ---- graph: sends -----------------------------------------------------------------

    def accept_send(self, number: Number, parsed: ParsedSend, body: Any, now: float) -> dict[str, Any]:
        """A send with ``recipient_type: "group"``; the group's window and ``group_*`` pricing."""
        if not number.groups_enabled:
            raise GraphError(131215, "Groups APIs are only available for eligible phone numbers.")
        group = self._groups.get(parsed.to or "")
        if group is None or group.phone_number_id != number.phone_number_id:
            raise GraphError(131041, f"Group {parsed.to} was not found, either because it doesn't exist or "
                                     "you are not a member.")
        if not group.participants:
            raise GraphError(131020, "Cannot send messages to single member groups.")
        state = self._state
        category = "service"
        if parsed.type == "template":
            category = state.templates.for_send(number.waba_id, parsed).category.lower()
        if parsed.type not in GROUP_TYPES or category == "authentication":
            raise GraphError(131051, f"Message type {parsed.type}{' (authentication)' if category == 'authentication' else ''}"
                                     " is not supported in groups.")
        state.pace(number, group.id, now)
        wamid = state.new_wamid(group.id)
        state.sent.append(SentRecord(number.phone_number_id, wamid, group.id, parsed.type, body, now,
                                     recipient_type="group"))
        in_window = outcomes.window_open(group.last_inbound, now)
        error = state.send_error(parsed, in_window, now)
        outcomes.schedule(state.webhooks, number, wamid=wamid, now=now,
                          targets=[outcomes.participant_target(c, group.id) for c in group.participants],
                          group=True, price=outcomes.pricing(category, in_window=in_window, group=True),
                          error=error, opaque=parsed.biz_opaque_callback_data)
        message: dict[str, Any] = {"id": wamid}
        if parsed.type == "template":
            message["message_status"] = "accepted"
        return {"messaging_product": "whatsapp", "contacts": [{"input": group.id}], "messages": [message]}
