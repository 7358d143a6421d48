"""The send path's HTTP client (app/whatsapp/aiohttp_client.py) over real HTTP and TLS: what Meta receives,
keep-alive, closes and resets, timeouts, a proxy from the environment, and GraphClient's errors over it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import struct
from types import SimpleNamespace

import certifi
import httpx
import pytest
import trustme
from aiohttp import web
from redis.asyncio import Redis

from app.config import Settings
from app.domains.outbox.sender import OutboxSender
from app.sandbox import SandboxState, create_sandbox_app
from app.whatsapp.aiohttp_client import AiohttpClient
from app.whatsapp.client import GraphClient
from app.whatsapp.errors import AuthError, GraphConnectionError, GraphTimeout
from tests.support.servers import free_port, read_body, serve

WAMID = "wamid.HBgLMTU1NTAwMDExMTEVAgARGBI5QUJDRDEyMzQ1Njc4OTAA"


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
        "headers": {k.decode(): v.decode() for k, v in scope["headers"]}, "body": body.decode("utf-8", "replace"),
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
async def http():
    client = AiohttpClient(size=2)
    yield client
    await client.aclose()


async def test_a_json_post_is_sent_as_httpx_would_send_it(http, echo_url):
    payload = {"to": "+15551234567", "text": {"body": "héllo ✓"}, "n": [1, 2]}
    answer = await http.request("POST", f"{echo_url}/v23.0/123/messages", json=payload,
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
    assert seen["headers"]["user-agent"] == "wa-inbox" and "cookie" not in seen["headers"]


async def test_connections_are_kept_alive_and_a_closed_one_is_replaced(http, echo_url):
    ports = [(await http.request("GET", f"{echo_url}/a")).json()["client_port"] for _ in range(3)]
    assert len(set(ports)) == 1  # one connection, reused
    closing = (await http.request("POST", f"{echo_url}/close", json={})).json()["client_port"]
    assert closing == ports[0]
    await asyncio.sleep(0.05)  # the server's close reaches us
    after = (await http.request("POST", f"{echo_url}/a", json={})).json()["client_port"]
    assert after != closing  # a new connection, without an error


async def test_chunked_answers_and_error_statuses_are_read(http, echo_url):
    chunked = await http.request("GET", f"{echo_url}/chunked")
    assert chunked.status_code == 200 and chunked.json()["path"] == "/chunked"
    missing = await http.request("DELETE", f"{echo_url}/missing")
    assert missing.status_code == 404 and not missing.is_success


async def test_concurrent_requests_share_the_pool_size(http, echo_url):
    answers = await asyncio.gather(*(http.request("GET", f"{echo_url}/p{i}") for i in range(10)))
    assert len({a.json()["client_port"] for a in answers}) <= 2  # size=2


async def test_query_parameters_and_multipart_uploads(http, echo_url):
    seen = (await http.request("GET", f"{echo_url}/q", params={"fields": "a,b"})).json()
    assert seen["query"] in ("fields=a,b", "fields=a%2Cb")
    upload = (await http.request("POST", f"{echo_url}/u", data={"messaging_product": "whatsapp", "type": "text/plain"},
                                 files={"file": ("a.txt", b"hi there", "text/plain")})).json()
    assert upload["headers"]["content-type"].startswith("multipart/form-data")
    assert 'name="file"; filename="a.txt"' in upload["body"] and "hi there" in upload["body"]
    assert 'name="messaging_product"' in upload["body"]


async def test_timeouts_and_refused_connections_are_retryable_graph_errors(echo_url):
    http = AiohttpClient(size=1)
    slow = GraphClient("t", base_url=f"{echo_url}/slow", http=http, timeout=0.3)
    try:
        with pytest.raises(GraphTimeout) as no_answer:  # no answer in time
            await slow.send("1", {})
        blocker = asyncio.create_task(http.request("GET", f"{echo_url}/slow", timeout=5))
        await asyncio.sleep(0.1)
        with pytest.raises(GraphTimeout) as no_connection:  # the only connection is busy
            await GraphClient("t", base_url=echo_url, http=http, timeout=0.3).send("1", {})
        blocker.cancel()
        with pytest.raises(GraphConnectionError) as refused:
            await GraphClient("t", base_url=f"http://127.0.0.1:{free_port()}", http=http, timeout=2).send("1", {})
        assert no_answer.value.retryable and no_connection.value.retryable and refused.value.retryable
        assert (await http.request("GET", f"{echo_url}/a")).status_code == 200  # the pool recovered
    finally:
        await http.aclose()


async def test_a_reset_connection_is_a_retryable_error_and_the_post_is_not_sent_twice():
    requests: list[bytes] = []

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append((await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")[0])
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # RST, no answer

    server = await asyncio.start_server(reset, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    http = AiohttpClient()
    try:
        with pytest.raises(GraphConnectionError) as caught:
            await GraphClient("t", base_url=f"http://127.0.0.1:{port}", http=http).send("1", {"to": "x"})
        assert caught.value.retryable  # the outbox sends it again, later
        assert requests == [b"POST /v23.0/1/messages HTTP/1.1"]
    finally:
        await http.aclose()
        server.close()


async def test_graph_client_over_aiohttp_against_the_sandbox():
    state = SandboxState()
    with serve(create_sandbox_app(state)) as url:
        async with httpx.AsyncClient(base_url=url) as control:
            await control.post("/sandbox/control/numbers", json={
                "phone_number_id": "4242", "waba_id": "77", "display_phone_number": "+1 555 010 4242",
                "access_token": "good", "app_secret": "s"})
            await control.post("/sandbox/control/inbound", json={
                "phone_number_id": "4242", "from": "+15550001111", "name": "C",
                "message": {"type": "text", "text": {"body": "hi"}}})
        http = AiohttpClient()
        body = {"messaging_product": "whatsapp", "to": "+15550001111", "type": "text", "text": {"body": "hello"}}
        try:
            graph = GraphClient("good", base_url=f"{url}/sandbox/graph", http=http)
            sent = await graph.send("4242", body)
            assert sent.wamid.startswith("wamid.") and sent.wa_id == "15550001111"
            media_id = await graph.upload_media("4242", b"\x89PNG\r\n\x1a\n" + b"0" * 64, "image/png", "a.png")
            assert media_id
            with pytest.raises(AuthError):
                await GraphClient("bad", base_url=f"{url}/sandbox/graph", http=http).send("4242", body)
        finally:
            await http.aclose()


# -- TLS and a proxy from the environment, through the product's send client -----------------------------


@pytest.fixture
def ca(tmp_path, monkeypatch):
    """A local CA the product trusts through SSL_CERT_FILE, as a deployment behind its own CA would."""
    authority = trustme.CA()
    authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
                 "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return authority


@contextlib.asynccontextmanager
async def https_graph(authority: trustme.CA):
    """A stand-in for graph.facebook.com over HTTPS: records each request, answers as Meta does."""
    received: list[dict] = []

    async def messages(request: web.Request) -> web.Response:
        received.append({"path": request.path, "headers": dict(request.headers), "body": await request.read()})
        return web.json_response({"messaging_product": "whatsapp",
                                  "contacts": [{"input": "+15550001111", "wa_id": "15550001111"}],
                                  "messages": [{"id": WAMID, "message_status": "accepted"}]})

    app = web.Application()
    app.router.add_post("/v23.0/{phone_number_id}/messages", messages)
    runner = web.AppRunner(app)
    await runner.setup()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(tls)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield f"https://127.0.0.1:{port}", received
    finally:
        await runner.cleanup()


def product_sender(base_url: str) -> OutboxSender:
    """The worker's OutboxSender, on just what http_for() and graph() read of the runtime."""
    accounts = SimpleNamespace(access_token=lambda account: "EAAG-token", graph_api_url=base_url,
                               graph_api_version="v23.0")
    runtime = SimpleNamespace(settings=Settings(send_timeout_seconds=5.0), redis=Redis(), accounts=accounts, http=None)
    return OutboxSender(runtime)  # type: ignore[arg-type]


