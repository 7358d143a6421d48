"""SSRF: event endpoints never reach private, loopback or link-local addresses, checked after DNS and
pinned for the connection (a name that re-resolves to 127.0.0.1 later is still refused)."""

from __future__ import annotations

import socket

import httpx
import pytest
from pydantic import SecretStr

from app.domains.subscriptions.delivery import Deliverer
from app.domains.subscriptions.events import IntegrationEvents
from app.domains.subscriptions.models import Delivery, DeliveryState
from app.domains.subscriptions.services import SubscriptionService
from app.domains.subscriptions.ssrf import BlockedTarget, check_endpoint_url, guarded_client, vetted_address
from app.domains.workspaces.models import User
from app.errors import ValidationFailed
from tests.support.receiver import Receiver
from tests.support.servers import serve

KEY = "wai_event-ssrf-test-key-000000000001"
AUTH = {"Authorization": f"Bearer {KEY}"}
PUBLIC_IP = "93.184.215.14"


@pytest.fixture
def fake_dns(monkeypatch):
    """The OS resolver (not our code) answers from this table; other names resolve as usual."""
    table: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in table:
            ip = table[host].pop(0) if len(table[host]) > 1 else table[host][0]
            family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (ip, port or 0))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/hook", "https://10.1.2.3/hook", "https://169.254.169.254/latest/meta-data",
    "https://[::1]/hook", "https://localhost/hook", "https://192.168.0.10/", "https://172.16.0.1/",
    "https://[::ffff:127.0.0.1]/hook", "https://0.0.0.0/", "https://100.64.0.1/", "https://[fe80::1]/",
])
async def test_private_targets_are_refused_at_registration(url):
    with pytest.raises(ValidationFailed) as refused:
        await check_endpoint_url(url, allow_private=False)
    assert refused.value.error_code == "URL_NOT_ALLOWED"


async def test_a_hostname_resolving_to_a_private_ip_is_refused(fake_dns):
    fake_dns["crm.internal.example"] = ["10.0.0.7"]
    with pytest.raises(ValidationFailed, match="10.0.0.7 is a private address"):
        await check_endpoint_url("https://crm.internal.example/hook", allow_private=False)
    fake_dns["mixed.example"] = [PUBLIC_IP]
    assert await check_endpoint_url("https://mixed.example/hook", allow_private=False) == "https://mixed.example/hook"


@pytest.mark.parametrize("url, code", [("http://example.com/hook", "URL_NOT_HTTPS"), ("ftp://x/", "URL_NOT_HTTPS"),
                                       ("https://u:p@example.com/", "URL_INVALID"), ("not a url", "URL_NOT_HTTPS"),
                                       ("https://[zz/", "URL_INVALID")])
async def test_urls_must_be_plain_https(url, code):
    with pytest.raises(ValidationFailed) as refused:
        await check_endpoint_url(url, allow_private=False)
    assert refused.value.error_code == code


async def test_the_development_setting_allows_private_targets():
    assert await check_endpoint_url("http://127.0.0.1:9/hook", allow_private=True) == "http://127.0.0.1:9/hook"
    assert str(await vetted_address("localhost", 80, allow_private=True)) in ("127.0.0.1", "::1")


async def test_the_client_refuses_at_connect_time_even_if_dns_changed(fake_dns):
    """DNS rebinding: public when registered, loopback when we connect. The connection never happens."""
    receiver = Receiver()
    with serve(receiver) as url:
        port = int(url.rsplit(":", 1)[1])
        fake_dns["rebind.example"] = [PUBLIC_IP, "127.0.0.1"]
        assert await check_endpoint_url(f"https://rebind.example:{port}/", allow_private=False)
        async with guarded_client(allow_private=False, timeout=2) as client:
            with pytest.raises(httpx.ConnectError, match="127.0.0.1 is a loopback address"):
                await client.post(f"http://rebind.example:{port}/hook", content=b"{}")
            for target in (url, f"http://localhost:{port}", f"http://[::1]:{port}"):
                with pytest.raises(httpx.ConnectError, match="refused"):
                    await client.post(f"{target}/hook", content=b"{}")
        assert receiver.requests == []
        async with guarded_client(allow_private=True, timeout=2) as client:  # the dev setting: reaches it
            assert (await client.post(f"{url}/hook", content=b"{}")).status_code == 200
        assert len(receiver.requests) == 1


async def test_a_refused_delivery_is_logged_with_the_reason(client_factory, fake_dns):
    client = await client_factory(settings={"admin_email": "admin@example.com",
                                            "admin_password": SecretStr("admin password"),
                                            "admin_api_key": SecretStr(KEY)})
    fake_dns["hooks.example"] = [PUBLIC_IP]
    created = await client.post("/api/v1/subscriptions", headers=AUTH,
                                json={"url": "https://hooks.example/in", "events": ["contact.created"]})
    assert created.status_code == 201, created.text
    for url in ("https://127.0.0.1/", "https://169.254.169.254/", "https://[::1]/", "https://localhost/"):
        refused = await client.patch(f"/api/v1/subscriptions/{created.json()['id']}", headers=AUTH, json={"url": url})
        assert refused.status_code == 422 and refused.json()["error_code"] == "URL_NOT_ALLOWED"
    refused = await client.post("/api/v1/subscriptions", headers=AUTH,
                                json={"url": "https://10.0.0.1/x", "events": ["contact.created"]})
    assert refused.status_code == 422 and "private" in refused.json()["error"]

    fake_dns["hooks.example"] = ["169.254.169.254"]  # the name moved to the metadata address
    runtime = client.app.state.runtime
    queued: list = []

    async def enqueue(*args, **kwargs):  # the test body runs on its own loop: no arq here, just record
        queued.append(args)

    async with guarded_client(allow_private=False, timeout=2) as http:
        deliverer = Deliverer(runtime.secrets, http, enqueue)
        service = SubscriptionService(runtime.secrets, IntegrationEvents(enqueue, enqueue), deliverer,
                                      allow_private=False)
        delivery = await service.send_test(await service.get((await User.find_one({})).workspace_id,
                                                             created.json()["id"]))
        outcome = await deliverer.attempt(str(delivery.id))
    assert outcome == "pending" and queued  # retried later, never sent
    logged = await Delivery.get(delivery.id)
    assert logged.state is DeliveryState.PENDING
    assert logged.attempts[0].status_code is None and "link-local" in logged.attempts[0].error


def test_blocked_target_is_a_connect_error():
    assert issubclass(BlockedTarget, Exception)
