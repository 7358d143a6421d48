"""The sandbox's 2026 identities and pricing over real HTTP: BSUIDs, usernames, groups, PMP.

BSUIDs are predictable (``app.sandbox.users.bsuid_for``), a customer known by phone and BSUID is
the same customer either way (window, pacing), sends by ``recipient`` answer Meta's
``contacts[{input, user_id}]``, authentication templates refuse BSUIDs (131062), groups follow
the Groups API's rules and codes, statuses carry per-message pricing.
"""

from __future__ import annotations

from typing import Any

import httpx

from app.sandbox.users import bsuid_for
from tests.integration.test_sandbox_fixtures import (  # noqa: F401 - fixtures
    CUSTOMER,
    PHONE_ID,
    WABA_ID,
    Sandbox,
    assert_graph_error,
    receiver_server,
    sandbox,
    sandbox_server,
    text,
    wait_for,
)

SHY = "GB.44556677889900112233"


def by_recipient(user_id: str, body: str = "hi") -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "recipient": user_id, "type": "text",
            "text": {"body": body}}


def template(name: str, to: dict[str, str]) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", **to, "type": "template",
            "template": {"name": name, "language": {"code": "en_US"}}}


async def seed(client: httpx.AsyncClient, sandbox: Sandbox, name: str, category: str) -> None:
    components: list[dict[str, Any]] = [{"type": "BODY", "text": "Your code is 123" if category == "AUTHENTICATION"
                                         else "Hello there"}]
    response = await client.post(f"{sandbox.control}/templates", json={
        "waba_id": WABA_ID, "name": name, "language": "en_US", "category": category, "components": components})
    assert response.status_code == 201, response.text


async def shy_writes(client: httpx.AsyncClient, sandbox: Sandbox, **extra: Any) -> None:
    """The username-only customer (no phone) writes."""
    response = await client.post(f"{sandbox.control}/inbound", json={
        "phone_number_id": PHONE_ID, "user_id": SHY, "username": "shy.one", "name": "Shy",
        "message": {"type": "text", "text": {"body": "hi"}}, **extra})
    assert response.status_code == 200, response.text


def statuses_of(sandbox: Sandbox, wamid: str, status: str = "sent") -> list[dict[str, Any]]:
    return [s for s in sandbox.receiver.statuses() if s["id"] == wamid and s["status"] == status]


async def test_bsuids_are_predictable_and_exposed(sandbox: Sandbox) -> None:
    expected = bsuid_for(WABA_ID, CUSTOMER)
    assert expected.startswith("US.") and len(expected.split(".")[1]) == 20
    assert bsuid_for(WABA_ID, "447700900123").startswith("GB.") and bsuid_for("other", CUSTOMER) != expected
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        looked_up = await client.get(f"{sandbox.control}/users", params={"phone_number_id": PHONE_ID,
                                                                         "wa_id": "+" + CUSTOMER})
        assert looked_up.json()["data"][0]["user_id"] == expected  # every phone has one, even before writing
        answer = await client.post(f"{sandbox.control}/inbound", json={
            "phone_number_id": PHONE_ID, "from": CUSTOMER, "message": {"type": "text", "text": {"body": "hi"}}})
        assert answer.json()["user_id"] == expected and answer.json()["wa_id"] == CUSTOMER
        shy = await client.post(f"{sandbox.control}/inbound", json={
            "phone_number_id": PHONE_ID, "user_id": SHY, "username": "shy.one", "name": "Shy",
            "message": {"type": "text", "text": {"body": "hi"}}})
        assert shy.json() == {"wamid": shy.json()["wamid"], "user_id": SHY, "wa_id": None}
        by_name = await client.get(f"{sandbox.control}/users", params={"phone_number_id": PHONE_ID,
                                                                       "username": "shy.one"})
        assert by_name.json()["data"][0]["user_id"] == SHY
        for bad in ({"user_id": "not-a-bsuid"}, {"username": "nobody"}, {}):
            refused = await client.post(f"{sandbox.control}/inbound", json={
                "phone_number_id": PHONE_ID, "message": {"type": "text", "text": {"body": "x"}}, **bad})
            assert refused.status_code == 400, bad
    received = await wait_for(lambda: sandbox.receiver.messages() if len(sandbox.receiver.messages()) == 2 else None)
    value, message = received[1]
    assert value["contacts"] == [{"profile": {"name": "Shy", "username": "shy.one"}, "user_id": SHY}]
    assert "from" not in message and message["from_user_id"] == SHY


