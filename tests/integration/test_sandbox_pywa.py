"""Every webhook kind the sandbox posts parses in pywa 4.5.0, the most complete Python client.

The sandbox runs with ``webhook_batch_size=1`` so each post holds one event: pywa reads only
``entry[0].changes[0]`` and ``messages[0]`` / ``statuses[0]`` of a post (Meta may batch more).
Each signed post goes through pywa's own signature check and update resolution
(``WhatsApp._get_handler_type`` + the update type's ``from_update``), and every field pywa
exposes where Meta's 2026 shape has it (user BSUID / wa_id / name / username, message id /
timestamp / type, status pricing, group id, ...) must be set.

pywa 4.5.0 has no update type for the Groups webhooks fields (``group_lifecycle_update``,
``group_participants_update``): those posts are checked for pywa's signature validation and
``RawUpdate`` accessors, and against Meta's own sample (conformance/webhooks/meta_group_*.json).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pywa import WhatsApp
from pywa import types as pt
from pywa.types.base_update import RawUpdate

from app.sandbox import SandboxState, create_sandbox_app
from app.sandbox.users import bsuid_for
from app.sandbox.webhooks import build_envelope
from tests.integration.test_sandbox_fixtures import (  # noqa: F401 - fixtures
    CUSTOMER,
    PHONE_ID,
    SECRET,
    TOKEN,
    WABA_ID,
    Receiver,
    Sandbox,
    auth,
    receiver_server,
)
from tests.support.servers import serve

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
GROUP_FIELDS = ("group_lifecycle_update", "group_participants_update")
OTHER = "15557650002"


@pytest.fixture(scope="module")
def one_event_server() -> Iterator[tuple[SandboxState, str]]:
    state = SandboxState(webhook_retry_base_s=0.02, webhook_max_attempts=4, webhook_timeout_s=2.0,
                         webhook_batch_size=1)
    with serve(create_sandbox_app(state)) as base:
        yield state, base


@pytest.fixture
def sandbox(one_event_server: tuple[SandboxState, str], receiver_server: tuple[Receiver, str]) -> Sandbox:
    state, base = one_event_server
    receiver, receiver_base = receiver_server
    state.reset()
    time.sleep(0.05)
    receiver.clear()
    return Sandbox(state, base, receiver, f"{receiver_base}/hook")


def pywa_client() -> WhatsApp:
    return WhatsApp(phone_id=PHONE_ID, token=TOKEN, server=None, app_secret=SECRET, verify_token="verify",
                    waba_id=WABA_ID, validate_updates=True, filter_updates=True)


def parse(wa: WhatsApp, body: bytes, signature: str) -> tuple[RawUpdate, Any]:
    """pywa's own path for a post: signature check, handler resolution, ``from_update``."""
    assert wa.webhook_update_validator(body, signature) is None, "pywa rejected the signature"
    raw = RawUpdate(body, hmac_header=signature, update_hash=hashlib.sha256(body).hexdigest())
    handler = wa._get_handler_type(raw)
    if handler is None:
        return raw, None
    return raw, wa._handlers_to_updates[handler].from_update(client=wa, update=raw)


def kind_of(envelope: dict[str, Any]) -> str:
    """A label for the webhook kind of a one-event post."""
    change = envelope["entry"][0]["changes"][0]
    field, value = change["field"], change["value"]
    if field == "message_template_status_update":
        return f"template {value['event']}"
    if field in GROUP_FIELDS:
        return f"{field} {value['groups'][0]['type']}"
    if "statuses" in value:
        status = value["statuses"][0]
        if status.get("recipient_type") == "group":
            return f"group status {status['status']}"
        return f"status {status['status']} via {'phone' if 'recipient_id' in status else 'BSUID'}"
    message = value["messages"][0]
    kind = message["type"]
    sub = (message.get(kind) or {}).get("type") if kind in ("interactive", "system") else None
    label = f"{kind} {sub}" if sub else kind
    if kind == "audio" and message["audio"].get("voice"):
        label = "audio voice"
    if kind == "text" and "context" in message:
        label = "text reply"
    if "referral" in message:
        label = "text from an ad (referral)"
    if "group_id" in message:
        label = f"group {label}"
    elif "from" not in message:
        label = f"username-only {label}"
    return label


