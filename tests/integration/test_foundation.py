"""Foundation: settings, bootstrap, sign-in, CSRF, API keys, health, scoping, bad input."""

from __future__ import annotations

import time

import pytest
from pydantic import SecretStr

from app.config import ROOT, Settings
from app.domains.workspaces.models import ApiKey, Role, User, WebSession, Workspace
from tests.conftest import csrf_from, sign_in
from tests.support.inbound import wait_for

ADMIN = {"admin_email": "boss@example.com", "admin_password": SecretStr("correct horse"),
         "admin_api_key": SecretStr("wai_bootstrap-key-for-tests-0001")}


def test_settings_read_inbox_env(monkeypatch):
    monkeypatch.setenv("INBOX_PORT", "9123")
    monkeypatch.setenv("INBOX_ALLOW_SIGNUP", "true")
    monkeypatch.setenv("INBOX_PUBLIC_URL", "https://inbox.example.com/")
    monkeypatch.setenv("INBOX_GRAPH_API_VERSION", "v24.0")
    s = Settings(_env_file=None)
    assert (s.port, s.allow_signup, s.public_url, s.graph_api_version) == (9123, True, "https://inbox.example.com", "v24.0")
    assert s.secure_cookies
    assert s.graph_api_url == "https://graph.facebook.com"
    assert s.missing_for_production() == ["INBOX_MONGODB_URL", "INBOX_REDIS_URL", "INBOX_SECRET_KEY"]


def test_settings_reject_bad_values(monkeypatch):
    monkeypatch.setenv("INBOX_PORT", "not-a-port")
    with pytest.raises(ValueError):
        Settings(_env_file=None)


def test_every_setting_is_documented_in_readme():
    readme = (ROOT / "README.md").read_text()
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no docstring"
        assert f"`INBOX_{name.upper()}`" in readme, f"INBOX_{name.upper()} missing from README settings table"


