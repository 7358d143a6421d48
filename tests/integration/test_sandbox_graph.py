"""Graph routes of the sandbox over real HTTP: shapes, Meta's error codes, rate limits.

Covers messages (190, 100/131009, 130429, 131056, 132001, 132000, mark-as-read), the phone
number node, the business profile and the control/sent log.  Media, templates and webhooks
have their own modules.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from tests.integration.test_sandbox_fixtures import (  # noqa: F401 - fixtures
    CUSTOMER,
    PHONE_ID,
    WABA_ID,
    Sandbox,
    assert_graph_error,
    auth,
    receiver_server,
    sandbox,
    sandbox_server,
    text,
)


async def test_send_text_returns_metas_exact_shape(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        await sandbox.inbound(client, {"type": "text", "text": {"body": "hi"}})
        response = await sandbox.send(client, text("Hello Ann"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"messaging_product", "contacts", "messages"}
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": "+" + CUSTOMER, "wa_id": CUSTOMER}]
    assert len(body["messages"]) == 1 and set(body["messages"][0]) == {"id"}
    assert re.fullmatch(r"wamid\.[A-Za-z0-9+/=]+", body["messages"][0]["id"])


async def test_version_segment_is_optional(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        response = await client.post(f"{sandbox.base}/sandbox/graph/{PHONE_ID}/messages", json=text(), headers=auth())
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic dG9r"}])
async def test_missing_or_wrong_token_is_401_code_190(sandbox: Sandbox, headers: dict[str, str]) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        response = await client.post(f"{sandbox.graph}/{PHONE_ID}/messages", json=text(), headers=headers)
        assert_graph_error(response, 401, 190)
        for method, path in (("GET", PHONE_ID), ("GET", f"{WABA_ID}/message_templates"),
                             ("GET", f"{PHONE_ID}/whatsapp_business_profile")):
            assert_graph_error(await client.request(method, f"{sandbox.graph}/{path}", headers=headers), 401, 190)


async def test_rotated_token_stops_working(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        await sandbox.register(client, access_token="tok-rotated")
        assert_graph_error(await sandbox.send(client, text()), 401, 190)
        assert (await sandbox.send(client, text(), token="tok-rotated")).status_code == 200


async def test_unknown_number_is_100_subcode_33(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        error = assert_graph_error(await sandbox.send(client, text(), phone_id="999999"), 400, 100)
    assert error["error_subcode"] == 33 and error["type"] == "GraphMethodException"


def _buttons(n: int) -> dict[str, Any]:
    return {"type": "button", "body": {"text": "Pick"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": f"b{i}", "title": f"B{i}"}} for i in range(n)]}}


def _list_rows(n: int) -> dict[str, Any]:
    return {"type": "list", "body": {"text": "Menu"}, "action": {"button": "Open", "sections": [
        {"title": "S", "rows": [{"id": f"r{i}", "title": f"Row {i}"} for i in range(n)]}]}}


BASE = {"messaging_product": "whatsapp", "to": "+" + CUSTOMER}
BAD_BODIES: list[tuple[str, Any, int, str]] = [
    ("not an object", ["x"], 100, "root"),
    ("no messaging_product", {"to": "+1555", "type": "text", "text": {"body": "x"}}, 100, "messaging_product"),
    ("no to", {"messaging_product": "whatsapp", "type": "text", "text": {"body": "x"}}, 100, "to"),
    ("to not a string", {**BASE, "to": 15557654321, "text": {"body": "x"}}, 100, "to"),
    ("bad to", {**BASE, "to": "call me", "text": {"body": "x"}}, 131009, "to"),
    ("unknown type", {**BASE, "type": "hologram", "hologram": {}}, 100, "type"),
    ("type object missing", {**BASE, "type": "image"}, 100, "image"),
    ("unknown top-level key", {**BASE, "text": {"body": "x"}, "colour": "red"}, 100, "colour"),
    ("unknown text key", {**BASE, "text": {"body": "x", "bold": True}}, 100, "bold"),
    ("text body not a string", {**BASE, "text": {"body": 5}}, 100, "text['body']"),
    ("text too long", {**BASE, "text": {"body": "x" * 4097}}, 100, "text['body']"),
    ("preview_url not bool", {**BASE, "text": {"body": "x", "preview_url": "yes"}}, 100, "preview_url"),
    ("four buttons", {**BASE, "type": "interactive", "interactive": _buttons(4)}, 131009, "buttons"),
    ("zero buttons", {**BASE, "type": "interactive", "interactive": _buttons(0)}, 131009, "buttons"),
    ("eleven rows", {**BASE, "type": "interactive", "interactive": _list_rows(11)}, 131009, "row"),
    ("button title too long", {**BASE, "type": "interactive", "interactive": {
        "type": "button", "body": {"text": "Pick"},
        "action": {"buttons": [{"type": "reply", "reply": {"id": "a", "title": "x" * 21}}]}}}, 131009, "title"),
    ("image with id and link", {**BASE, "type": "image", "image": {"id": "1", "link": "https://x/y.jpg"}},
     100, "image"),
    ("caption too long", {**BASE, "type": "image", "image": {"link": "https://x/y.jpg", "caption": "c" * 1025}},
     100, "caption"),
    ("audio caption", {**BASE, "type": "audio", "audio": {"id": "1", "caption": "no"}}, 100, "caption"),
    ("latitude out of range", {**BASE, "type": "location", "location": {"latitude": 91, "longitude": 0}},
     131009, "latitude"),
    ("template without language", {**BASE, "type": "template", "template": {"name": "x"}}, 100, "language"),
    ("reaction without message_id", {**BASE, "type": "reaction", "reaction": {"emoji": "x"}}, 100, "message_id"),
    ("contacts empty", {**BASE, "type": "contacts", "contacts": []}, 131009, "contacts"),
]


@pytest.mark.parametrize(("case", "body", "code", "field"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
async def test_invalid_bodies_answer_meta_errors_naming_the_field(
        sandbox: Sandbox, case: str, body: Any, code: int, field: str) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        response = await sandbox.send(client, body)
    assert_graph_error(response, 400, code, detail_has=field)


@pytest.mark.parametrize("raw", [b"", b"{", b"not json", b"\xff\xfe", b"[1, 2", b"null", b"42"])
async def test_malformed_json_is_100_never_500(sandbox: Sandbox, raw: bytes) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        response = await client.post(f"{sandbox.graph}/{PHONE_ID}/messages", content=raw,
                                     headers={**auth(), "Content-Type": "application/json"})
    assert_graph_error(response, 400, 100)


async def test_throughput_limit_is_130429_over_a_sliding_second(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client, mps=5)
        results = [await sandbox.send(client, text(to=f"+1555000{i:04d}")) for i in range(6)]
        assert [r.status_code for r in results[:5]] == [200] * 5
        assert_graph_error(results[5], 400, 130429, detail_has="too many messages")
        await asyncio.sleep(1.05)
        assert (await sandbox.send(client, text())).status_code == 200
        assert len(sandbox.state.list_sent(PHONE_ID)) == 6  # the rejected one was not accepted


async def test_same_recipient_pacing_is_131056_beyond_the_burst(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client, recipient_burst=3)
        statuses = [(await sandbox.send(client, text())).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        assert_graph_error(await sandbox.send(client, text()), 400, 131056, detail_has="same phone number")
        assert (await sandbox.send(client, text(to="+15550009999"))).status_code == 200  # others unaffected


async def test_sender_cannot_message_itself(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        assert_graph_error(await sandbox.send(client, text(to="+1 555-000-1001")), 400, 131021)


async def test_mark_as_read_succeeds_and_is_not_a_send(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        wamid = await sandbox.inbound(client, {"type": "text", "text": {"body": "hi"}})
        read = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid,
                "typing_indicator": {"type": "text"}}
        response = await sandbox.send(client, read)
        assert response.status_code == 200 and response.json() == {"success": True}
        sent = await client.get(f"{sandbox.control}/sent", params={"phone_number_id": PHONE_ID})
        assert sent.json() == {"data": []}
        assert_graph_error(await sandbox.send(client, {**read, "message_id": "wamid.unknown"}), 400, 100,
                           detail_has="message_id")


async def test_control_sent_lists_accepted_sends_in_order(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        bodies = [text(f"m{i}") for i in range(3)]
        wamids = [(await sandbox.send(client, b)).json()["messages"][0]["id"] for b in bodies]
        await sandbox.send(client, {"to": "x"})  # rejected: not listed
        data = (await client.get(f"{sandbox.control}/sent", params={"phone_number_id": PHONE_ID})).json()["data"]
        assert [d["wamid"] for d in data] == wamids
        assert all(set(d) == {"wamid", "to", "recipient", "recipient_type", "user_id", "type", "body", "accepted_at"}
                   for d in data)
        assert [d["body"] for d in data] == bodies and data[0]["to"] == "+" + CUSTOMER and data[0]["type"] == "text"
        assert data[0]["recipient"] is None and data[0]["recipient_type"] == "individual"
        assert data[0]["user_id"] == sandbox.state.users.by_phone(WABA_ID, CUSTOMER).user_id
        assert isinstance(data[0]["accepted_at"], float) and data[0]["accepted_at"] <= data[2]["accepted_at"]
        cleared = await client.delete(f"{sandbox.control}/sent")
        assert cleared.status_code == 200
        assert (await client.get(f"{sandbox.control}/sent")).json() == {"data": []}


async def test_phone_number_node_honours_fields(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client, verified_name="Ann's Bakery", quality_rating="YELLOW", mps=1000)
        default = (await client.get(f"{sandbox.graph}/{PHONE_ID}", headers=auth())).json()
        assert default == {"verified_name": "Ann's Bakery", "display_phone_number": "+1 555-000-1001",
                           "quality_rating": "YELLOW", "id": PHONE_ID}
        fields = "throughput,messaging_limit_tier,status,code_verification_status,name_status"
        chosen = (await client.get(f"{sandbox.graph}/{PHONE_ID}", params={"fields": fields}, headers=auth())).json()
        assert chosen == {"throughput": {"level": "HIGH"}, "messaging_limit_tier": "TIER_1K", "status": "CONNECTED",
                          "code_verification_status": "VERIFIED", "name_status": "APPROVED", "id": PHONE_ID}
        bad = await client.get(f"{sandbox.graph}/{PHONE_ID}", params={"fields": "colour"}, headers=auth())
        assert_graph_error(bad, 400, 100)


async def test_business_profile_read_and_update(sandbox: Sandbox) -> None:
    url = f"{sandbox.graph}/{PHONE_ID}/whatsapp_business_profile"
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        update = {"messaging_product": "whatsapp", "about": "Fresh bread daily", "address": "1 Main St",
                  "description": "Bakery", "email": "hi@bakery.example", "websites": ["https://bakery.example"],
                  "vertical": "RESTAURANT", "profile_picture_handle": "4::aW1hZ2U="}
        response = await client.post(url, json=update, headers=auth())
        assert response.status_code == 200 and response.json() == {"success": True}
        data = (await client.get(url, headers=auth())).json()["data"]
        assert len(data) == 1 and data[0]["messaging_product"] == "whatsapp"
        assert data[0]["about"] == "Fresh bread daily" and data[0]["vertical"] == "RESTAURANT"
        assert data[0]["websites"] == ["https://bakery.example"] and data[0]["profile_picture_url"].startswith("http")
        some = (await client.get(url, params={"fields": "about,email"}, headers=auth())).json()["data"][0]
        assert some == {"about": "Fresh bread daily", "email": "hi@bakery.example", "messaging_product": "whatsapp"}
        for bad, code in (({"about": "x"}, 100), ({"messaging_product": "whatsapp", "vertical": "SPACE"}, 131009),
                          ({"messaging_product": "whatsapp", "websites": ["a", "b", "c"]}, 131009),
                          ({"messaging_product": "whatsapp", "about": 5}, 100)):
            assert_graph_error(await client.post(url, json=bad, headers=auth()), 400, code)


async def test_unknown_paths_and_methods_answer_meta_errors(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        assert_graph_error(await client.get(f"{sandbox.graph}/{PHONE_ID}/a/b", headers=auth()), 400, 2500)
        assert_graph_error(await client.put(f"{sandbox.graph}/{PHONE_ID}/messages", headers=auth()), 400, 100)
        assert_graph_error(await client.get(f"{sandbox.graph}/{PHONE_ID}/nonsense", headers=auth()), 400, 100)
        assert_graph_error(await client.get(f"{sandbox.graph}/42424242", headers=auth()), 400, 100)
