"""The live feed over a real WebSocket: inbound appears, ticks advance, other agents' changes, catch-up.

A real uvicorn server in a thread (web + worker + sandbox in one process, as `inbox run --demo`),
a real WebSocket client with the agent's session cookie. Only Meta is simulated (the sandbox).
"""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest
from websockets.sync.client import connect

import app.demo
from app.main import create_app
from tests.support.servers import free_port, serve

PASSWORD = "demo-password-1"


@pytest.fixture
def live_app(settings, monkeypatch):
    monkeypatch.setattr(app.demo, "demo_password", lambda data_dir: PASSWORD)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app_settings = settings.model_copy(update={"public_url": base, "graph_api_url": base + "/sandbox/graph"})
    with serve(create_app(app_settings, demo=True, inline_worker=True), port=port) as url:
        yield url


def signed_in(base: str, email: str = app.demo.DEMO_AGENT) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=10)
    page = client.get("/login")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
    answer = client.post("/login", data={"email": email, "password": PASSWORD, "_csrf_token": token})
    assert answer.status_code in (200, 302, 303)
    return client


def csrf(client: httpx.Client) -> dict[str, str]:
    page = client.get("/inbox")
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page.text).group(1)
    return {"X-CSRFToken": token, "HX-Request": "true"}


def conversation_id(client: httpx.Client, name: str) -> str:
    rows = client.get("/inbox/conversations?status=all", headers={"HX-Request": "true"}).text
    match = re.search(r'<li id="conv-([0-9a-f]{24})"(?:(?!</li>).)*?' + re.escape(name), rows, re.S)
    assert match, name
    return match.group(1)


def open_socket(base: str, client: httpx.Client, conversation: str | None, since: str | None = None):
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    ws = connect(base.replace("http", "ws") + "/live", additional_headers={"Cookie": cookie}, open_timeout=5, legacy=True)  # closed by the caller
    ws.send(json.dumps({"type": "hello", "since": since,
                        "view": {"conversation": conversation, "filters": {"status": "open"}}}))
    return ws


