"""Every /api/v1 route that takes an id, called with another workspace's real ids: 404, and nothing changes.

The routes come from the served OpenAPI document, so a route added later is covered without editing this.
"""

from __future__ import annotations

import pytest

from app.domains.catalog.models import Label
from app.domains.contacts.models import Contact
from app.domains.conversations.models import Conversation
from app.domains.subscriptions.models import Subscription
from app.domains.workspaces.models import ApiKey
from tests.support.api_world import build_world

# A valid body for routes that validate their body before looking the id up.
BODIES = {
    ("POST", "/api/v1/conversations/{conversation_id}/messages"): {"type": "text", "content": {"body": "hi"}},
    ("PATCH", "/api/v1/accounts/{account_id}"): {"name": "Renamed"},
    ("PATCH", "/api/v1/accounts/{account_id}/profile"): {"about": "Hello"},
    ("PATCH", "/api/v1/users/{user_id}"): {"name": "Renamed"},
    ("PATCH", "/api/v1/teams/{team_id}"): {"name": "Renamed"},
    ("PATCH", "/api/v1/canned-responses/{item_id}"): {"text": "Renamed"},
    ("PATCH", "/api/v1/labels/{item_id}"): {"name": "renamed"},
    ("PATCH", "/api/v1/attributes/{item_id}"): {"name": "Renamed"},
    ("PATCH", "/api/v1/subscriptions/{subscription_id}"): {"active": False},
    ("PATCH", "/api/v1/contacts/{contact_id}"): {"name": "Renamed"},
    ("PATCH", "/api/v1/conversations/{conversation_id}"): {"status": "resolved"},
    ("POST", "/api/v1/conversations/{conversation_id}/notes"): {"text": "Not yours"},
    ("POST", "/api/v1/messages/{message_id}/reactions"): {"emoji": "👍"},
}


@pytest.fixture
async def worlds(client_factory):
    client = await client_factory(settings={"api_rate_limit_per_minute": 10000})
    runtime = client.app.state.runtime
    return client, await build_world(runtime, "Mine"), await build_world(runtime, "Theirs")


async def test_every_route_answers_404_for_another_workspaces_ids(worlds):
    client, mine, theirs = worlds
    document = (await client.get("/schema/openapi.json")).json()
    ids = mine.ids_by_collection()
    tried = []
    for path, item in document["paths"].items():
        if "{" not in path or not path.startswith("/api/v1/"):
            continue
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            segments = path.split("/")
            url = "/".join(ids[segments[i - 1]] if s.startswith("{") else s for i, s in enumerate(segments))
            kwargs: dict = {"headers": theirs.auth}
            content = operation.get("requestBody", {}).get("content", {})
            if "multipart/form-data" in content:
                kwargs["files"] = {"file": ("photo.png", b"\x89PNG\r\n", "image/png")}
            elif content:
                kwargs["json"] = BODIES.get((method.upper(), path), {})
            answer = await client.request(method.upper(), url, **kwargs)
            assert answer.status_code == 404, (method, path, answer.status_code, answer.text[:300])
            assert set(answer.json()) == {"success", "error", "error_code", "details"}
            tried.append((method, path))
    assert len(tried) >= 40
    # Nothing of mine was changed or removed by those calls.
    assert await Label.get(ids["labels"]) is not None and await Contact.get(ids["contacts"]) is not None
    assert (await Conversation.get(ids["conversations"])).status.value == "open"
    assert (await Subscription.get(ids["subscriptions"])).active
    assert (await ApiKey.get(ids["api-keys"])).revoked_at is None


async def test_lists_only_show_the_callers_workspace(worlds):
    client, mine, theirs = worlds
    for path in ("/api/v1/contacts", "/api/v1/conversations", "/api/v1/labels", "/api/v1/canned-responses",
                 "/api/v1/templates", "/api/v1/subscriptions", "/api/v1/users", "/api/v1/teams"):
        seen = {x["id"] for x in (await client.get(path, headers=theirs.auth)).json()["data"]}
        assert not seen & set(mine.ids_by_collection().values()), path
