"""LeanHTTP (app/whatsapp/lean_http.py) over real HTTP: what it sends, keep-alive, closes, errors, fallback."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from app.sandbox import SandboxState, create_sandbox_app
from app.whatsapp.client import GraphClient
from app.whatsapp.errors import AuthError, GraphConnectionError, GraphTimeout
from app.whatsapp.lean_http import LeanHTTP, _proxied
from tests.support.servers import free_port, read_body, serve


async def echo_app(scope, receive, send):
    """Answers what it got, and who asked (the client port names the connection)."""
    if scope["type"] != "http":
        return
    body = await read_body(receive)
    path = scope["path"]
    if path.startswith("/slow"):
        await asyncio.sleep(3)
    answer = json.dumps({
        "method": scope["method"], "path": path, "query": scope["query_string"].decode(),
        "headers": {k.decode(): v.decode() for k, v in scope["headers"]}, "body": body.decode("utf-8"),
        "client_port": scope["client"][1]}).encode()
    headers = [(b"content-type", b"application/json")]
    if path == "/close":
        headers.append((b"connection", b"close"))
    if path == "/chunked":  # no content-length: uvicorn streams it chunked
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for part in (answer[:10], answer[10:]):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    status = 404 if path == "/missing" else 200
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(answer)).encode())]})
    await send({"type": "http.response.body", "body": answer})


@pytest.fixture(scope="module")
def echo_url():
    with serve(echo_app) as url:
        yield url


@pytest.fixture
async def lean():
    fallback = httpx.AsyncClient()
    client = LeanHTTP(fallback, size=2, owns_fallback=True)
    yield client
    await client.aclose()


async def test_a_json_post_is_sent_as_httpx_would_send_it(lean, echo_url):
    payload = {"to": "+15551234567", "text": {"body": "héllo ✓"}, "n": [1, 2]}
    answer = await lean.request("POST", f"{echo_url}/v23.0/123/messages", json=payload,
                                headers={"Authorization": "Bearer tok"}, timeout=5)
    assert answer.status_code == 200 and answer.is_success
    seen = answer.json()
    assert seen["method"] == "POST" and seen["path"] == "/v23.0/123/messages"
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))  # httpx's own encoding
    assert seen["body"] == body
    assert seen["headers"]["content-length"] == str(len(body.encode()))
    assert seen["headers"]["content-type"] == "application/json"
    assert seen["headers"]["authorization"] == "Bearer tok"
    assert seen["headers"]["host"] == echo_url.removeprefix("http://")


async def test_connections_are_kept_alive_and_a_closed_one_is_replaced(lean, echo_url):
    ports = [(await lean.request("GET", f"{echo_url}/a")).json()["client_port"] for _ in range(3)]
    assert len(set(ports)) == 1  # one connection, reused
    closing = (await lean.request("GET", f"{echo_url}/close")).json()["client_port"]
    assert closing == ports[0]
    await asyncio.sleep(0.05)  # the server's close reaches us
    after = (await lean.request("GET", f"{echo_url}/a")).json()["client_port"]
    assert after != closing  # a new connection, without an error


async def test_chunked_answers_and_error_statuses_are_read(lean, echo_url):
    chunked = await lean.request("GET", f"{echo_url}/chunked")
    assert chunked.status_code == 200 and chunked.json()["path"] == "/chunked"
    missing = await lean.request("DELETE", f"{echo_url}/missing")
    assert missing.status_code == 404 and not missing.is_success


async def test_concurrent_requests_share_the_pool_size(lean, echo_url):
    answers = await asyncio.gather(*(lean.request("GET", f"{echo_url}/p{i}") for i in range(10)))
    assert len({a.json()["client_port"] for a in answers}) <= 2  # size=2


async def test_other_requests_go_through_the_fallback_httpx_client(lean, echo_url):
    answer = await lean.request("GET", f"{echo_url}/q", params={"fields": "a,b"})
    seen = answer.json()
    assert seen["query"] == "fields=a%2Cb" and seen["headers"]["user-agent"].startswith("python-httpx")
    upload = await lean.request("POST", f"{echo_url}/u", files={"file": ("a.txt", b"hi", "text/plain")})
    assert upload.json()["headers"]["content-type"].startswith("multipart/form-data")


async def test_timeouts_and_refused_connections_raise_httpx_errors(lean, echo_url):
    with pytest.raises(httpx.ReadTimeout):
        await lean.request("GET", f"{echo_url}/slow", timeout=0.2)
    with pytest.raises(httpx.ConnectError):
        await lean.request("GET", f"http://127.0.0.1:{free_port()}/x", timeout=2)
    assert (await lean.request("GET", f"{echo_url}/a")).status_code == 200  # the pool recovered


async def test_graph_client_over_lean_http_against_the_sandbox():
    state = SandboxState()
    with serve(create_sandbox_app(state)) as url:
        async with httpx.AsyncClient(base_url=url) as control:
            await control.post("/sandbox/control/numbers", json={
                "phone_number_id": "4242", "waba_id": "77", "display_phone_number": "+1 555 010 4242",
                "access_token": "good", "app_secret": "s"})
            await control.post("/sandbox/control/inbound", json={
                "phone_number_id": "4242", "from": "+15550001111", "name": "C",
                "message": {"type": "text", "text": {"body": "hi"}}})
        lean = LeanHTTP(httpx.AsyncClient(), owns_fallback=True)
        body = {"messaging_product": "whatsapp", "to": "+15550001111", "type": "text", "text": {"body": "hello"}}
        try:
            sent = await GraphClient("good", base_url=f"{url}/sandbox/graph", http=lean).send("4242", body)
            assert sent.wamid.startswith("wamid.") and sent.wa_id == "15550001111"
            with pytest.raises(AuthError):
                await GraphClient("bad", base_url=f"{url}/sandbox/graph", http=lean).send("4242", body)
        finally:
            await lean.aclose()
        gone = LeanHTTP(httpx.AsyncClient(), owns_fallback=True)
        with pytest.raises(GraphConnectionError):
            await GraphClient("good", base_url=f"http://127.0.0.1:{free_port()}", http=gone).send("4242", body)
        await gone.aclose()


async def test_graph_client_maps_a_lean_timeout(echo_url):
    lean = LeanHTTP(httpx.AsyncClient(), owns_fallback=True)
    try:
        with pytest.raises(GraphTimeout):
            await GraphClient("t", base_url=f"{echo_url}/slow", http=lean, timeout=0.2).send("1", {})
    finally:
        await lean.aclose()


def test_a_proxy_from_the_environment_is_left_to_httpx(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost")
    assert _proxied("https", "graph.facebook.com")
    assert not _proxied("https", "localhost")
    assert not _proxied("http", "graph.facebook.com")
