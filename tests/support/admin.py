"""Shared set-up for the admin screens' tests: a sandbox on a real port, an admin and an agent."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from app.domains.workspaces.models import Role, User
from app.sandbox import SandboxState, create_sandbox_app
from tests.conftest import sign_in
from tests.support.servers import serve

ADMIN_KEY = "wai_admin-screens-test-key-000001"
ADMIN = {"admin_email": "admin@example.com", "admin_password": SecretStr("admin password"),
         "admin_api_key": SecretStr(ADMIN_KEY)}
AGENT_EMAIL, AGENT_PASSWORD = "agent@example.com", "agent password"
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
TOKEN = "EAAG-sandbox-token-0123456789-WXYZ"
APP_SECRET = "app-secret-abcdef0123456789-QRST"
NUMBER = {"name": "Support line", "phone_number_id": "106540352242922", "waba_id": "102290129340398",
          "display_phone_number": "+1 555-010-0001", "access_token": TOKEN, "app_secret": APP_SECRET}


@pytest.fixture(scope="module")
def sandbox_server():
    """One Cloud API sandbox per test module, on a loopback port (our Graph client talks real HTTP)."""
    state = SandboxState(webhook_retry_base_s=0.01, webhook_max_attempts=2)
    with serve(create_sandbox_app(state)) as url:
        yield state, url


@pytest.fixture
def sandbox(sandbox_server):
    state, url = sandbox_server
    state.reset()
    return state, url


@pytest.fixture
async def admin_client(client_factory, sandbox):
    """An app whose Graph API is the sandbox, with a bootstrap admin (session cookie set) and its API key."""
    _, url = sandbox
    client = await client_factory(settings={**ADMIN, "graph_api_url": f"{url}/sandbox/graph"})
    await sign_in(client, "admin@example.com", "admin password")
    return client


async def add_agent(client, email: str = AGENT_EMAIL, password: str = AGENT_PASSWORD) -> User:
    admin = await User.find_one(User.email == "admin@example.com")
    return await client.app.state.runtime.people.create_user(admin.workspace_id, email, password, Role.AGENT, "Agent")


def register_in_sandbox(state: SandboxState, number: dict | None = None, webhook_url: str | None = None, **extra):
    n = number or NUMBER
    return state.register_number(n["phone_number_id"], n["waba_id"], n["display_phone_number"], n["access_token"],
                                 n["app_secret"], webhook_url, **extra)
