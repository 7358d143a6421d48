"""Shared fixtures for the sandbox's integration tests: the sandbox and a webhook receiver.

Both run on real loopback ports (``tests.support.servers.serve``), once per test module;
each test starts from ``state.reset()`` and an empty receiver.  The receiver records every
signed post and can be told to answer 500 a number of times first.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.sandbox import SandboxState, create_sandbox_app
from app.whatsapp.signature import verify
from tests.support.servers import read_body, serve

TOKEN = "tok-1001"
SECRET = "secret-1001"
PHONE_ID = "1001"
WABA_ID = "2001"
CUSTOMER = "15557654321"


class Receiver:
    """A bare ASGI app that stores webhook posts (headers + raw body)."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes, int]] = []
        self.fail_next = 0
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self.posts.clear()
            self.fail_next = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        body = await read_body(receive)
        with self._lock:
            failing = self.fail_next > 0
            if failing:
                self.fail_next -= 1
            status = 500 if failing else 200
            self.posts.append(({k.decode().lower(): v.decode() for k, v in scope["headers"]}, body, status))
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def envelopes(self, *, only_ok: bool = True) -> list[dict[str, Any]]:
        """Bodies of the posts (by default only those answered 200), each signature-checked."""
        with self._lock:
            posts = list(self.posts)
        out = []
        for headers, body, status in posts:
            assert headers.get("content-type") == "application/json"
            assert verify(SECRET, body, headers.get("x-hub-signature-256")), "bad webhook signature"
            if status == 200 or not only_ok:
                out.append(json.loads(body))
        return out

    def statuses(self) -> list[dict[str, Any]]:
        return [s for env in self.envelopes() for entry in env["entry"] for change in entry["changes"]
                if change["field"] == "messages" for s in change["value"].get("statuses", [])]

    def messages(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [(change["value"], m) for env in self.envelopes() for entry in env["entry"]
                for change in entry["changes"] if change["field"] == "messages"
                for m in change["value"].get("messages", [])]


@dataclass
class Sandbox:
    """What a test needs: the state, URLs and the receiver."""

    state: SandboxState
    base: str
    receiver: Receiver
    hook_url: str

    @property
    def graph(self) -> str:
        return f"{self.base}/sandbox/graph/v23.0"

    @property
    def control(self) -> str:
        return f"{self.base}/sandbox/control"

    async def register(self, client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
        body = {"phone_number_id": PHONE_ID, "waba_id": WABA_ID, "display_phone_number": "+1 555-000-1001",
                "access_token": TOKEN, "app_secret": SECRET, "webhook_url": self.hook_url, "mps": 80,
                "delivered_after_ms": 30, "read_after_ms": 60}
        body.update(overrides)
        response = await client.post(f"{self.control}/numbers", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    async def inbound(self, client: httpx.AsyncClient, message: dict[str, Any], *, sender: str = CUSTOMER,
                      **extra: Any) -> str:
        response = await client.post(f"{self.control}/inbound", json={
            "phone_number_id": PHONE_ID, "from": sender, "name": "Ann Customer", "message": message, **extra})
        assert response.status_code == 200, response.text
        return response.json()["wamid"]

    async def send(self, client: httpx.AsyncClient, body: dict[str, Any], *, token: str | None = TOKEN,
                   phone_id: str = PHONE_ID) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await client.post(f"{self.graph}/{phone_id}/messages", json=body, headers=headers)


def text(body: str = "hello", to: str = "+" + CUSTOMER) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": "text",
            "text": {"body": body}}


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_graph_error(response: httpx.Response, status: int, code: int, *, detail_has: str | None = None
                       ) -> dict[str, Any]:
    """Meta's exact error shape, with the expected HTTP status and code."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["type"] in ("OAuthException", "GraphMethodException")
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["fbtrace_id"], str) and error["fbtrace_id"]
    if detail_has is not None:
        assert error["error_data"]["messaging_product"] == "whatsapp"
        assert detail_has in error["error_data"]["details"], error
    return error


async def wait_for(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[tuple[SandboxState, str]]:
    state = SandboxState(webhook_retry_base_s=0.02, webhook_max_attempts=4, webhook_timeout_s=2.0, fault_hold_s=10)
    with serve(create_sandbox_app(state)) as base:
        yield state, base


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[tuple[Receiver, str]]:
    receiver = Receiver()
    with serve(receiver) as base:
        yield receiver, base


@pytest.fixture
def sandbox(sandbox_server: tuple[SandboxState, str], receiver_server: tuple[Receiver, str]) -> Sandbox:
    state, base = sandbox_server
    receiver, receiver_base = receiver_server
    state.reset()
    time.sleep(0.05)  # let a webhook post already on the wire from the last test land before clearing
    receiver.clear()
    return Sandbox(state, base, receiver, f"{receiver_base}/hook")
