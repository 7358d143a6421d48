"""End to end over real HTTP: sandbox customer → signed webhook → our endpoint → worker → API; media → /media/{id}.

The app runs on a real port with the sandbox mounted and the worker inline; the sandbox is the
only stand-in (for Meta). Our side is observed through its HTTP API only.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import time

import httpx
import pytest

from app.main import create_app
from tests.support.inbound import make_setup, signed
from tests.support.servers import free_port, serve_here

TOKEN = "EAAG-sandbox-token-e2e"
SECRET = "sandbox-app-secret-e2e-0001"


@pytest.fixture
async def live(settings):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app_settings = settings.model_copy(update={"public_url": base, "graph_api_url": f"{base}/sandbox/graph"})
    app = create_app(app_settings, sandbox=True, inline_worker=True)
    async with serve_here(app, port=port) as url:
        yield url, app.state.runtime


async def _connect(base: str, runtime, email: str = "owner@example.com", phone_number_id: str = "106540352242922"):
    setup = await make_setup(runtime, email=email, phone_number_id=phone_number_id, app_secret=SECRET,
                             access_token=TOKEN, display="15550783881")
    async with httpx.AsyncClient(base_url=base) as http:
        answer = await http.post("/sandbox/control/numbers", json={
            "phone_number_id": phone_number_id, "waba_id": setup.account.waba_id,
            "display_phone_number": "+1 555 078 3881", "access_token": TOKEN, "app_secret": SECRET,
            "webhook_url": f"{base}{setup.webhook_path}"})
        assert answer.status_code == 201, answer.text
    return setup


async def _poll(fetch, check, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = await fetch()
        if check(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached: {value}")
        await asyncio.sleep(0.05)


async def _signed_in(base: str, email: str, password: str) -> httpx.AsyncClient:
    browser = httpx.AsyncClient(base_url=base)
    page = await browser.get("/login")
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
    answer = await browser.post("/login", data={"email": email, "password": password, "_csrf_token": csrf})
    assert answer.status_code in (200, 303), answer.text
    return browser


async def test_customer_message_reaches_the_api_and_media_is_served(live):
    base, runtime = live
    setup = await _connect(base, runtime)
    async with httpx.AsyncClient(base_url=base, headers=setup.auth) as api:
        sent = await api.post("/sandbox/control/inbound", json={
            "phone_number_id": setup.account.phone_number_id, "from": "+972 98 765 4321", "name": "Dana",
            "message": {"type": "text", "text": {"body": "Is my order ready?"}}})
        wamid = sent.json()["wamid"]
        # the conversation is created, then the message recorded in it: wait for both
        listing = await _poll(lambda: api.get("/api/v1/conversations"),
                              lambda r: r.json()["data"] and r.json()["data"][0]["unread_count"])
        conversation = listing.json()["data"][0]
        contact = conversation["contact"]
        assert contact == {"id": contact["id"], "wa_id": "972987654321", "name": "Dana", "phone": "+972987654321",
                           "user_id": contact["user_id"], "username": None, "kind": "person"}
        assert contact["user_id"].startswith("IL.")  # the sandbox gives every customer a BSUID, as Meta does
        assert conversation["status"] == "open" and conversation["unread_count"] == 1
        assert conversation["account_id"] == str(setup.account.id) and conversation["window_expires_at"]
        messages = (await api.get(f"/api/v1/conversations/{conversation['id']}/messages")).json()
        assert messages["next_cursor"] is None
        [text] = messages["data"]
        assert (text["wamid"], text["direction"], text["type"], text["content"], text["status"], text["error"]) == (
            wamid, "inbound", "text", {"body": "Is my order ready?"}, "received", None)

        await api.post("/sandbox/control/inbound", json={
            "phone_number_id": setup.account.phone_number_id, "from": "972987654321", "name": "Dana",
            "message": {"type": "image", "image": {"caption": "the receipt"}}})
        await api.post("/sandbox/control/inbound", json={
            "phone_number_id": setup.account.phone_number_id, "from": "972987654321", "name": "Dana",
            "message": {"type": "document", "document": {"filename": "Rechnung März.pdf"}}})
        url = f"/api/v1/conversations/{conversation['id']}/messages"

        def all_stored(response):
            media = [m["media"] for m in response.json()["data"] if m["media"]]
            return len(media) == 2 and all(m["state"] == "stored" for m in media)

        thread = (await _poll(lambda: api.get(url), all_stored)).json()["data"]
    document, image = thread[0], thread[1]
    assert image["type"] == "image" and image["content"]["caption"] == "the receipt"
    browser = await _signed_in(base, setup.email, setup.password)
    try:
        picture = await browser.get(image["media"]["url"])
        assert picture.status_code == 200
        assert picture.headers["content-type"] in ("image/jpeg", "image/png")
        assert picture.headers["x-content-type-options"] == "nosniff"
        assert picture.headers["content-disposition"].startswith("inline")
        # The bytes served are the ones Meta (the sandbox) announced in the webhook.
        assert base64.b64encode(hashlib.sha256(picture.content).digest()).decode() == image["content"]["sha256"]
        assert len(picture.content) == image["media"]["size"] > 0
        pdf = await browser.get(document["media"]["url"])
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        assert pdf.headers["content-disposition"].startswith("attachment;")
        assert "filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf" in pdf.headers["content-disposition"]
        assert pdf.content.startswith(b"%PDF")
    finally:
        await browser.aclose()
    async with httpx.AsyncClient(base_url=base) as anonymous:
        assert (await anonymous.get(image["media"]["url"], follow_redirects=False)).status_code in (302, 303, 401)
    other = await make_setup(runtime, email="stranger@example.com", phone_number_id="5550009")
    stranger = await _signed_in(base, other.email, other.password)
    try:
        assert (await stranger.get(image["media"]["url"])).status_code == 404
    finally:
        await stranger.aclose()
    async with httpx.AsyncClient(base_url=base, headers=other.auth) as other_api:
        assert (await other_api.get(url)).status_code == 404
        assert (await other_api.get("/api/v1/conversations")).json()["data"] == []
        assert (await other_api.get(image["media"]["url"])).status_code == 404  # another workspace's key
    # An integrator downloads what the API lists with the same API key, no browser session.
    async with httpx.AsyncClient(base_url=base, headers=setup.auth) as api:
        for item, kind in ((image, "image/"), (document, "application/pdf")):
            download = await api.get(item["media"]["url"])
            assert download.status_code == 200 and download.headers["content-type"].startswith(kind)
            assert len(download.content) == item["media"]["size"]
        refused = await api.get(image["media"]["url"], headers={"Authorization": "Bearer wai_not-a-key"})
        assert refused.status_code == 401 and refused.json()["error_code"] == "INVALID_API_KEY"


async def test_media_download_failures_are_retried_with_backoff_and_visible(live):
    base, runtime = live
    setup = await _connect(base, runtime)
    async with httpx.AsyncClient(base_url=base, headers=setup.auth) as api:
        await api.post("/sandbox/control/faults", json={"phone_number_id": setup.account.phone_number_id,
                                                        "error_rate": 1.0, "http_status": 503, "error_code": 2})
        await api.post("/sandbox/control/inbound", json={
            "phone_number_id": setup.account.phone_number_id, "from": "972987654321", "name": "Dana",
            "message": {"type": "image", "image": {}}})
        conversations = await _poll(lambda: api.get("/api/v1/conversations"), lambda r: r.json()["data"])
        url = f"/api/v1/conversations/{conversations.json()['data'][0]['id']}/messages"
        retrying = await _poll(lambda: api.get(url),
                               lambda r: r.json()["data"] and (r.json()["data"][0]["media"] or {}).get("attempts"))
        media = retrying.json()["data"][0]["media"]
        assert media["state"] == "pending" and media["attempts"] == 1
        assert media["error"] and media["next_attempt_at"] and media["url"] is None
        await api.delete("/sandbox/control/faults")
        stored = await _poll(lambda: api.get(url), lambda r: r.json()["data"][0]["media"]["state"] == "stored",
                             timeout=30)
        assert stored.json()["data"][0]["media"]["attempts"] == 2

        # A media id Meta does not know: a permanent failure, shown on the message, never retried.
        body, headers = signed({"object": "whatsapp_business_account", "entry": [{"id": setup.account.waba_id, "changes": [
            {"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": setup.account.phone_number_id},
                "contacts": [{"profile": {"name": "Dana"}, "wa_id": "972987654321"}],
                "messages": [{"from": "972987654321", "id": "wamid.unknown-media", "timestamp": str(int(time.time())),
                              "type": "image", "image": {"id": "424242", "mime_type": "image/jpeg",
                                                         "sha256": "abc="}}]}}]}]}, SECRET)
        assert (await api.post(setup.webhook_path, content=body, headers=headers)).status_code == 200
        failed = await _poll(lambda: api.get(url), lambda r: any(
            m["wamid"] == "wamid.unknown-media" and m["media"]["state"] == "failed" for m in r.json()["data"]))
        media = next(m for m in failed.json()["data"] if m["wamid"] == "wamid.unknown-media")["media"]
        assert media["error"] and media["attempts"] == 1 and media["url"] is None