def test_readme_settings_table_shows_the_real_defaults():
    """The default column matches Settings for plain values (None is "(unset)"), so a changed default
    cannot leave the README behind."""
    rows = {line.split("|")[1].strip(" `"): line.split("|")[2].strip()
            for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `INBOX_")}
    checked = 0
    for name, field in Settings.model_fields.items():
        shown, default = rows[f"INBOX_{name.upper()}"], field.default
        if default is None:
            assert shown == "(unset)", name
        elif isinstance(default, bool):
            assert shown == f"`{str(default).lower()}`", name
        elif isinstance(default, int | float):
            assert float(shown.strip("`")) == default, name
        elif isinstance(default, str):
            assert shown == f"`{default}`", name
        else:
            continue  # paths and secrets are described in words
        checked += 1
    assert checked >= 20


async def test_bootstrap_creates_admin_and_exact_api_key(client_factory):
    client = await client_factory(settings=ADMIN)
    me = await client.get("/api/v1/me", headers={"Authorization": "Bearer wai_bootstrap-key-for-tests-0001"})
    assert me.status_code == 200
    assert me.json()["role"] == "admin"
    assert me.json()["user"]["email"] == "boss@example.com"
    key = await ApiKey.find_one({})
    assert key.key_hash != "wai_bootstrap-key-for-tests-0001" and "bootstrap-key" not in key.model_dump_json()
    user = await User.find_one(User.email == "boss@example.com")
    assert user.password_hash.startswith("$argon2")


async def test_bootstrap_skipped_when_users_exist(client_factory):
    client = await client_factory(settings=ADMIN)
    runtime = client.app.state.runtime
    await runtime.bootstrap()
    assert await User.find_all().count() == 1
    assert await Workspace.find_all().count() == 1


async def test_sign_in_success_sets_safe_cookie_and_lands_on_inbox(client_factory):
    client = await client_factory(settings=ADMIN)
    response = await sign_in(client, "boss@example.com", "correct horse")
    assert response.status_code == 303 and response.headers["location"] == "/inbox"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax") and "Secure" not in cookie
    inbox = await client.get("/inbox")
    assert inbox.status_code == 200 and "Conversations" in inbox.text and "Sign out" in inbox.text
    assert "/admin/numbers" in inbox.text  # admins see the admin nav


async def test_secure_cookie_on_https(client_factory):
    client = await client_factory(settings={**ADMIN, "public_url": "https://testserver.local"})
    response = await sign_in(client, "boss@example.com", "correct horse")
    assert "Secure" in response.headers["set-cookie"]


@pytest.mark.parametrize("email,password", [("boss@example.com", "wrong password"), ("nobody@example.com", "correct horse")])
async def test_sign_in_failure_is_401_with_message(client_factory, email, password):
    client = await client_factory(settings=ADMIN)
    response = await sign_in(client, email, password)
    assert response.status_code == 401
    assert "Wrong email or password" in response.text
    assert (await client.get("/inbox", follow_redirects=False)).status_code == 302


async def test_sign_in_throttled_after_five_failures(client_factory):
    client = await client_factory(settings=ADMIN)
    for _ in range(5):
        assert (await sign_in(client, "boss@example.com", "nope nope")).status_code == 401
    blocked = await sign_in(client, "boss@example.com", "correct horse")
    assert blocked.status_code == 429 and "Try again" in blocked.text
    assert int(blocked.headers["retry-after"]) > 0
    # This address is refused for this account only: another account from here is still checked.
    assert (await sign_in(client, "other@example.com", "whatever1")).status_code == 401


async def test_an_attacker_cannot_lock_the_owner_out_and_a_sprayer_is_stopped(client_factory):
    from app.errors import TooManyRequests, Unauthorized

    client = await client_factory(settings=ADMIN)
    people = client.app.state.runtime.people
    for _ in range(5):
        with pytest.raises(Unauthorized):
            await people.sign_in("boss@example.com", "guess", "203.0.113.9")
    with pytest.raises(TooManyRequests):
        await people.sign_in("boss@example.com", "correct horse", "203.0.113.9")
    user, _ = await people.sign_in("boss@example.com", "correct horse", "198.51.100.7")  # the owner, elsewhere
    assert user.email == "boss@example.com"
    # A guesser spread over many addresses is slowed on that account (a right password is not).
    started = time.monotonic()
    with pytest.raises(Unauthorized):
        await people.sign_in("boss@example.com", "guess", "192.0.2.77")
    assert time.monotonic() - started >= 0.9
    # One address trying many accounts is stopped after 30 failures.
    for n in range(30):
        with pytest.raises(Unauthorized):
            await people.sign_in(f"user{n}@example.com", "guess", "203.0.113.50")
    with pytest.raises(TooManyRequests):
        await people.sign_in("someone.else@example.com", "guess", "203.0.113.50")


async def test_sign_out_ends_the_session(client_factory):
    client = await client_factory(settings=ADMIN)
    await sign_in(client, "boss@example.com", "correct horse")
    page = await client.get("/inbox")
    out = await client.post("/logout", data={"_csrf_token": csrf_from(page.text)}, follow_redirects=False)
    assert out.status_code == 303
    assert await WebSession.find_all().count() == 0
    assert (await client.get("/inbox", follow_redirects=False)).status_code == 302


async def test_signup_off_by_default(client):
    assert (await client.get("/signup")).status_code == 404
    page = await client.get("/login")
    response = await client.post("/signup", data={"workspace": "X", "email": "a@b.co", "password": "12345678",
                                                  "_csrf_token": csrf_from(page.text)})
    assert response.status_code == 404
    assert await User.find_all().count() == 0


async def test_signup_on_creates_workspace_and_admin(client_factory):
    client = await client_factory(settings={"allow_signup": True})
    page = await client.get("/signup")
    response = await client.post("/signup", data={"workspace": "Acme", "name": "Ann", "email": "Ann@Acme.test",
                                                  "password": "long enough", "_csrf_token": csrf_from(page.text)},
                                 follow_redirects=False)
    assert response.status_code == 303
    user = await User.find_one(User.email == "ann@acme.test")
    assert user.role is Role.ADMIN
    assert (await Workspace.get(user.workspace_id)).name == "Acme"
    assert (await client.get("/inbox")).status_code == 200
    # a second sign-up with the same email is refused with a field error
    again = await client.post("/signup", data={"workspace": "B", "email": "ann@acme.test", "password": "long enough",
                                               "_csrf_token": csrf_from(page.text)})
    assert again.status_code == 409 and "already" in again.text


async def test_signup_weak_password_shows_field_error(client_factory):
    client = await client_factory(settings={"allow_signup": True})
    page = await client.get("/signup")
    response = await client.post("/signup", data={"workspace": "A", "email": "x@y.z", "password": "short",
                                                  "_csrf_token": csrf_from(page.text)})
    assert response.status_code == 422 and "at least 8 characters" in response.text


@pytest.mark.parametrize("token", [None, "forged-token"])
async def test_csrf_missing_or_stale_is_403_page(client_factory, token):
    client = await client_factory(settings=ADMIN)
    await client.get("/login")
    data = {"email": "boss@example.com", "password": "correct horse"}
    if token:
        data["_csrf_token"] = token
    response = await client.post("/login", data=data, follow_redirects=False)
    assert response.status_code == 403
    assert "form has expired" in response.text and "Traceback" not in response.text
    assert await WebSession.find_all().count() == 0


@pytest.mark.parametrize("header,code", [
    (None, "AUTH_REQUIRED"),
    ("Bearer", "INVALID_AUTH_HEADER"),
    ("Basic dXNlcjpwYXNz", "INVALID_AUTH_HEADER"),
    ("Bearer two words", "INVALID_AUTH_HEADER"),
    ("Bearer wai_not-a-real-key", "INVALID_API_KEY"),
])
async def test_api_key_missing_malformed_invalid_is_401_json(client, header, code):
    headers = {"Authorization": header} if header else {}
    response = await client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["error_code"] == code and response.json()["error"]


async def test_revoked_key_and_deactivated_user_are_401(client_factory):
    client = await client_factory(settings=ADMIN)
    people = client.app.state.runtime.people
    auth = {"Authorization": "Bearer wai_bootstrap-key-for-tests-0001"}
    key = await ApiKey.find_one({})
    await people.revoke_api_key(key)
    assert (await client.get("/api/v1/me", headers=auth)).status_code == 401

    workspace = await Workspace.find_one({})
    agent = await people.create_user(workspace.id, "agent@example.com", "agent password", Role.AGENT)
    _, agent_key = await people.create_api_key(workspace.id, "agent key", Role.AGENT, agent.id)
    await sign_in(client, "agent@example.com", "agent password")
    assert (await client.get("/inbox")).status_code == 200
    await people.deactivate_user(agent)
    assert (await client.get("/api/v1/me", headers={"Authorization": f"Bearer {agent_key}"})).status_code == 401
    assert (await client.get("/inbox", follow_redirects=False)).status_code == 302


async def test_a_revoked_key_or_deactivated_user_stops_at_once_on_every_web_process(client_factory):
    """Each web process remembers who a key or session is for a few seconds; a revocation or a
    deactivation on one process reaches the others at once (not after that time)."""
    from app.domains.workspaces.principals import TTL_SECONDS

    here, there = await client_factory(settings=ADMIN), await client_factory(settings=ADMIN)
    people = here.app.state.runtime.people
    auth = {"Authorization": "Bearer wai_bootstrap-key-for-tests-0001"}
    workspace = await Workspace.find_one({})
    agent = await people.create_user(workspace.id, "agent@example.com", "agent password", Role.AGENT)
    await sign_in(there, "agent@example.com", "agent password")
    for client in (here, there):  # both processes have resolved (and keep) the key
        assert (await client.get("/api/v1/me", headers=auth)).status_code == 200
    assert (await there.get("/inbox")).status_code == 200
    started = time.monotonic()
    await people.revoke_api_key(await ApiKey.find_one({}))
    await people.deactivate_user(agent)

    async def refused_there():
        return ((await there.get("/api/v1/me", headers=auth)).status_code == 401
                and (await there.get("/inbox", follow_redirects=False)).status_code == 302)

    await wait_for(refused_there, timeout=TTL_SECONDS)
    assert time.monotonic() - started < TTL_SECONDS / 2  # told, not expired


async def test_agent_key_on_admin_route_is_403(client_factory):
    from litestar import get

    from app.auth import requires_admin

    client = await client_factory(settings=ADMIN)
    people = client.app.state.runtime.people
    workspace = await Workspace.find_one({})
    _, agent_key = await people.create_api_key(workspace.id, "agent key", Role.AGENT)

    @get("/api/v1/_admin_probe", guards=[requires_admin], sync_to_thread=False)
    def probe() -> dict:
        return {"ok": True}

    client.app.register(probe)
    response = await client.get("/api/v1/_admin_probe", headers={"Authorization": f"Bearer {agent_key}"})
    assert response.status_code == 403 and response.json()["error_code"] == "ADMIN_REQUIRED"
    admin = await client.get("/api/v1/_admin_probe", headers={"Authorization": "Bearer wai_bootstrap-key-for-tests-0001"})
    assert admin.status_code == 200


async def test_health_live_and_ready_with_worker(client_factory):
    client = await client_factory(inline_worker=True)
    assert (await client.get("/health/live")).json()["status"] == "ok"
    import asyncio

    for _ in range(100):
        ready = await client.get("/health/ready")
        if ready.status_code == 200:
            break
        await asyncio.sleep(0.05)
    assert ready.status_code == 200
    assert {k: v["status"] for k, v in ready.json()["checks"].items()} == {"mongodb": "ok", "redis": "ok", "worker": "ok"}


async def test_health_not_ready_without_worker_or_redis(client, redis_server):
    ready = await client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["worker"]["status"] == "failing"
    assert ready.json()["checks"]["mongodb"]["status"] == "ok"
    redis_server.stop()
    try:
        down = await client.get("/health/ready")
        assert down.status_code == 503 and down.json()["checks"]["redis"]["status"] == "failing"
    finally:
        redis_server.start()


async def test_scoping_helper_hides_other_workspaces(client):
    from app.errors import NotFound

    people = client.app.state.runtime.people
    ws_a, user_a = await people.create_workspace("A", "a@a.test", "password a")
    ws_b, user_b = await people.create_workspace("B", "b@b.test", "password b")
    assert (await User.get_scoped(ws_a.id, user_a.id)).email == "a@a.test"
    with pytest.raises(NotFound):
        await User.get_scoped(ws_a.id, user_b.id)
    with pytest.raises(NotFound):
        await User.get_scoped(ws_a.id, "not-an-object-id")
    assert [u.email for u in await User.scoped(ws_b.id).to_list()] == ["b@b.test"]


@pytest.mark.parametrize("path", ["/api/v1/nope", "/nope"])
async def test_unknown_route_is_clean_404(client, path):
    response = await client.get(path)
    assert response.status_code == 404
    if path.startswith("/api"):
        assert response.json() == {"success": False, "error": "No such page or resource.", "error_code": "NOT_FOUND", "details": {}}
    else:
        assert "No such page" in response.text and "Traceback" not in response.text


async def test_garbage_session_cookie_is_treated_as_signed_out(client):
    client.cookies.set("inbox_session", "garbage\x01;;==")
    response = await client.get("/inbox", follow_redirects=False)
    assert response.status_code == 302 and response.headers["location"].startswith("/login")


async def test_open_redirect_refused(client_factory):
    client = await client_factory(settings=ADMIN)
    page = await client.get("/login")
    response = await client.post("/login", data={"email": "boss@example.com", "password": "correct horse",
                                                 "next": "//evil.example", "_csrf_token": csrf_from(page.text)},
                                 follow_redirects=False)
    assert response.headers["location"] == "/inbox"


async def test_pages_carry_strict_csp_and_vendored_htmx(client):
    page = await client.get("/login")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script>" not in page.text and "cdn" not in page.text.lower()
    for asset in ("/static/js/htmx-2.0.11.min.js", "/static/js/htmx-ext-ws-2.0.4.min.js", "/static/css/app.css"):
        assert (await client.get(asset)).status_code == 200


@pytest.mark.parametrize("trusted,blocked_after", [("", 5), ("127.0.0.1", None)])
async def test_x_forwarded_for_counts_only_from_a_trusted_proxy(client_factory, settings, trusted, blocked_after):
    """Rotating X-Forwarded-For must not reset the sign-in throttle unless the peer is a configured proxy."""
    import httpx

    from app.main import create_app
    from tests.support.servers import serve_here

    app_settings = settings.model_copy(update={**ADMIN, "trusted_proxies": trusted})
    async with serve_here(create_app(app_settings), trusted_proxies=trusted) as base:
        async with httpx.AsyncClient(base_url=base) as http:
            answers = []
            for n in range(7):
                page = await http.get("/login")
                token = page.text.split('name="_csrf_token" value="', 1)[1].split('"', 1)[0]
                answer = await http.post("/login", data={"email": "boss@example.com", "password": "nope nope",
                                                         "_csrf_token": token},
                                         headers={"X-Forwarded-For": f"198.51.100.{n}"})
                answers.append(answer.status_code)
    if blocked_after is None:  # behind a trusted proxy each forwarded address is its own client
        assert answers == [401] * 7
    else:
        assert answers == [401] * blocked_after + [429] * (7 - blocked_after)