async def test_a_customer_is_the_same_by_phone_or_by_bsuid(sandbox: Sandbox) -> None:
    user_id = bsuid_for(WABA_ID, CUSTOMER)
    async with httpx.AsyncClient() as client:
        await sandbox.register(client, recipient_burst=2)
        await sandbox.inbound(client, {"type": "text", "text": {"body": "hi"}})
        sent = await sandbox.send(client, by_recipient(user_id))
        assert sent.status_code == 200, sent.text
        assert sent.json()["contacts"] == [{"input": user_id, "user_id": user_id}]
        by_phone = await sandbox.send(client, text())
        assert by_phone.json()["contacts"] == [{"input": "+" + CUSTOMER, "wa_id": CUSTOMER}]
        # One pair-rate bucket for both addresses (burst 2 used up).
        assert_graph_error(await sandbox.send(client, by_recipient(user_id)), 400, 131056)
        both = {**text(), "recipient": "GB.1"}  # to takes precedence over recipient, as Meta documents
        sandbox.state.numbers[PHONE_ID].pairs.clear()
        assert (await sandbox.send(client, both)).json()["contacts"][0]["wa_id"] == CUSTOMER
        assert_graph_error(await sandbox.send(client, by_recipient("US.999")), 400, 131009)  # unknown BSUID
        assert_graph_error(await sandbox.send(client, by_recipient("nope")), 400, 131009)
        log = (await client.get(f"{sandbox.control}/sent")).json()["data"]
    assert log[0]["to"] is None and log[0]["recipient"] == user_id and log[0]["user_id"] == user_id
    wamid = sent.json()["messages"][0]["id"]
    status = (await wait_for(lambda: statuses_of(sandbox, wamid)))[0]
    assert "recipient_id" not in status and status["recipient_user_id"] == user_id  # inside the window: not failed
    assert status["pricing"]["type"] == "free_customer_service"