async def send_through_the_product(base_url: str) -> str:
    sender = product_sender(base_url)
    account = SimpleNamespace(id="acc-1", mps=80)
    body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "+15550001111",
            "type": "text", "text": {"body": "héllo ✓", "preview_url": False}}
    try:
        result = await sender.graph(account, sender.http_for(account)).send("4242", body)  # type: ignore[arg-type]
    finally:
        await sender.aclose()
        await sender.runtime.redis.aclose()
    assert sender._http == {}  # closed
    return result.wamid


async def test_a_send_over_tls_is_what_meta_receives(ca):
    async with https_graph(ca) as (base_url, received):
        assert await send_through_the_product(base_url) == WAMID
    [request] = received
    assert request["path"] == "/v23.0/4242/messages"
    assert request["body"] == ('{"messaging_product":"whatsapp","recipient_type":"individual","to":"+15550001111",'
                               '"type":"text","text":{"body":"héllo ✓","preview_url":false}}').encode()
    assert request["headers"]["Authorization"] == "Bearer EAAG-token"
    assert request["headers"]["Content-Type"] == "application/json"


async def test_an_untrusted_certificate_is_a_connection_error(ca, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())  # our CA is not in there
    async with https_graph(ca) as (base_url, received):
        with pytest.raises(GraphConnectionError):
            await send_through_the_product(base_url)
    assert received == []


async def test_an_https_proxy_from_the_environment_carries_the_sends(ca, monkeypatch):
    tunnels: list[bytes] = []

    async def connect_proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        tunnels.append(head.split(b"\r\n")[0])
        host, port = head.split()[1].decode().rsplit(":", 1)
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    proxy = await asyncio.start_server(connect_proxy, "127.0.0.1", 0)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.sockets[0].getsockname()[1]}")
    try:
        async with https_graph(ca) as (base_url, received):
            assert await send_through_the_product(base_url) == WAMID
            assert tunnels == [f"CONNECT {base_url.removeprefix('https://')} HTTP/1.1".encode()]
            monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # and NO_PROXY is honoured
            assert await send_through_the_product(base_url) == WAMID
            assert len(tunnels) == 1 and len(received) == 2
    finally:
        proxy.close()
