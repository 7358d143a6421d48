"""The sandbox's control routes (make customers write, inject faults) answer this host only, and never
list secrets whole: `inbox run --demo` mounts them on the product's public port."""

from __future__ import annotations

import httpx

from app.sandbox import create_sandbox_app
from app.sandbox.state import SandboxState

NUMBER = {"phone_number_id": "1061", "waba_id": "2021", "display_phone_number": "15550001111",
          "access_token": "EAAG-sandbox-secret-token-7777", "app_secret": "app-secret-value-9999"}


def _client(state: SandboxState, peer: str) -> httpx.AsyncClient:
    app = create_sandbox_app(state)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(peer, 5000)), base_url="http://sandbox")


async def test_control_routes_refuse_other_hosts_and_mask_secrets():
    state = SandboxState()
    async with _client(state, "127.0.0.1") as local, _client(state, "203.0.113.8") as remote:
        assert (await local.post("/sandbox/control/numbers", json=NUMBER)).status_code == 201
        listed = (await local.get("/sandbox/control/numbers")).json()["data"][0]
        assert listed["access_token_last4"] == "7777" and listed["app_secret_last4"] == "9999"
        assert NUMBER["access_token"] not in str(listed) and NUMBER["app_secret"] not in str(listed)
        for method, path in (("GET", "/sandbox/control/numbers"), ("POST", "/sandbox/control/faults"),
                             ("POST", "/sandbox/control/inbound")):
            refused = await remote.request(method, path, json={})
            assert refused.status_code == 403 and refused.json()["error"]["code"] == 10, (path, refused.text)
        # The Graph API itself (what the product calls) is not a control route: it answers anyone with a token.
        graph = await remote.get(f"/sandbox/graph/v23.0/{NUMBER['phone_number_id']}",
                                 headers={"Authorization": f"Bearer {NUMBER['access_token']}"})
        assert graph.status_code == 200


async def test_a_setting_opens_the_control_routes_to_other_hosts():
    state = SandboxState(control_from="*")
    async with _client(state, "203.0.113.8") as remote:
        assert (await remote.get("/sandbox/control/numbers")).status_code == 200
