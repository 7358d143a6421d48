"""Media routes (upload, retrieve, download, delete) and message templates over real HTTP.

Templates: create answers PENDING, list pages with Meta's cursors and ``next``, delete by
name, template sends answer 132001 / 132000 / accepted.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.integration.test_sandbox_fixtures import (  # noqa: F401 - fixtures
    PHONE_ID,
    WABA_ID,
    Sandbox,
    assert_graph_error,
    auth,
    receiver_server,
    sandbox,
    sandbox_server,
    wait_for,
)


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(out, format="PNG")
    return out.getvalue()


async def _upload(client: httpx.AsyncClient, sandbox: Sandbox, data: bytes, mime: str, **extra: Any) -> httpx.Response:
    form = {"messaging_product": "whatsapp", "type": mime, **extra}
    return await client.post(f"{sandbox.graph}/{PHONE_ID}/media", data=form,
                             files={"file": ("file.bin", data, mime)}, headers=auth())


async def test_media_upload_retrieve_download_delete(sandbox: Sandbox) -> None:
    data = _png()
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        uploaded = await _upload(client, sandbox, data, "image/png")
        assert uploaded.status_code == 200, uploaded.text
        media_id = uploaded.json()["id"]
        assert set(uploaded.json()) == {"id"} and media_id.isdigit()
        info = (await client.get(f"{sandbox.graph}/{media_id}", headers=auth())).json()
        assert set(info) == {"url", "mime_type", "sha256", "file_size", "id", "messaging_product"}
        assert info["sha256"] == hashlib.sha256(data).hexdigest() and info["file_size"] == len(data)
        assert info["mime_type"] == "image/png" and info["id"] == media_id and info["url"].startswith(sandbox.base)
        download = await client.get(info["url"], headers=auth())
        assert download.status_code == 200 and download.content == data
        assert download.headers["content-type"].startswith("image/png")
        assert_graph_error(await client.get(info["url"]), 401, 190)  # bearer required
        scoped = await client.get(f"{sandbox.graph}/{media_id}", params={"phone_number_id": "other"}, headers=auth())
        assert_graph_error(scoped, 400, 100)
        assert (await client.post(f"{sandbox.control}/media/expire_urls")).status_code == 200
        assert_graph_error(await client.get(info["url"], headers=auth()), 404, 100)
        fresh = (await client.get(f"{sandbox.graph}/{media_id}", headers=auth())).json()["url"]
        assert (await client.get(fresh, headers=auth())).status_code == 200
        deleted = await client.delete(f"{sandbox.graph}/{media_id}", headers=auth())
        assert deleted.status_code == 200 and deleted.json() == {"success": True}
        assert_graph_error(await client.get(f"{sandbox.graph}/{media_id}", headers=auth()), 400, 100)
        assert_graph_error(await client.get(fresh, headers=auth()), 404, 100)


async def test_media_upload_bad_inputs_never_500(sandbox: Sandbox) -> None:
    url = f"{sandbox.graph}/{PHONE_ID}/media"
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        assert_graph_error(await client.post(url, json={"file": "x"}, headers=auth()), 400, 100)
        no_file = await client.post(url, data={"messaging_product": "whatsapp", "type": "image/png"},
                                    files={"other": ("a", b"x", "text/plain")}, headers=auth())
        assert_graph_error(no_file, 400, 100, detail_has="file")
        assert_graph_error(await _upload(client, sandbox, b"MZ..", "application/x-msdownload"), 400, 100,
                           detail_has="type")
        assert_graph_error(await _upload(client, sandbox, b"x", "image/png", messaging_product="sms"), 400, 100)
        big_sticker = b"RIFF....WEBPVP8 " + b"\0" * (512 * 1024)
        assert_graph_error(await _upload(client, sandbox, big_sticker, "image/webp"), 400, 131053)
        garbage = await client.post(url, content=b"--zz\r\nnonsense", headers={
            **auth(), "Content-Type": "multipart/form-data; boundary=zz"})
        assert 400 <= garbage.status_code < 500 and "error" in garbage.json()
        no_boundary = await client.post(url, content=b"x", headers={**auth(), "Content-Type": "multipart/form-data"})
        assert 400 <= no_boundary.status_code < 500 and "error" in no_boundary.json()


async def test_send_with_unknown_media_id_fails_by_webhook(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        await sandbox.inbound(client, {"type": "text", "text": {"body": "hi"}})
        body = {"messaging_product": "whatsapp", "to": "+15557654321", "type": "image", "image": {"id": "123"}}
        assert (await sandbox.send(client, body)).status_code == 200
    statuses = await wait_for(lambda: [s for s in sandbox.receiver.statuses() if s["status"] == "failed"])
    assert statuses[0]["errors"][0]["code"] == 131053


BODY_TWO_VARS = {"type": "BODY", "text": "Hi {{1}}, your order {{2}} shipped.",
                 "example": {"body_text": [["Ann", "A-1"]]}}


def _template(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "language": "en_US", "category": "UTILITY", "components": [BODY_TWO_VARS], **extra}


def _template_send(name: str, params: list[str], language: str = "en_US") -> dict[str, Any]:
    components = [{"type": "body", "parameters": [{"type": "text", "text": p} for p in params]}]
    return {"messaging_product": "whatsapp", "to": "+15557654321", "type": "template",
            "template": {"name": name, "language": {"code": language}, "components": components}}


async def test_template_create_is_pending_and_sends_follow_its_status(sandbox: Sandbox) -> None:
    url = f"{sandbox.graph}/{WABA_ID}/message_templates"
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        created = await client.post(url, json=_template("order_shipped"), headers=auth())
        assert created.status_code == 200, created.text
        assert created.json()["status"] == "PENDING" and created.json()["category"] == "UTILITY"
        template_id = created.json()["id"]
        assert_graph_error(await client.post(url, json=_template("order_shipped"), headers=auth()), 400, 100)
        assert_graph_error(await sandbox.send(client, _template_send("order_shipped", ["Ann", "A-1"])), 404, 132001,
                           detail_has="order_shipped")
        approve = await client.post(f"{sandbox.control}/templates/{template_id}/status", json={"status": "APPROVED"})
        assert approve.status_code == 200
        ok = await sandbox.send(client, _template_send("order_shipped", ["Ann", "A-1"]))
        assert ok.status_code == 200 and ok.json()["messages"][0]["message_status"] == "accepted"
        assert_graph_error(await sandbox.send(client, _template_send("order_shipped", ["Ann"])), 400, 132000,
                           detail_has="body")
        assert_graph_error(await sandbox.send(client, _template_send("order_shipped", ["Ann", "A-1"], "fr")),
                           404, 132001)
        assert_graph_error(await sandbox.send(client, _template_send("nope", [])), 404, 132001)
        by_id = (await client.get(f"{sandbox.graph}/{template_id}", headers=auth())).json()
        assert by_id["name"] == "order_shipped" and by_id["status"] == "APPROVED"


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "Bad Name", "language": "en", "category": "UTILITY", "components": [BODY_TWO_VARS]}, "name"),
    ({"name": "x", "language": "en", "category": "SPAM", "components": [BODY_TWO_VARS]}, "category"),
    ({"name": "x", "language": "en", "category": "UTILITY", "components": []}, "BODY"),
    ({"name": "x", "language": "en", "category": "UTILITY",
      "components": [{"type": "BODY", "text": "Hi {{1}}, welcome"}]}, "example"),
    ({"name": "x", "language": "en", "category": "UTILITY",
      "components": [{"type": "BODY", "text": "{{1}} is here", "example": {"body_text": [["a"]]}}]}, "start"),
    ({"name": "x", "language": "en", "category": "UTILITY", "components": [BODY_TWO_VARS], "extra": 1}, "extra"),
    ({"name": "x", "language": "en", "category": "UTILITY",
      "components": [BODY_TWO_VARS, {"type": "FOOTER", "text": "f" * 61}]}, "text"),
])
async def test_template_create_validation(sandbox: Sandbox, body: dict[str, Any], field: str) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        response = await client.post(f"{sandbox.graph}/{WABA_ID}/message_templates", json=body, headers=auth())
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] in (100, 131009)
    assert field in response.json()["error"]["error_data"]["details"]


async def test_template_list_pages_with_cursors_and_filters(sandbox: Sandbox) -> None:
    url = f"{sandbox.graph}/{WABA_ID}/message_templates"
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        for i in range(5):
            sandbox.state.seed_template(WABA_ID, f"tpl_{i}", "en_US", "MARKETING", [BODY_TWO_VARS])
        first = (await client.get(url, params={"limit": 2}, headers=auth())).json()
        assert [t["name"] for t in first["data"]] == ["tpl_0", "tpl_1"]
        assert set(first["data"][0]) >= {"name", "language", "status", "category", "id", "components"}
        assert set(first["paging"]["cursors"]) == {"before", "after"} and "previous" not in first["paging"]
        second = (await client.get(first["paging"]["next"], headers=auth())).json()
        assert [t["name"] for t in second["data"]] == ["tpl_2", "tpl_3"] and "previous" in second["paging"]
        third = (await client.get(second["paging"]["next"], headers=auth())).json()
        assert [t["name"] for t in third["data"]] == ["tpl_4"] and "next" not in third["paging"]
        back = (await client.get(third["paging"]["previous"], headers=auth())).json()
        assert [t["name"] for t in back["data"]] == ["tpl_2", "tpl_3"]
        named = (await client.get(url, params={"name": "tpl_3"}, headers=auth())).json()
        assert [t["name"] for t in named["data"]] == ["tpl_3"]
        fields = (await client.get(url, params={"fields": "name,status", "limit": 1}, headers=auth())).json()
        assert set(fields["data"][0]) == {"name", "status", "id"}
        assert (await client.get(url, params={"name": "zzz"}, headers=auth())).json() == {"data": []}
        assert_graph_error(await client.get(url, params={"limit": "lots"}, headers=auth()), 400, 100)
        assert_graph_error(await client.get(f"{sandbox.graph}/777/message_templates", headers=auth()), 400, 100)


async def test_template_delete_by_name_and_hsm_id(sandbox: Sandbox) -> None:
    url = f"{sandbox.graph}/{WABA_ID}/message_templates"
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        sandbox.state.seed_template(WABA_ID, "promo", "en_US", "MARKETING", [BODY_TWO_VARS])
        fr = sandbox.state.seed_template(WABA_ID, "promo", "fr", "MARKETING", [BODY_TWO_VARS])
        gone = await client.delete(url, params={"name": "promo", "hsm_id": fr}, headers=auth())
        assert gone.status_code == 200 and gone.json() == {"success": True}
        assert [t["language"] for t in (await client.get(url, headers=auth())).json()["data"]] == ["en_US"]
        assert (await client.delete(url, params={"name": "promo"}, headers=auth())).json() == {"success": True}
        assert_graph_error(await client.delete(url, params={"name": "promo"}, headers=auth()), 400, 100)
        assert_graph_error(await client.delete(url, headers=auth()), 400, 100, detail_has="name")


async def test_media_header_template_needs_its_media_parameter(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        seeded = await client.post(f"{sandbox.control}/templates", json={
            "waba_id": WABA_ID, "name": "receipt", "language": "en", "category": "UTILITY", "status": "APPROVED",
            "components": [{"type": "HEADER", "format": "DOCUMENT"}, {"type": "BODY", "text": "Your receipt."}]})
        assert seeded.status_code == 201 and seeded.json()["status"] == "APPROVED"
        body = _template_send("receipt", [], "en")
        assert_graph_error(await sandbox.send(client, body), 400, 132000, detail_has="header")
        body["template"]["components"] = [{"type": "header", "parameters": [
            {"type": "document", "document": {"link": "https://example.com/r.pdf"}}]}]
        assert (await sandbox.send(client, body)).status_code == 200