async def test_authentication_templates_refuse_bsuid_recipients_131062(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        await seed(client, sandbox, "otp", "AUTHENTICATION")
        await shy_writes(client, sandbox)
        refused = await sandbox.send(client, template("otp", {"recipient": SHY}))
        assert_graph_error(refused, 400, 131062)
        by_phone = await sandbox.send(client, template("otp", {"to": "+15550009999"}))
        assert by_phone.status_code == 200
    price = (await wait_for(lambda: statuses_of(sandbox, by_phone.json()["messages"][0]["id"])))[0]["pricing"]
    assert price == {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "authentication"}


async def test_per_message_pricing(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        for name, category in (("promo", "MARKETING"), ("order_update", "UTILITY")):
            await seed(client, sandbox, name, category)
        await sandbox.inbound(client, {"type": "text", "text": {"body": "hi"}})
        await sandbox.inbound(client, {"type": "text", "text": {"body": "ad"}, "referral": {"ctwa_clid": "A1"}},
                              sender="15550004444")
        cases = {
            "free-form in window": (await sandbox.send(client, text())),
            "utility in window": (await sandbox.send(client, template("order_update", {"to": "+" + CUSTOMER}))),
            "marketing in window": (await sandbox.send(client, template("promo", {"to": "+" + CUSTOMER}))),
            "utility, no window": (await sandbox.send(client, template("order_update", {"to": "+15550003333"}))),
            "free entry point": (await sandbox.send(client, template("promo", {"to": "+15550004444"}))),
        }
    expected = {
        "free-form in window": (False, "free_customer_service", "service"),
        "utility in window": (False, "free_customer_service", "utility"),
        "marketing in window": (True, "regular", "marketing"),
        "utility, no window": (True, "regular", "utility"),
        "free entry point": (False, "free_entry_point", "referral_conversion"),
    }
    for label, response in cases.items():
        status = (await wait_for(lambda r=response: statuses_of(sandbox, r.json()["messages"][0]["id"])))[0]
        billable, kind, category = expected[label]
        assert status["pricing"] == {"billable": billable, "pricing_model": "PMP", "type": kind,
                                     "category": category}, label


async def test_groups(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        await shy_writes(client, sandbox)
        created = await client.post(f"{sandbox.control}/groups", json={
            "phone_number_id": PHONE_ID, "subject": "Team", "participants": ["+" + CUSTOMER, SHY]})
        assert created.status_code == 201, created.text
        group_id = created.json()["group_id"]
        assert [p["user_id"] for p in created.json()["added_participants"]] == [bsuid_for(WABA_ID, CUSTOMER), SHY]
        send = {"messaging_product": "whatsapp", "recipient_type": "group", "to": group_id, "type": "text",
                "text": {"body": "hello"}}
        early = await sandbox.send(client, send)  # no participant wrote yet: accepted, then 131047
        assert early.status_code == 200 and early.json()["contacts"] == [{"input": group_id}]
        await sandbox.inbound(client, {"type": "text", "text": {"body": "hi all"}}, group_id=group_id)
        sent = await sandbox.send(client, send)
        interactive = {**send, "type": "interactive", "interactive": {"type": "button", "body": {"text": "?"},
                       "action": {"buttons": [{"type": "reply", "reply": {"id": "a", "title": "A"}}]}}}
        del interactive["text"]
        assert_graph_error(await sandbox.send(client, interactive), 400, 131051)
        assert_graph_error(await sandbox.send(client, {**send, "to": "nope"}), 400, 131041)
        too_many = [f"+1555000{i:04d}" for i in range(9)]
        refused = await client.post(f"{sandbox.control}/groups", json={
            "phone_number_id": PHONE_ID, "subject": "Big", "participants": too_many})
        assert refused.json()["error"]["code"] == 131204
        outsider = await client.post(f"{sandbox.control}/inbound", json={
            "phone_number_id": PHONE_ID, "from": "15550007777", "group_id": group_id,
            "message": {"type": "text", "text": {"body": "let me in"}}})
        assert outsider.json()["error"]["code"] == 131212
        await sandbox.register(client, groups_enabled=False)
        assert_graph_error(await sandbox.send(client, send), 400, 131215)
        disabled = await client.post(f"{sandbox.control}/groups", json={
            "phone_number_id": PHONE_ID, "subject": "No", "participants": []})
        assert disabled.json()["error"]["code"] == 131215
    failed = await wait_for(lambda: statuses_of(sandbox, early.json()["messages"][0]["id"], "failed"))
    assert len(failed) == 2 and failed[0]["errors"][0]["code"] == 131047
    ok = await wait_for(lambda: (lambda s: s if len(s) == 2 else None)(statuses_of(sandbox, sent.json()["messages"][0]["id"])))
    assert {s["recipient_participant_user_id"] for s in ok} == {bsuid_for(WABA_ID, CUSTOMER), SHY}
    assert all(s["recipient_type"] == "group" and s["recipient_id"] == group_id for s in ok)
    assert ok[0]["pricing"] == {"billable": False, "pricing_model": "PMP", "type": "free_customer_service",
                                "category": "group_service"}
    group_message = next(m for _, m in sandbox.receiver.messages() if m.get("group_id") == group_id)
    assert group_message["from"] == CUSTOMER


async def test_a_new_number_is_a_new_bsuid(sandbox: Sandbox) -> None:
    old = bsuid_for(WABA_ID, CUSTOMER)
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        await sandbox.inbound(client, {"type": "text", "text": {"body": "hi"}})
        changed = await client.post(f"{sandbox.control}/users/change_number", json={
            "phone_number_id": PHONE_ID, "wa_id": CUSTOMER, "new_wa_id": "+15557650003"})
        assert changed.status_code == 200, changed.text
        assert changed.json()["previous_user_id"] == old
        assert changed.json()["user_id"] == bsuid_for(WABA_ID, "15557650003")
        assert_graph_error(await sandbox.send(client, by_recipient(old)), 400, 131009)
        hidden = await client.post(f"{sandbox.control}/users/change_number", json={
            "phone_number_id": PHONE_ID, "user_id": changed.json()["user_id"], "share_number": False})
        assert hidden.json()["type"] == "user_changed_user_id" and hidden.json()["wa_id"] is None
    systems = await wait_for(lambda: (lambda m: m if len(m) == 2 else None)(
        [(v, m) for v, m in sandbox.receiver.messages() if m["type"] == "system"]))
    (value, first), (_, second) = systems
    assert "contacts" not in value
    assert first["from"] == CUSTOMER and first["from_user_id"] == old
    assert first["system"] == {"body": "User Ann Customer changed from 15557654321 to 15557650003",
                               "wa_id": "15557650003", "user_id": changed.json()["user_id"],
                               "type": "user_changed_number"}
    assert second["system"]["type"] == "user_changed_user_id" and "wa_id" not in second["system"]
    assert second["system"]["user_id"] == hidden.json()["user_id"] != changed.json()["user_id"]


async def test_rejected_template_carries_rejection_info(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        seeded = await client.post(f"{sandbox.control}/templates", json={
            "waba_id": WABA_ID, "name": "promo", "language": "en_US", "category": "MARKETING", "status": "PENDING",
            "components": [{"type": "BODY", "text": "Sale"}]})
        info = {"reason": "Too vague.", "recommendation": "Say what the offer is."}
        await client.post(f"{sandbox.control}/templates/{seeded.json()['id']}/status",
                          json={"status": "REJECTED", "reason": "PROMOTIONAL", "rejection_info": info})
    envelope = (await wait_for(lambda: sandbox.receiver.envelopes()))[0]
    value = envelope["entry"][0]["changes"][0]["value"]
    assert value["reason"] == "PROMOTIONAL" and value["rejection_info"] == info


async def test_inbound_media_url_downloads(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        await sandbox.inbound(client, {"type": "image", "image": {"caption": "x"}})
        _, message = (await wait_for(lambda: sandbox.receiver.messages()))[0]
        url = message["image"]["url"]
        assert "source=webhook" in url and "mid=" + message["image"]["id"] in url
        assert (await client.get(url)).status_code == 401  # the bearer token is required, as at Meta
        download = await client.get(url, headers={"Authorization": "Bearer tok-1001"})
    assert download.status_code == 200 and download.headers["content-type"] == "image/jpeg"
