"""The inbox page and its fragments, on the demo workspace (sandbox-backed)."""

from __future__ import annotations

import re

from app.demo import DEMO_ADMIN
from app.domains.conversations.models import Conversation
from app.domains.workspaces.models import User
from app.security import hash_password
from tests.conftest import sign_in

PASSWORD = "demo password 1"


async def demo_client(client_factory, who: str = DEMO_ADMIN):
    client = await client_factory(demo=True, inline_worker=True)
    await User.find(User.email == who).update({"$set": {"password_hash": hash_password(PASSWORD)}})
    answer = await sign_in(client, who, PASSWORD)
    assert answer.status_code in (302, 303), answer.text
    return client


def conv_list(html: str) -> str:
    start = html.index('id="conv-items"')
    return html[start:html.index("</ul>", start)]


def hx(**extra):
    return {"HX-Request": "true", **extra}


async def test_inbox_page_lists_demo_conversations_with_ids_and_ticks(client_factory):
    client = await demo_client(client_factory)
    page = await client.get("/inbox")
    assert page.status_code == 200
    html = page.text
    assert 'ws-connect="/live"' in html
    assert html.count('class="conv-row') >= 3  # open filter by default: Maria, Lucía, Omar
    assert re.search(r'id="conv-[0-9a-f]{24}"', html)
    rows = conv_list(html)
    assert "Maria Silva" in rows and "Peter Smith" not in rows  # resolved is filtered out
    everything = await client.get("/inbox/conversations?status=all", headers=hx())
    assert "Peter Smith" in everything.text and "Aiko Tanaka" in everything.text
    assert "window closed" in everything.text and "window closing" in everything.text


async def test_open_conversation_renders_thread_kinds_and_marks_read(client_factory):
    client = await demo_client(client_factory)
    maria = await Conversation.find_one(Conversation.unread_count == 2)
    thread = await client.get(f"/inbox/c/{maria.id}", headers=hx())
    assert thread.status_code == 200
    text = thread.text
    assert re.search(r'id="msg-[0-9a-f]{24}"[^>]*data-status="read"', text, re.S)
    assert "Open map" in text and 'rel="noopener noreferrer"' in text
    assert 'href="https://example.com/map?pin=1"' in text
    assert "Tapped button" in text and 'id="composer"' in text
    assert (await Conversation.get(maria.id)).unread_count == 0


async def test_every_filter_and_search(client_factory):
    client = await demo_client(client_factory)
    for query, expected, absent in [
        ("status=pending", "John Doe", "Maria Silva"),
        ("status=snoozed", "Aiko Tanaka", "John Doe"),
        ("status=all&q=lucía", "Lucía Hernández", "Maria Silva"),
        ("status=all&q=20 kg", "John Doe", "Maria Silva"),
        ("status=all&q=4155550", "John Doe", "Omar Haddad"),
        ("status=all&assignee=unassigned", "Maria Silva", "Omar Haddad"),
    ]:
        answer = await client.get(f"/inbox/conversations?{query}", headers=hx())
        assert answer.status_code == 200
        assert expected in answer.text, query
        assert absent not in answer.text, query
    bad = await client.get("/inbox/conversations?cursor=%%%", headers=hx())
    assert bad.status_code == 400  # the one cursor error (app/pagination.py): INVALID_CURSOR


async def test_other_conversations_of_the_contact(client_factory):
    client = await demo_client(client_factory)
    maria = await Conversation.find_one(Conversation.unread_count == 2)
    from app.domains.accounts.models import WhatsAppAccount

    other_number = await WhatsAppAccount.find_one(WhatsAppAccount.id != maria.account_id)
    other = await Conversation(workspace_id=maria.workspace_id, account_id=other_number.id,
                               contact_id=maria.contact_id).insert()
    thread = await client.get(f"/inbox/c/{maria.id}", headers=hx())
    assert f'hx-get="/inbox/c/{maria.id}/others"' in thread.text
    others = await client.get(f"/inbox/c/{maria.id}/others", headers=hx())
    assert f'href="/inbox/c/{other.id}"' in others.text and other_number.name in others.text