EXPECTED: dict[str, type] = {
    "text": pt.Message, "text reply": pt.Message, "text from an ad (referral)": pt.Message,
    "image": pt.Message, "video": pt.Message, "audio": pt.Message, "audio voice": pt.Message,
    "document": pt.Message, "sticker": pt.Message, "location": pt.Message, "contacts": pt.Message,
    "reaction": pt.Message, "order": pt.Message, "unsupported": pt.Message,
    "interactive button_reply": pt.CallbackButton, "interactive list_reply": pt.CallbackSelection,
    "interactive nfm_reply": pt.FlowCompletion, "button": pt.CallbackButton,
    "revoke": pt.DeletedMessage, "edit": pt.EditedMessage,
    "system customer_identity_changed": pt.IdentityChange,
    "system user_changed_number": pt.PhoneNumberChange, "system user_changed_user_id": pt.PhoneNumberChange,
    "username-only text": pt.Message, "username-only image": pt.Message,
    "group text": pt.Message, "group image": pt.Message,
    "status sent via phone": pt.MessageStatus, "status delivered via phone": pt.MessageStatus,
    "status read via phone": pt.MessageStatus, "status failed via phone": pt.MessageStatus,
    "status sent via BSUID": pt.MessageStatus, "status delivered via BSUID": pt.MessageStatus,
    "status read via BSUID": pt.MessageStatus, "status failed via BSUID": pt.MessageStatus,
    "group status sent": pt.GroupMessageStatuses, "group status delivered": pt.GroupMessageStatuses,
    "group status read": pt.GroupMessageStatuses, "group status failed": pt.GroupMessageStatuses,
    "template APPROVED": pt.TemplateStatusUpdate, "template REJECTED": pt.TemplateStatusUpdate,
    "template PAUSED": pt.TemplateStatusUpdate,
}
NO_PYWA_TYPE = {"group_lifecycle_update group_create", "group_lifecycle_update group_delete",
                "group_participants_update group_participants_add",
                "group_participants_update group_participants_remove"}


def check_user(user: Any, contact: dict[str, Any]) -> None:
    assert user.bsuid == contact["user_id"] and user.bsuid
    assert user.wa_id == contact.get("wa_id")
    assert user.name == contact["profile"].get("name")
    assert user.username == contact["profile"].get("username")