def wait_for(ws, predicate, timeout: float = 15.0) -> str:
    """Frames until one satisfies predicate (no timing asserted: the deadline only stops a hung test)."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        try:
            frame = ws.recv(timeout=max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            break
        seen.append(frame)
        if predicate(frame):
            return frame
    raise AssertionError(f"no matching frame among {len(seen)}: {seen[-3:]!r}")


def test_inbound_appears_escaped_and_reply_ticks_advance(live_app):
    client = signed_in(live_app)
    headers = csrf(client)
    maria = conversation_id(client, "Maria Silva")
    ws = open_socket(live_app, client, maria)
    try:
        payload = "<script>alert(1)</script><img src=x onerror=alert(1)>"
        answer = client.post("/inbox/simulate", data={"customer": maria, "kind": "text", "text": payload}, headers=headers)
        assert answer.status_code == 200, answer.text
        frame = wait_for(ws, lambda f: "alert(1)" in f and 'hx-swap-oob="beforeend:#thread-items"' in f)
        assert "<script>alert" not in frame and "<img src=x" not in frame
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in frame
        assert f'id="conv-{maria}"' in frame  # the row moves too
        sent = client.post(f"/inbox/c/{maria}/messages", data={"mode": "text", "body": "On its way!"}, headers=headers)
        assert sent.status_code == 200, sent.text
        message_id = re.search(r'id="msg-([0-9a-f]{24})"', sent.text).group(1)
        assert 'data-status="queued"' in sent.text
        # The ticks arrive live and only move forward, up to "read" (statuses that land in the same
        # instant show once, as the newer).
        order = ["queued", "accepted", "sent", "delivered", "read"]
        shown: list[str] = []

        def tick(frame: str) -> bool:
            found = re.search(rf'id="msg-{message_id}"[^>]*data-status="([a-z]+)"', frame, re.S)
            if found:
                shown.append(found.group(1))
            return bool(found) and found.group(1) == "read"

        wait_for(ws, tick)
        assert [order.index(x) for x in shown] == sorted(order.index(x) for x in shown), shown
        assert {"sent", "delivered"} & set(shown), shown
    finally:
        ws.close()


def test_another_agents_assignment_and_note_show_live_and_filters_apply(live_app):
    agent = signed_in(live_app)
    admin = signed_in(live_app, app.demo.DEMO_ADMIN)
    lucia = conversation_id(agent, "Lucía Hernández")
    ws = open_socket(live_app, agent, lucia)
    try:
        headers = csrf(admin)
        users = re.findall(r'<option value="([0-9a-f]{24})"[^>]*>Demo Agent', admin.get(f"/inbox/c/{lucia}", headers=headers).text)
        assert users
        admin.post(f"/inbox/c/{lucia}/assign", data={"assignee_id": users[0]}, headers=headers)
        frame = wait_for(ws, lambda f: "assigned the conversation to Demo Agent" in f)
        assert 'id="thread-meta"' in frame or "thread-items" in frame
        admin.post(f"/inbox/c/{lucia}/messages", data={"mode": "note", "body": "Refund approved"}, headers=headers)
        wait_for(ws, lambda f: "Refund approved" in f and "Internal note" in f)
        admin.post(f"/inbox/c/{lucia}/status", data={"status": "resolved"}, headers=headers)
        # The agent's list shows open conversations: the resolved row is removed from it.
        wait_for(ws, lambda f: f'<li id="conv-{lucia}" data-remove="1"' in f)
    finally:
        ws.close()


def test_reconnect_catches_up_on_what_was_missed(live_app):
    client = signed_in(live_app)
    headers = csrf(client)
    omar = conversation_id(client, "Omar Haddad")
    ws = open_socket(live_app, client, omar)
    seq = re.search(r'data-seq="([^"]+)"', client.get("/inbox").text).group(1)  # as the page rendered it
    ws.close()
    client.post("/inbox/simulate", data={"customer": omar, "kind": "text", "text": "Sent while you were away"},
                headers=headers)
    time.sleep(0.5)  # let the webhook be ingested while nobody listens (not a timing assertion)
    ws = open_socket(live_app, client, omar, since=seq)
    try:
        wait_for(ws, lambda f: "Sent while you were away" in f)
    finally:
        ws.close()


def test_socket_refuses_strangers_and_other_sites(live_app):
    with pytest.raises(Exception):  # noqa: B017 - refused at the handshake or closed at once: either way an error
        with connect(live_app.replace("http", "ws") + "/live", open_timeout=5) as ws:
            ws.recv(timeout=5)
    client = signed_in(live_app)
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    with pytest.raises(Exception):  # noqa: B017 - as above
        with connect(live_app.replace("http", "ws") + "/live", open_timeout=5,
                     additional_headers={"Cookie": cookie, "Origin": "https://evil.example"}) as ws:
            ws.recv(timeout=5)


def test_an_event_costs_the_same_reads_with_one_tab_or_six(live_app, settings):
    """A web process reads and renders each event once and fans it out: six open tabs cost what one does."""
    from tests.support.command_capture import capture

    client = signed_in(live_app)
    headers = csrf(client)
    omar = conversation_id(client, "Omar Haddad")

    def reads_for_one_message(tabs: int, text: str) -> int:
        sockets = [open_socket(live_app, client, omar) for _ in range(tabs)]
        try:
            time.sleep(0.3)  # every tab has joined its room
            with capture(settings.mongodb_database) as seen:
                client.post("/inbox/simulate", data={"customer": omar, "kind": "text", "text": text}, headers=headers)
                for ws in sockets:
                    wait_for(ws, lambda f: text in f)
                    wait_for(ws, lambda f: "unread-total" in f)
            # What the live feed reads (the webhook's own writes and upserts are the same either way).
            return sum(1 for c in seen if c.name in ("find", "aggregate", "count"))
        finally:
            for ws in sockets:
                ws.close()

    one = reads_for_one_message(1, "Probe for one tab")
    six = reads_for_one_message(6, "Probe for six tabs")
    assert six <= one + 2, (one, six)  # a cron job may read meanwhile; per-tab reads would be +5 per read


def test_a_tab_whose_missed_events_are_gone_is_asked_to_reload(live_app):
    client = signed_in(live_app)
    omar = conversation_id(client, "Omar Haddad")
    ws = open_socket(live_app, client, omar, since="1-0")  # older than anything the stream still holds
    try:
        wait_for(ws, lambda f: 'data-reload="1"' in f)
    finally:
        ws.close()


def test_a_renamed_contact_shows_at_once_in_the_open_thread_and_rows_keep_their_number(live_app):
    """Issue 14, item 18: the thread header kept the old name until reload; live rows lost the number's name."""
    agent = signed_in(live_app)
    admin = signed_in(live_app, app.demo.DEMO_ADMIN)
    maria = conversation_id(agent, "Maria Silva")
    ws = open_socket(live_app, agent, maria)
    try:
        answer = admin.post(f"/inbox/c/{maria}/contact", data={"name": "Maria Silva Santos"}, headers=csrf(admin))
        assert answer.status_code == 200, answer.text
        frame = wait_for(ws, lambda f: "Maria Silva Santos" in f and 'id="thread-name"' in f)
        assert re.search(r'<h2 id="thread-name" hx-swap-oob="true">Maria Silva Santos</h2>', frame)
        row = re.search(rf'<li id="conv-{maria}".*?</li>', frame, re.S).group(0)
        assert 'class="conv-account"' in row  # the demo has two numbers: the row still says which
    finally:
        ws.close()
