"""An agent's own profile page: name and password (issue 14, item 21)."""

from __future__ import annotations

from tests.conftest import csrf_from, sign_in
from tests.support.inbound import make_setup

AGENT_PASSWORD = "agent password one"


async def _agent(client, runtime, setup):
    await runtime.people.create_user(setup.account.workspace_id, "agent@example.com", AGENT_PASSWORD, "agent", "Ana")
    assert (await sign_in(client, "agent@example.com", AGENT_PASSWORD)).status_code in (302, 303)


async def _save(client, **fields):
    page = await client.get("/profile")
    return await client.post("/profile", data={"_csrf_token": csrf_from(page.text), **fields})


async def test_an_agent_renames_themselves_and_changes_their_password(client_factory):
    client = await client_factory()
    runtime = client.app.state.runtime
    setup = await make_setup(runtime)
    other_device = await client_factory()
    await _agent(client, runtime, setup)
    assert (await sign_in(other_device, "agent@example.com", AGENT_PASSWORD)).status_code in (302, 303)

    page = await client.get("/profile")
    assert page.status_code == 200 and "agent@example.com" in page.text and 'href="/profile"' in page.text
    renamed = await _save(client, name="Ana Horvat")
    assert renamed.status_code == 200 and "Saved." in renamed.text
    assert "Ana Horvat" in (await client.get("/inbox")).text  # the top bar shows the new name at once

    wrong = await _save(client, name="Ana Horvat", current_password="not it", password="a new password",
                        password_again="a new password")
    assert wrong.status_code == 422 and "not your current password" in wrong.text
    differ = await _save(client, name="Ana Horvat", current_password=AGENT_PASSWORD, password="a new password",
                         password_again="another one")
    assert differ.status_code == 422 and "same password twice" in differ.text

    changed = await _save(client, name="Ana Horvat", current_password=AGENT_PASSWORD, password="a new password",
                          password_again="a new password")
    assert changed.status_code == 200 and "other devices are signed out" in changed.text
    assert (await client.get("/inbox")).status_code == 200  # this device stays signed in
    assert (await other_device.get("/inbox", follow_redirects=False)).status_code in (302, 303, 401)
    fresh = await client_factory()
    assert (await sign_in(fresh, "agent@example.com", AGENT_PASSWORD)).status_code not in (302, 303)
    assert (await sign_in(fresh, "agent@example.com", "a new password")).status_code in (302, 303)


async def test_the_profile_needs_a_signed_in_user(client_factory):
    client = await client_factory()
    answer = await client.get("/profile", follow_redirects=False)
    assert answer.status_code in (302, 303, 401)