def check(update: Any, envelope: dict[str, Any]) -> None:
    """Every field pywa exposes is set where Meta's shape has it."""
    value = envelope["entry"][0]["changes"][0]["value"]
    if isinstance(update, pt.TemplateStatusUpdate):
        assert update.template_id and update.template_name and update.template_language and update.category
        assert update.new_status.value == value["event"] and update.timestamp
        if value["event"] == "REJECTED":
            assert update.reason is not None and update.rejection_info is not None
            assert update.rejection_info.reason and update.rejection_info.recommendation
        return
    assert update.id and update.timestamp
    if isinstance(update, pt.GroupMessageStatuses):
        assert update.group_id == value["statuses"][0]["recipient_id"] and len(update) == len(value["statuses"])
        for status, contact in zip(update.statuses, value["contacts"], strict=True):
            check_user(status.from_user, contact)
            check_status(status, value["statuses"][0]["status"])
        return
    assert update.metadata.phone_number_id == PHONE_ID and update.waba_id == WABA_ID
    if isinstance(update, pt.MessageStatus):
        check_user(update.from_user, value["contacts"][0])
        check_status(update, value["statuses"][0]["status"])
        return
    message = value["messages"][0]
    if isinstance(update, pt.PhoneNumberChange):
        assert "contacts" not in value  # Meta: system messages carry no contacts array
        assert update.from_user.wa_id == message["from"] and update.old_wa_id == message["from"]
        assert update.new_user_id == message["system"]["user_id"] and update.body
        assert update.new_wa_id == message["system"].get("wa_id")
        return
    if isinstance(update, pt.IdentityChange):  # pywa reads only user_id / wa_id of this contact
        assert update.from_user.bsuid == message["from_user_id"] == value["contacts"][0]["user_id"]
        assert update.from_user.wa_id == message["from"]
        assert update.identity.hash and update.identity.created_timestamp and update.body
        return
    check_user(update.from_user, value["contacts"][0])
    assert update.from_user.bsuid == message["from_user_id"]
    if isinstance(update, (pt.CallbackButton, pt.CallbackSelection)):
        assert update.data and update.title and update.reply_to_message is not None
        return
    if isinstance(update, pt.FlowCompletion):
        assert update.token and update.response and update.body
        return
    if isinstance(update, pt.DeletedMessage):
        assert update.original_message_id == message["revoke"]["original_message_id"]
        return
    if isinstance(update, pt.EditedMessage):
        assert update.original_message_id and update.message.text == message["edit"]["message"]["text"]["body"]
        return
    assert isinstance(update, pt.Message) and update.type.value == message["type"]
    assert update.chat.id == message.get("group_id", update.from_user.bsuid)
    if message["type"] in ("image", "video", "audio", "document", "sticker"):
        media = update.media
        assert media is not None and media.id and media.sha256 and media.mime_type and media.url
    attribute = {"text": "text", "location": "location", "contacts": "contacts", "reaction": "reaction",
                 "order": "order"}.get(message["type"])
    if attribute:
        assert getattr(update, attribute), attribute
    if message["type"] == "unsupported":
        assert update.error is not None and update.error.code == 131051
    if "referral" in message:
        assert update.referral is not None and update.referral.ctwa_clid
    if "context" in message and message["type"] == "text":
        assert update.reply_to_message is not None and update.reply_to_message.id == message["context"]["id"]


def check_status(status: Any, kind: str) -> None:
    assert status.status.value == kind
    if kind == "failed":
        assert status.error is not None and status.pricing is None
        return
    pricing = status.pricing
    assert pricing is not None and pricing.model.value == "PMP" and pricing.type is not None
    assert pricing.billable is not None and pricing.category.value != "UNKNOWN"
    assert status.conversation is None  # conversation-based pricing is gone from v24


