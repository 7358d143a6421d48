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
import secrets
import time
from typing import Any

from app.sandbox import media_assets
from app.sandbox.errors import GraphError, invalid_param, webhook_error
from app.sandbox.media_store import MediaStore
from app.sandbox.models import (
    LIMIT_TIERS,
    QUALITY_RATINGS,
    SERVICE_WINDOW_S,
    Faults,
    Number,
    SentRecord,
)
from app.sandbox.template_store import TemplateStore
from app.sandbox.validation import ParsedSend, normalise_to
from app.sandbox.webhooks import WebhookDispatcher

_UNSET: Any = object()
_MEDIA_KINDS = frozenset(media_assets.SUPPORTED)


class SandboxState:
    """The sandbox's whole world: numbers, tokens, templates, media, sends, faults, webhooks.

    ``webhook_retry_base_s`` is the first retry delay (doubling each attempt, at most
    ``webhook_max_attempts`` attempts); tests set it to a few milliseconds.
    ``template_review_ms``, when set, approves new templates by itself after that delay.
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
    ) -> None:
        # Who may use /sandbox/control (comma-separated peer addresses, "*" for anyone): it can make
        # customers write, inject faults and register numbers, so by default only this host.
        self.control_from = control_from
        self.numbers: dict[str, Number] = {}
        self._token_wabas: dict[str, set[str]] = {}
        self.media = MediaStore()
        self.templates = TemplateStore(self)
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
        recipient_interval_s: float | None = None,
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
                            ("recipient_burst", recipient_burst), ("recipient_interval_s", recipient_interval_s)):
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

    def new_wamid(self, wa_id: str) -> str:
        raw = b"\x15\x02\x00\x11\x18\x12" + wa_id.encode() + next(self._counter).to_bytes(6, "big") + os.urandom(6)
        return "wamid.HBgL" + base64.b64encode(raw).decode()

    # ---- control: inbound ---------------------------------------------------------------

    def simulate_inbound(self, phone_number_id: str, from_: str, name: str, message: dict[str, Any], *,
                         timestamp: float | None = None) -> str:
        """A customer sends ``message`` (Meta's object minus id/from/timestamp); returns its wamid.

        Media types get a real generated file, registered under a new media id.  The
        customer's 24-h service window opens (or resets) at ``timestamp`` (default now).
        """
        number = self.numbers.get(phone_number_id)
        if number is None:
            raise invalid_param(f"Unknown phone_number_id {phone_number_id!r}; register it first.")
        wa_id = normalise_to(from_)
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise invalid_param("message must be an object with a string 'type'.")
        kind = message["type"]
        sent_at = time.time() if timestamp is None else float(timestamp)
        wamid = self.new_wamid(wa_id)
        out: dict[str, Any] = {"from": wa_id, "id": wamid, "timestamp": str(int(sent_at)), "type": kind}
        for key, value in message.items():
            if key in ("type", "id", "from", "timestamp"):
                continue
            if key == "context":
                if not isinstance(value, dict) or not isinstance(value.get("id"), str):
                    raise invalid_param("message.context must be an object with a string 'id'.")
                value = {"from": number.display_digits, **value}
            out[key] = value
        if kind in _MEDIA_KINDS:
            out[kind] = self._inbound_media(number, kind, message.get(kind) or {}, name)
        elif kind not in out and kind not in ("unsupported",):
            raise invalid_param(f"message.{kind} is required for type {kind!r}.")
        if kind == "text" and not isinstance((out.get("text") or {}).get("body"), str):
            raise invalid_param("message.text.body must be a string.")
        number.last_inbound[wa_id] = max(number.last_inbound.get(wa_id, 0.0), sent_at)
        self.inbound_ids[wamid] = phone_number_id
        contact = {"profile": {"name": name}, "wa_id": wa_id}
        self.webhooks.emit(phone_number_id, ("message", (contact, out)))
        return wamid

    def _inbound_media(self, number: Number, kind: str, given: dict[str, Any], name: str) -> dict[str, Any]:
        if not isinstance(given, dict):
            raise invalid_param(f"message.{kind} must be an object.")
        label = str(given.get("caption") or given.get("filename") or f"{kind} from {name}")
        try:
            data, mime = media_assets.generate(kind, given.get("mime_type"), label=label)
        except ValueError as exc:
            raise invalid_param(str(exc)) from None
        filename = given.get("filename")
        if kind == "document" and not filename:
            filename = "document.txt" if mime == "text/plain" else "document.pdf"
        item = self.media.add(self.new_id(), number, data, mime, ttl_s=7 * 86400, filename=filename)
        obj = {k: v for k, v in given.items() if k not in ("id", "sha256", "mime_type", "url")}
        # Webhooks carry the base64 digest (as Meta's real payloads do); GET /{media_id} the hex one.
        obj.update({"mime_type": mime, "sha256": item.sha256_b64, "id": item.id})
        if kind == "document":
            obj["filename"] = filename
        if kind == "audio":
            obj.setdefault("voice", False)
        if kind == "sticker":
            obj.setdefault("animated", False)
        return obj

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
        """Forget everything: numbers, templates, media, sends, faults, queued webhooks."""
        self.numbers.clear()
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

    def set_template_status(self, template_id: str, status: str, reason: str | None = None) -> None:
        """Change a template's status and post the ``message_template_status_update`` webhook."""
        self.templates.set_status(template_id, status, reason)

    # ---- graph: sending -----------------------------------------------------------------

    def accept_send(self, number: Number, parsed: ParsedSend, body: Any) -> dict[str, Any]:
        """Apply Meta's send-time rules; on success record the send and schedule its webhooks."""
        category = "service"
        if parsed.type == "template":
            template = self.templates.for_send(number.waba_id, parsed)
            category = template.category.lower()
        now = time.time()
        if parsed.wa_id == number.display_digits:
            raise GraphError(131021, "Recipient phone number cannot be the same as the sender's.")
        sends = number.sends
        cutoff = now - 1.0
        while sends and sends[0] <= cutoff:
            sends.popleft()
        if len(sends) >= number.mps:
            raise GraphError(130429, f"Message failed to send because there were too many messages sent from "
                                     f"this phone number ({number.mps} messages per second).")
        bucket = number.pairs.get(parsed.wa_id)
        tokens = float(number.recipient_burst) if bucket is None else min(
            float(number.recipient_burst), bucket[0] + (now - bucket[1]) / number.recipient_interval_s)
        if tokens < 1.0:
            raise GraphError(131056, "Message failed to send because there were too many messages sent from this "
                                     "phone number to the same phone number in a short period of time.")
        sends.append(now)
        number.pairs[parsed.wa_id] = [tokens - 1.0, now]
        wamid = self.new_wamid(parsed.wa_id)
        self.sent.append(SentRecord(number.phone_number_id, wamid, parsed.to, parsed.type, body, now))
        self._schedule_outcome(number, parsed, wamid, category, now)
        message: dict[str, Any] = {"id": wamid}
        if parsed.type == "template":
            message["message_status"] = "accepted"
        return {"messaging_product": "whatsapp", "contacts": [{"input": parsed.to, "wa_id": parsed.wa_id}],
                "messages": [message]}

    def _schedule_outcome(self, number: Number, parsed: ParsedSend, wamid: str, category: str, now: float) -> None:
        base: dict[str, Any] = {"id": wamid, "recipient_id": parsed.wa_id}
        if parsed.biz_opaque_callback_data is not None:
            base["biz_opaque_callback_data"] = parsed.biz_opaque_callback_data
        error: dict[str, Any] | None = None
        if parsed.type != "template" and now - number.last_inbound.get(parsed.wa_id, -1e18) > SERVICE_WINDOW_S:
            error = webhook_error(131047, "Message failed to send because more than 24 hours have passed "
                                          "since the customer last replied to this number.")
        elif parsed.media_id is not None and self.media.get(parsed.media_id, now) is None:
            error = webhook_error(131053, f"Unable to retrieve media: media id {parsed.media_id} was not "
                                          "found or has expired.")
        emit = self.webhooks.emit
        pid = number.phone_number_id
        if error is not None:
            emit(pid, ("status", {**base, "status": "failed", "timestamp": str(int(now)), "errors": [error]}))
            return
        conversation, pricing = self._conversation(number, parsed.wa_id, category, now)
        sent = {**base, "status": "sent", "timestamp": str(int(now)), "conversation": conversation,
                "pricing": pricing}
        emit(pid, ("status", sent))
        later = {"conversation": {"id": conversation["id"], "origin": conversation["origin"]}, "pricing": pricing}
        delivered_at = None
        if number.delivered_after_ms is not None:
            delivered_at = now + number.delivered_after_ms / 1000
            emit(pid, ("status", {**base, "status": "delivered", "timestamp": str(int(delivered_at)), **later}),
                 due=delivered_at)
        if number.read_after_ms is not None:
            read_at = max(now + number.read_after_ms / 1000, delivered_at or 0.0)  # never before delivered
            emit(pid, ("status", {**base, "status": "read", "timestamp": str(int(read_at)), **later}), due=read_at)

    def _conversation(self, number: Number, wa_id: str, category: str, now: float
                      ) -> tuple[dict[str, Any], dict[str, Any]]:
        key = (wa_id, category)
        current = number.conversations.get(key)
        if current is None or current[1] <= now:
            current = (secrets.token_hex(16), now + SERVICE_WINDOW_S)
            number.conversations[key] = current
        conversation = {"id": current[0], "expiration_timestamp": str(int(current[1])), "origin": {"type": category}}
        pricing = {"billable": True, "pricing_model": "CBP", "category": category}
        return conversation, pricing

    def mark_read(self, number: Number, message_id: str) -> None:
        """Mark-as-read: only messages this number received can be marked (100 otherwise)."""
        if self.inbound_ids.get(message_id) != number.phone_number_id:
            raise invalid_param(f"Param message_id ({message_id}) is not a message received by this number.",
                                message="(#100) Invalid parameter")

