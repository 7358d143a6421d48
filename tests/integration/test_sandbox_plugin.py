"""SandboxPlugin mounted in another app, the in-process Python API, and a bad-input fuzz.

The fuzz mutates valid bodies (dropped keys, swapped types, junk bytes) and throws them at
every graph and control route: the answer must always be Meta's error shape, never a 5xx.
"""

from __future__ import annotations

import random
from typing import Any

import httpx
from litestar import Litestar, get

from app.sandbox import SandboxPlugin, SandboxState
from app.whatsapp.signature import verify
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
    sandbox,
    sandbox_server,
    text,
    wait_for,
)
from tests.support.servers import serve


@get("/hello")
async def hello() -> dict[str, str]:
    return {"hello": "world"}


async def test_plugin_mounts_into_an_app_and_python_api_drives_it(receiver_server: tuple[Receiver, str]) -> None:
    receiver, receiver_base = receiver_server
    receiver.clear()
    state = SandboxState(template_review_ms=50, webhook_retry_base_s=0.02)
    state.register_number(PHONE_ID, WABA_ID, "+1 555 000 1001", TOKEN, SECRET, f"{receiver_base}/hook")
    app = Litestar([hello], plugins=[SandboxPlugin(state)])
    with serve(app) as base:
        async with httpx.AsyncClient(base_url=base) as client:
            assert (await client.get("/hello")).json() == {"hello": "world"}
            wamid = state.simulate_inbound(PHONE_ID, CUSTOMER, "Ann", {"type": "text", "text": {"body": "hi"}})
            messages = await wait_for(lambda: [m for env in receiver.envelopes() for e in env["entry"]
                                               for c in e["changes"] for m in c["value"].get("messages", [])])
            assert messages[0]["id"] == wamid
            assert all(verify(SECRET, body, headers["x-hub-signature-256"]) for headers, body, _ in receiver.posts)
            created = await client.post(f"/sandbox/graph/v23.0/{WABA_ID}/message_templates", headers=auth(), json={
                "name": "hello", "language": "en", "category": "UTILITY",
                "components": [{"type": "BODY", "text": "Hello there"}]})
            assert created.json()["status"] == "PENDING"
            events = await wait_for(lambda: [c["value"] for env in receiver.envelopes() for e in env["entry"]
                                             for c in e["changes"] if c["field"] == "message_template_status_update"])
            assert events[0]["event"] == "APPROVED" and events[0]["message_template_name"] == "hello"
            sent = await client.post(f"/sandbox/graph/v23.0/{PHONE_ID}/messages", headers=auth(), json=text())
            assert sent.status_code == 200
            assert [r["wamid"] for r in state.list_sent()] == [sent.json()["messages"][0]["id"]]


def _mutations(rng: random.Random, value: Any, depth: int = 0) -> Any:
    """A randomly damaged copy of ``value``."""
    junk: list[Any] = [None, True, 0, -1, 1e308, "", "x" * 5000, [], {}, ["a"], {"k": "v"}, "\u0000", "😀" * 10]
    if depth > 4 or rng.random() < 0.15:
        return rng.choice(junk)
    if isinstance(value, dict):
        out = {k: _mutations(rng, v, depth + 1) if rng.random() < 0.5 else v for k, v in value.items()
               if rng.random() > 0.15}
        if rng.random() < 0.2:
            out[rng.choice(["extra", "type", "to", "id"])] = rng.choice(junk)
        return out
    if isinstance(value, list):
        return [_mutations(rng, v, depth + 1) for v in value] + ([rng.choice(junk)] if rng.random() < 0.2 else [])
    return rng.choice(junk) if rng.random() < 0.5 else value


SEEDS: list[tuple[str, str, Any]] = [
    ("POST", "graph/{pid}/messages", text()),
    ("POST", "graph/{pid}/messages", {"messaging_product": "whatsapp", "to": "+1555", "type": "interactive",
                                      "interactive": {"type": "list", "body": {"text": "b"}, "action": {
                                          "button": "b", "sections": [{"title": "t", "rows": [{"id": "1",
                                                                                               "title": "t"}]}]}}}),
    ("POST", "graph/{pid}/messages", {"messaging_product": "whatsapp", "to": "+1555", "type": "template",
                                      "template": {"name": "t", "language": {"code": "en"}, "components": [
                                          {"type": "body", "parameters": [{"type": "text", "text": "x"}]}]}}),
    ("POST", "graph/{pid}/messages", {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.x"}),
    ("POST", "graph/{pid}/whatsapp_business_profile", {"messaging_product": "whatsapp", "about": "a",
                                                       "websites": ["https://a"]}),
    ("POST", "graph/{waba}/message_templates", {"name": "n", "language": "en", "category": "UTILITY",
                                                "components": [{"type": "BODY", "text": "Hi {{1}} you",
                                                                "example": {"body_text": [["a"]]}},
                                                               {"type": "BUTTONS", "buttons": [
                                                                   {"type": "QUICK_REPLY", "text": "ok"}]}]}),
    ("POST", "control/numbers", {"phone_number_id": "1", "waba_id": "2", "display_phone_number": "+1",
                                 "access_token": "t", "app_secret": "s", "webhook_url": None, "mps": 5}),
    ("POST", "control/inbound", {"phone_number_id": PHONE_ID, "from": CUSTOMER, "name": "n",
                                 "message": {"type": "image", "image": {"caption": "c"}}}),
    ("POST", "control/faults", {"phone_number_id": "nobody", "error_rate": 0.0, "latency_ms": 0}),
    ("POST", "control/templates", {"waba_id": WABA_ID, "name": "t", "language": "en", "category": "UTILITY",
                                   "components": [{"type": "BODY", "text": "x"}], "status": "APPROVED"}),
]


async def test_fuzzed_bodies_never_cause_a_5xx(sandbox: Sandbox) -> None:
    rng = random.Random(20261121)
    async with httpx.AsyncClient(base_url=f"{sandbox.base}/sandbox/") as client:
        await sandbox.register(client)
        for _ in range(12):
            for method, path, seed in SEEDS:
                url = path.format(pid=PHONE_ID, waba=WABA_ID)
                damaged = _mutations(rng, seed)
                response = await client.request(method, url, json=damaged, headers=auth())
                assert response.status_code < 500, (url, damaged, response.text)
                if response.status_code >= 400:
                    assert set(response.json()["error"]) >= {"message", "code"}, response.text
            raw = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
            for url in (f"graph/v23.0/{PHONE_ID}/messages", f"graph/{PHONE_ID}/media", "control/inbound"):
                response = await client.post(url, content=raw, headers={**auth(), "Content-Type": "application/json"})
                assert 400 <= response.status_code < 500, response.text
        weird_paths = ["graph/", "graph/v23.0", "graph/v99/../../x", "graph/%00/messages", "graph/v23.0/%F0%9F%98%80"]
        for path in weird_paths:
            response = await client.get(path, headers=auth())
            assert response.status_code < 500, (path, response.text)