async def settle(sandbox: Sandbox, quiet: float = 0.3, timeout: float = 15.0) -> None:
    """Wait until every queued webhook was delivered and nothing new came for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    seen, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = len(sandbox.receiver.posts)
        if count != seen:
            seen, since = count, time.monotonic()
        elif sandbox.state.webhooks.pending() == 0 and time.monotonic() - since >= quiet:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("webhooks did not settle")


async def drive_everything(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    """Make the sandbox post every webhook kind it can send."""
    control = sandbox.control
    await sandbox.register(client, delivered_after_ms=20, read_after_ms=40)

    async def write(message: dict[str, Any], **extra: Any) -> dict[str, Any]:
        body = {"phone_number_id": PHONE_ID, "name": "Ann Customer", "message": message, **extra}
        if "user_id" not in extra:
            body["from"] = CUSTOMER
        response = await client.post(f"{control}/inbound", json=body)
        assert response.status_code == 200, response.text
        await settle(sandbox, quiet=0.05)
        return response.json()

    async def send(body: dict[str, Any]) -> str:
        response = await sandbox.send(client, {"messaging_product": "whatsapp", **body})
        assert response.status_code == 200, response.text
        await settle(sandbox, quiet=0.05)
        return response.json()["messages"][0]["id"]

    first = (await write({"type": "text", "text": {"body": "hello"}}))["wamid"]
    await write({"type": "text", "text": {"body": "and this"}, "context": {"id": first}})
    await write({"type": "text", "text": {"body": "from the ad"}, "referral": {
        "source_url": "https://fb.me/ad", "source_id": "120", "source_type": "ad", "headline": "Sale",
        "body": "Half price", "media_type": "image", "image_url": "https://example.com/ad.jpg", "ctwa_clid": "ARA1"}})
    for kind, given in (("image", {"caption": "look"}), ("video", {"caption": "clip"}), ("audio", {}),
                        ("audio", {"voice": True}), ("document", {"filename": "invoice.pdf"}), ("sticker", {})):
        await write({"type": kind, kind: given})
    await write({"type": "location", "location": {"latitude": 38.71, "longitude": -9.14, "name": "Café"}})
    await write({"type": "contacts", "contacts": [{"name": {"formatted_name": "Bo", "first_name": "Bo"},
                                                   "phones": [{"phone": "+15550001", "wa_id": "15550001"}]}]})
    await write({"type": "reaction", "reaction": {"message_id": first, "emoji": "👍"}})
    await write({"type": "order", "order": {"catalog_id": "cat", "text": "please", "product_items": [
        {"product_retailer_id": "sku-1", "quantity": 2, "item_price": 9.5, "currency": "EUR"}]}})
    await write({"type": "unsupported", "unsupported": {"type": "poll"}})
    # Replies to our interactive / template messages quote them (the sandbox fills the context in).
    await send({"to": "+" + CUSTOMER, "type": "interactive", "interactive": {
        "type": "button", "body": {"text": "Pick"},
        "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yes"}}]}}})
    await write({"type": "interactive", "interactive": {"type": "button_reply",
                                                        "button_reply": {"id": "yes", "title": "Yes"}}})
    await write({"type": "interactive", "interactive": {"type": "list_reply", "list_reply": {
        "id": "row-1", "title": "Row", "description": "First row"}}})
    await write({"type": "interactive", "interactive": {"type": "nfm_reply", "nfm_reply": {
        "name": "flow", "body": "Sent", "response_json": json.dumps({"flow_token": "tok-1", "size": "M"})}}})
    await write({"type": "button", "button": {"payload": "STOP", "text": "Stop promotions"}})
    await write({"type": "revoke", "revoke": {"original_message_id": first}})
    await write({"type": "edit", "edit": {"original_message_id": first,
                                          "message": {"type": "text", "text": {"body": "hello!"}}}})
    await write({"type": "system", "system": {"body": "User identity changed", "type": "customer_identity_changed"}})
    # Statuses: sent / delivered / read (inside the window: free), failed (131047: never wrote).
    await send({"to": "+" + CUSTOMER, "type": "text", "text": {"body": "thanks"}})
    await send({"to": "+" + OTHER, "type": "text", "text": {"body": "hi stranger"}})
    # A username-only customer: BSUID and username, no phone; answered through `recipient`.
    shy = await write({"type": "text", "text": {"body": "no number"}}, user_id="GB.44556677889900112233",
                      username="shy.customer", name="Shy")
    await write({"type": "image", "image": {}}, user_id=shy["user_id"])
    await send({"recipient": shy["user_id"], "type": "text", "text": {"body": "hello shy"}})
    sandbox.state.numbers[PHONE_ID].last_inbound.pop(shy["user_id"])  # the window closes: a failed status
    await send({"recipient": shy["user_id"], "type": "text", "text": {"body": "window closed"}})
    # Groups: create (lifecycle), failed send (no group window), a participant writes, sends.
    created = await client.post(f"{control}/groups", json={"phone_number_id": PHONE_ID, "subject": "Team",
                                                           "participants": ["+" + CUSTOMER, shy["user_id"]]})
    assert created.status_code == 201, created.text
    group_id = created.json()["group_id"]
    await settle(sandbox, quiet=0.05)
    await send({"recipient_type": "group", "to": group_id, "type": "text", "text": {"body": "too early"}})
    await write({"type": "text", "text": {"body": "hi group"}}, group_id=group_id)
    await write({"type": "image", "image": {"caption": "group pic"}}, user_id=shy["user_id"], group_id=group_id)
    await send({"recipient_type": "group", "to": group_id, "type": "text", "text": {"body": "hello group"}})
    for action, who in (("add", "+" + OTHER), ("remove", "+" + OTHER)):
        changed = await client.post(f"{control}/groups/{group_id}/participants",
                                    json={"action": action, "participants": [who]})
        assert changed.status_code == 200, changed.text
    assert (await client.delete(f"{control}/groups/{group_id}")).status_code == 200
    # Identity changes: a shared new number, then a BSUID change without a shared number.
    for body in ({"wa_id": OTHER, "new_wa_id": "15557650003"}, {"wa_id": "15557650003", "share_number": False}):
        changed = await client.post(f"{control}/users/change_number", json={"phone_number_id": PHONE_ID, **body})
        assert changed.status_code == 200, changed.text
    # Template status updates, a rejection with rejection_info.
    for status in ("APPROVED", "REJECTED", "PAUSED"):
        seeded = await client.post(f"{control}/templates", json={
            "waba_id": WABA_ID, "name": f"t_{status.lower()}", "language": "en_US", "category": "MARKETING",
            "status": "PENDING", "components": [{"type": "BODY", "text": "Hi there"}]})
        await client.post(f"{control}/templates/{seeded.json()['id']}/status",
                          json={"status": status, "reason": "INVALID_FORMAT" if status == "REJECTED" else None})
    await settle(sandbox)


async def test_every_webhook_kind_parses_in_pywa(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        await drive_everything(sandbox, client)
        wa = pywa_client()
        seen: dict[str, str] = {}
        media_checked = 0
        for headers, body, status in list(sandbox.receiver.posts):
            assert status == 200
            envelope = json.loads(body)
            assert len(envelope["entry"]) == 1 and len(envelope["entry"][0]["changes"]) == 1  # one event a post
            label = kind_of(envelope)
            raw, update = parse(wa, body, headers["x-hub-signature-256"])
            if label in NO_PYWA_TYPE:
                assert update is None and raw.id == WABA_ID and raw.field in GROUP_FIELDS
                seen.setdefault(label, "no pywa type (RawUpdate only)")
                continue
            assert label in EXPECTED, f"unexpected webhook kind {label!r}: {envelope}"
            assert type(update) is EXPECTED[label], (label, update, envelope)
            check(update, envelope)
            seen.setdefault(label, type(update).__name__)
            media = getattr(update, "media", None) if isinstance(update, pt.Message) else None
            if media is not None:  # the webhook's media url downloads (bearer token) and matches sha256
                download = await client.get(media.url, headers=auth())
                assert download.status_code == 200, download.text
                assert hashlib.sha256(download.content).digest().hex() == \
                    sandbox.state.media.get(media.id).sha256_hex  # type: ignore[union-attr]
                media_checked += 1
    missing = (set(EXPECTED) | NO_PYWA_TYPE) - set(seen)
    assert not missing, f"kinds the drive did not produce: {sorted(missing)}"
    assert media_checked == 8  # 6 kinds, a username-only and a group image
    parsed = sum(1 for how in seen.values() if not how.startswith("no pywa"))
    print(f"\npywa 4.5.0 parses {parsed} of {len(seen)} webhook kinds the sandbox sends "
          f"({len(seen) - parsed} group lifecycle/participants kinds have no pywa type):")
    for label in sorted(seen):
        print(f"  {label:45} -> {seen[label]}")


def test_group_webhooks_match_metas_sample() -> None:
    """Shape of the Groups webhooks pywa does not type: the keys of Meta's sample (plus BSUIDs)."""
    sample = json.loads((FIXTURES / "meta_group_lifecycle_update.json").read_text())
    state = SandboxState()
    state.register_number(PHONE_ID, WABA_ID, "+1 555 000 1001", TOKEN, SECRET, "http://127.0.0.1:9/hook")
    _, added = state.groups.create(PHONE_ID, "Team", [CUSTOMER], "desc")
    assert added == [{"input": CUSTOMER, "wa_id": CUSTOMER, "user_id": bsuid_for(WABA_ID, CUSTOMER)}]
    (event,) = state.webhooks._outboxes[PHONE_ID]
    envelope = build_envelope(state.numbers[PHONE_ID], [event])
    ours, metas = envelope["entry"][0]["changes"][0], sample["entry"][0]["changes"][0]
    assert ours["field"] == metas["field"] and set(ours["value"]) == set(metas["value"])
    assert set(ours["value"]["groups"][0]) == set(metas["value"]["groups"][0])
    assert set(ours["value"]["groups"][0]["added_participants"][0]) == \
        set(metas["value"]["groups"][0]["added_participants"][0]) | {"user_id"}
