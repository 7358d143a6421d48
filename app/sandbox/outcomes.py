"""What happens to an accepted send: per-message pricing and the status webhooks (2026 shapes).

Pricing follows per-message pricing (``pricing_model: "PMP"``, conversation objects are gone
from v24): a free-form message inside the customer service window is ``free_customer_service``
/ ``service``; a utility template inside the window is free as well (July 2025); marketing and
authentication templates, and utility templates outside a window, are ``regular`` and billable;
anything inside the 72-hour window opened by a click-to-WhatsApp ad is ``free_entry_point``.
Group sends use the ``group_*`` categories and the group's own window (any participant
writing opens it for the whole group).

Status items carry ``recipient_id`` (the phone, when the send used it; the group id for a
group), ``recipient_user_id`` (BSUID; on a failed status only when the send used the BSUID),
and ride with ``contacts[]`` (one per status, same order) as Meta sends them in 2026: the
username only on delivered / read.  Group statuses are per participant
(``recipient_type: "group"``, ``recipient_participant_id`` / ``_user_id``), one change per
transition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.sandbox.models import SERVICE_WINDOW_S

if TYPE_CHECKING:
    from app.sandbox.models import Number
    from app.sandbox.users import Customer
    from app.sandbox.webhooks import WebhookDispatcher

ENTRY_POINT_WINDOW_S = 72 * 3600


def pricing(category: str, *, in_window: bool, entry_point: bool = False, group: bool = False) -> dict[str, Any]:
    """Meta's PMP ``pricing`` object for a message of ``category`` (service / utility / marketing / ...)."""
    if entry_point and not group:
        return {"billable": False, "pricing_model": "PMP", "type": "free_entry_point",
                "category": "referral_conversion"}
    free = in_window and category in ("service", "utility")
    if group and category in ("service", "utility", "marketing"):
        category = f"group_{category}"
    return {"billable": not free, "pricing_model": "PMP",
            "type": "free_customer_service" if free else "regular", "category": category}


def window_open(last_inbound: float | None, now: float) -> bool:
    return last_inbound is not None and now - last_inbound <= SERVICE_WINDOW_S


def entry_point_open(opened_at: float | None, now: float) -> bool:
    return opened_at is not None and now - opened_at <= ENTRY_POINT_WINDOW_S


@dataclass
class Target:
    """One recipient of a send: who, and the recipient fields of their status items."""

    customer: Customer
    fields: dict[str, Any]
    failed_fields: dict[str, Any] = field(default_factory=dict)


def individual_target(customer: Customer, *, via_phone: bool) -> Target:
    fields: dict[str, Any] = {}
    if via_phone and customer.wa_id:
        fields["recipient_id"] = customer.wa_id
    fields["recipient_user_id"] = customer.user_id
    if customer.parent_user_id:
        fields["recipient_parent_user_id"] = customer.parent_user_id
    failed = dict(fields)
    if via_phone:  # Meta omits the BSUID from failed statuses of sends to a phone number
        failed.pop("recipient_user_id", None)
        failed.pop("recipient_parent_user_id", None)
    return Target(customer, fields, failed)


def participant_target(customer: Customer, group_id: str) -> Target:
    fields: dict[str, Any] = {"recipient_id": group_id, "recipient_type": "group"}
    if customer.wa_id:
        fields["recipient_participant_id"] = customer.wa_id
    fields["recipient_participant_user_id"] = customer.user_id
    if customer.parent_user_id:
        fields["recipient_participant_parent_user_id"] = customer.parent_user_id
    return Target(customer, fields, dict(fields))


def schedule(webhooks: WebhookDispatcher, number: Number, *, wamid: str, now: float, targets: list[Target],
             group: bool, price: dict[str, Any] | None, error: dict[str, Any] | None,
             opaque: str | None) -> None:
    """Queue the failed status, or sent now plus delivered / read after the number's delays."""
    pid = number.phone_number_id

    def event(status: str, at: float, extra: dict[str, Any]) -> tuple[str, Any]:
        contacts, statuses = [], []
        for target in targets:
            item: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(int(at)),
                                    **(target.failed_fields if status == "failed" else target.fields)}
            if opaque is not None:
                item["biz_opaque_callback_data"] = opaque
            item.update(extra)
            contacts.append(target.customer.contact(with_username=status in ("delivered", "read")))
            statuses.append(item)
        if group:
            return ("statuses", (contacts, statuses))
        return ("status", (contacts[0], statuses[0]))

    if error is not None:
        webhooks.emit(pid, event("failed", now, {"errors": [error]}))
        return
    priced = {"pricing": price} if price is not None else {}
    webhooks.emit(pid, event("sent", now, priced))
    delivered_at = None
    if number.delivered_after_ms is not None:
        delivered_at = now + number.delivered_after_ms / 1000
        webhooks.emit(pid, event("delivered", delivered_at, priced), due=delivered_at)
    if number.read_after_ms is not None:
        read_at = max(now + number.read_after_ms / 1000, delivered_at or 0.0)  # never before delivered
        webhooks.emit(pid, event("read", read_at, priced), due=read_at)
