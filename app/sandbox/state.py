"""SandboxState: everything the simulated Cloud API knows, in memory, plus its Python API.

The control routes are thin wrappers over the public methods here (``register_number``,
``simulate_inbound``, ``list_sent``, ``set_faults``, ``seed_template``, ...), so in-process
code such as demo seeding can call them directly.  The graph routes use the ``graph_*`` /
``accept_send`` methods.  The send path is O(1): a deque per number for the 1-second
throughput window, a token bucket per (number, recipient), dict lookups for the rest.
"""

from __future__ import annotations

import base64
import itertools
import os
import random
import time
from typing import Any

from app.sandbox import outcomes
from app.sandbox.errors import GraphError, invalid_param, webhook_error
from app.sandbox.groups import GroupStore
from app.sandbox.inbound import change_number as _change_number
from app.sandbox.inbound import simulate as _simulate
from app.sandbox.media_store import MediaStore
from app.sandbox.models import LIMIT_TIERS, QUALITY_RATINGS, Faults, Number, SentRecord
from app.sandbox.template_store import TemplateStore
from app.sandbox.users import Customer, Directory
from app.sandbox.validation import ParsedSend, normalise_to
from app.sandbox.webhooks import WebhookDispatcher

_UNSET: Any = object()


class SandboxState:
    """The sandbox's whole world: numbers, tokens, templates, media, sends, faults, webhooks.

    ``webhook_retry_base_s`` is the first retry delay (doubling each attempt, at most
    ``webhook_max_attempts`` attempts); tests set it to a few milliseconds.
    ``template_review_ms``, when set, approves new templates by itself after that delay.
    ``media_base_url`` is the public URL of the media download route (webhooks' media ``url``);
    when None the first graph or control request teaches it.
    """

    def __init__(
        self,
        *,
        webhook_retry_base_s: float = 1.0,
        webhook_max_attempts: int = 6,
        webhook_timeout_s: float = 10.0,
        webhook_batch_size: int = 100,
        template_review_ms: int | None = None,
        fault_hold_s: float = 300.0,
        control_from: str = "127.0.0.1,::1",
        media_base_url: str | None = None,
    ) -> None:
        # Who may use /sandbox/control (comma-separated peer addresses, "*" for anyone): it can make
        # customers write, inject faults and register numbers, so by default only this host.
        self.control_from = control_from
        self.numbers: dict[str, Number] = {}
        self._token_wabas: dict[str, set[str]] = {}
        self.media = MediaStore()
        self.media_base_url = media_base_url
        self.templates = TemplateStore(self)
        self.users = Directory()
        self.groups = GroupStore(self)
        self.sent: list[SentRecord] = []
        self.inbound_ids: dict[str, str] = {}  # customer wamid -> phone_number_id (mark-as-read)
        self.faults: dict[str | None, Faults] = {}  # None = every number
        self.fault_generation = 0  # bumped on clear/reset to release held (timed-out) requests
        self.fault_hold_s = fault_hold_s
        self.template_review_ms = template_review_ms
        self._counter = itertools.count(1)
        self.webhooks = WebhookDispatcher(
            self, retry_base_s=webhook_retry_base_s, max_attempts=webhook_max_attempts,
            timeout_s=webhook_timeout_s, batch_size=webhook_batch_size,
        )

    # ---- control: numbers -------------------------------------------------------------

    def register_number(
        self, phone_number_id: str, waba_id: str, display_phone_number: str, access_token: str,
        app_secret: str, webhook_url: str | None = None, mps: int = 80, *,
        delivered_after_ms: int | None = _UNSET, read_after_ms: int | None = _UNSET,
        verified_name: str | None = None, quality_rating: str | None = None,
        messaging_limit_tier: str | None = None, recipient_burst: int | None = None,
        recipient_interval_s: float | None = None, groups_enabled: bool | None = None,
    ) -> Number:
        """Add a number, or update it in place (token rotation, new URL) keeping its counters.

        ``read_after_ms=None`` means the customer never reads; omitted means the default.
        """
        if quality_rating is not None and quality_rating not in QUALITY_RATINGS:
            raise invalid_param(f"quality_rating must be one of {', '.join(sorted(QUALITY_RATINGS))}.")
        if messaging_limit_tier is not None and messaging_limit_tier not in LIMIT_TIERS:
            raise invalid_param(f"messaging_limit_tier must be one of {', '.join(sorted(LIMIT_TIERS))}.")
        if mps < 1:
            raise invalid_param("mps must be at least 1.")
        number = self.numbers.get(phone_number_id)
        if number is None:
            number = Number(phone_number_id, waba_id, display_phone_number, access_token, app_secret,
                            webhook_url or None, mps)
            self.numbers[phone_number_id] = number
        else:
            number.waba_id, number.display_phone_number = waba_id, display_phone_number
            number.access_token, number.app_secret = access_token, app_secret
            number.webhook_url, number.mps = webhook_url or None, mps
        if delivered_after_ms is not _UNSET:
            number.delivered_after_ms = delivered_after_ms
        if read_after_ms is not _UNSET:
            number.read_after_ms = read_after_ms
        for attr, value in (("verified_name", verified_name), ("quality_rating", quality_rating),
                            ("messaging_limit_tier", messaging_limit_tier),
                            ("recipient_burst", recipient_burst), ("recipient_interval_s", recipient_interval_s),
                            ("groups_enabled", groups_enabled)):
            if value is not None:
                setattr(number, attr, value)
        self._rebuild_tokens()
        return number

    def _rebuild_tokens(self) -> None:
        # A token opens every WABA one of its numbers belongs to (like a system-user token);
        # rebuilt on each registration so a rotated-out token stops working at once.
        tokens: dict[str, set[str]] = {}
        for number in self.numbers.values():
            tokens.setdefault(number.access_token, set()).add(number.waba_id)
        self._token_wabas = tokens

    def token_known(self, token: str | None) -> bool:
        return token is not None and token in self._token_wabas

    def token_opens(self, token: str | None, waba_id: str) -> bool:
        return token is not None and waba_id in self._token_wabas.get(token, ())

    def numbers_of(self, waba_id: str) -> list[Number]:
        return [n for n in self.numbers.values() if n.waba_id == waba_id]

    def waba_known(self, waba_id: str) -> bool:
        return any(n.waba_id == waba_id for n in self.numbers.values()) or self.templates.has_waba(waba_id)

    def new_id(self) -> str:
        """A numeric Graph id (media, templates), unique in this process."""
        return str(10**15 + next(self._counter) * 7919 + random.randrange(7919))

    def new_wamid(self, key: str) -> str:
        raw = b"\x15\x02\x00\x11\x18\x12" + key.encode()[:40] + next(self._counter).to_bytes(6, "big") + os.urandom(6)
        return "wamid.HBgL" + base64.b64encode(raw).decode()

    # ---- control: customers, inbound, groups ---------------------------------------------

    def simulate_inbound(self, phone_number_id: str, from_: str | None, name: str | None, message: dict[str, Any],
                         *, timestamp: float | None = None, user_id: str | None = None, username: str | None = None,
                         parent_user_id: str | None = None, group_id: str | None = None) -> str:
        """A customer sends ``message`` (Meta's object minus id/from/timestamp); returns its wamid.

        ``from_`` (phone) or ``user_id`` (BSUID) names the customer; without ``from_`` the
        customer is username-only (no ``wa_id`` / ``from`` in webhooks).  ``group_id`` posts it
        in a group.  Opens (or resets) the 24-h window at ``timestamp`` (default now).
        """
        return self.inbound(phone_number_id, from_, name, message, timestamp=timestamp, user_id=user_id,
                            username=username, parent_user_id=parent_user_id, group_id=group_id)[0]

    def inbound(self, phone_number_id: str, from_: str | None, name: str | None, message: dict[str, Any],
                **kwargs: Any) -> tuple[str, Customer]:
        """``simulate_inbound`` returning (wamid, customer)."""
        return _simulate(self, phone_number_id, from_, name, message, **kwargs)

    def change_number(self, phone_number_id: str, **kwargs: Any) -> dict[str, Any]:
        """A customer changes phone number (new BSUID): see ``app.sandbox.inbound.change_number``."""
        return _change_number(self, phone_number_id, **kwargs)

    def customer(self, waba_id: str, *, wa_id: str | None = None, user_id: str | None = None,
                 username: str | None = None) -> Customer | None:
        """A customer of ``waba_id`` by phone (created: every phone has a BSUID), BSUID or username."""
        if wa_id is not None:
            return self.users.by_phone(waba_id, normalise_to(wa_id))
        if user_id is not None:
            return self.users.by_user_id(waba_id, user_id)
        if username is not None:
            return self.users.by_username(waba_id, username)
        raise invalid_param("Give wa_id, user_id or username.")

    # ---- control: sent log, faults, reset ------------------------------------------------

    def list_sent(self, phone_number_id: str | None = None) -> list[dict[str, Any]]:
        """Accepted sends in the order accepted (mark-as-read calls are not sends)."""
        return [r.view() for r in self.sent if phone_number_id is None or r.phone_number_id == phone_number_id]

    def clear_sent(self) -> None:
        self.sent.clear()

    def set_faults(self, phone_number_id: str | None = None, *, error_rate: float = 0.0,
                   http_status: int | None = None, error_code: int | None = None,
                   latency_ms: int = 0, timeout_rate: float = 0.0) -> Faults:
        """Inject faults on graph routes for one number (or all when ``phone_number_id`` is None)."""
        if not (0.0 <= error_rate <= 1.0 and 0.0 <= timeout_rate <= 1.0):
            raise invalid_param("error_rate and timeout_rate must be between 0 and 1.")
        if latency_ms < 0 or (http_status is not None and not 400 <= http_status <= 599):
            raise invalid_param("latency_ms must be >= 0 and http_status a 4xx/5xx code.")
        faults = Faults(error_rate, http_status, error_code, latency_ms, timeout_rate)
        self.faults[phone_number_id] = faults
        return faults

    def clear_faults(self) -> None:
        self.faults.clear()
        self.fault_generation += 1

    def faults_for(self, phone_number_id: str | None) -> Faults | None:
        if not self.faults:
            return None
        return self.faults.get(phone_number_id) or self.faults.get(None)

    def reset(self) -> None:
        """Forget everything: numbers, customers, groups, templates, media, sends, faults, webhooks."""
        self.numbers.clear()
        self.users.clear()
        self.groups.clear()
        self._token_wabas.clear()
        self.media.clear()
        self.templates.clear()
        self.sent.clear()
        self.inbound_ids.clear()
        self.clear_faults()
        self.webhooks.clear()

    # ---- control: templates ---------------------------------------------------------------

    def seed_template(self, waba_id: str, name: str, language: str, category: str,
                      components: list[dict[str, Any]], status: str = "APPROVED", *,
                      parameter_format: str | None = None) -> str:
        """Store a template directly (examples not required); returns its id."""
        body: dict[str, Any] = {"name": name, "language": language, "category": category, "components": components}
        if parameter_format:
            body["parameter_format"] = parameter_format
        return self.templates.create(waba_id, body, status=status, require_examples=False).id

    def set_template_status(self, template_id: str, status: str, reason: str | None = None, *,
                            rejection_info: dict[str, Any] | None = None) -> None:
        """Change a template's status and post the ``message_template_status_update`` webhook.

        A rejection carries ``rejection_info`` ({reason, recommendation}); omitted, it is
        derived from ``reason``.
        """
        self.templates.set_status(template_id, status, reason, rejection_info=rejection_info)

    # ---- graph: sending -----------------------------------------------------------------

    def accept_send(self, number: Number, parsed: ParsedSend, body: Any) -> dict[str, Any]:
        """Apply Meta's send-time rules; on success record the send and schedule its webhooks."""
        now = time.time()
        if parsed.recipient_type == "group":
            return self.groups.accept_send(number, parsed, body, now)
        category = "service"
        if parsed.type == "template":
            category = self.templates.for_send(number.waba_id, parsed).category.lower()
        via_phone = parsed.wa_id is not None
        if parsed.wa_id is not None:
            customer = self.users.by_phone(number.waba_id, parsed.wa_id)
        else:
            found = self.users.by_user_id(number.waba_id, parsed.recipient or "")
            if found is None:
                raise GraphError(131009, f"Param recipient ('{parsed.recipient}') is not a WhatsApp user of "
                                         "this business (unknown business-scoped user ID).")
            customer = found
            if category == "authentication":
                raise GraphError(131062, "Business-scoped User ID recipients are not supported for this message: "
                                         "authentication templates require the phone number (to).")
        if customer.wa_id == number.display_digits:
            raise GraphError(131021, "Recipient phone number cannot be the same as the sender's.")
        self.pace(number, customer.key, now)
        wamid = self.new_wamid(customer.key)
        self.sent.append(SentRecord(number.phone_number_id, wamid, parsed.to, parsed.type, body, now,
                                    recipient=None if via_phone else parsed.recipient, user_id=customer.user_id))
        number.last_sent[customer.key] = wamid
        in_window = outcomes.window_open(number.last_inbound.get(customer.key), now)
        entry_point = outcomes.entry_point_open(number.entry_points.get(customer.key), now)
        outcomes.schedule(self.webhooks, number, wamid=wamid, now=now,
                          targets=[outcomes.individual_target(customer, via_phone=via_phone)], group=False,
                          price=outcomes.pricing(category, in_window=in_window, entry_point=entry_point),
                          error=self.send_error(parsed, in_window, now),
                          opaque=parsed.biz_opaque_callback_data)
        message: dict[str, Any] = {"id": wamid}
        if parsed.type == "template":
            message["message_status"] = "accepted"
        contact = ({"input": parsed.to, "wa_id": customer.wa_id} if via_phone
                   else {"input": parsed.recipient, "user_id": customer.user_id})
        return {"messaging_product": "whatsapp", "contacts": [contact], "messages": [message]}

    def pace(self, number: Number, key: str, now: float) -> None:
        """Meta's throughput (130429, per number) and pair rate limit (131056, per user or group)."""
        sends = number.sends
        cutoff = now - 1.0
        while sends and sends[0] <= cutoff:
            sends.popleft()
        if len(sends) >= number.mps:
            raise GraphError(130429, f"Message failed to send because there were too many messages sent from "
                                     f"this phone number ({number.mps} messages per second).")
        bucket = number.pairs.get(key)
        tokens = float(number.recipient_burst) if bucket is None else min(
            float(number.recipient_burst), bucket[0] + (now - bucket[1]) / number.recipient_interval_s)
        if tokens < 1.0:
            raise GraphError(131056, "Message failed to send because there were too many messages sent from this "
                                     "phone number to the same phone number in a short period of time.")
        sends.append(now)
        number.pairs[key] = [tokens - 1.0, now]

    def send_error(self, parsed: ParsedSend, in_window: bool, now: float) -> dict[str, Any] | None:
        """The ``errors[]`` item an accepted send fails with later (131047, 131053), or None."""
        if parsed.type != "template" and not in_window:
            return webhook_error(131047, "Message failed to send because more than 24 hours have passed "
                                         "since the customer last replied to this number.")
        if parsed.media_id is not None and self.media.get(parsed.media_id, now) is None:
            return webhook_error(131053, f"Unable to retrieve media: media id {parsed.media_id} was not "
                                         "found or has expired.")
        return None

    def mark_read(self, number: Number, message_id: str) -> None:
        """Mark-as-read: only messages this number received can be marked (100 otherwise)."""
        if self.inbound_ids.get(message_id) != number.phone_number_id:
            raise invalid_param(f"Param message_id ({message_id}) is not a message received by this number.",
                                message="(#100) Invalid parameter")

