"""Every /api/v1 route that takes an id, called with another workspace's real ids: 404, and nothing changes.

The routes come from the served OpenAPI document, so a route added later is covered without editing this.
"""

from __future__ import annotations

import pytest

from app.domains.catalog.models import Label
from app.domains.contacts.models import Contact
from app.domains.conversations.models import Conversation
from app.domains.subscriptions.models import Subscription
from app.domains.workflows.models import Workflow, WorkflowRun
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
    ("PUT", "/api/v1/workflows/{workflow_id}"): {"name": "Renamed", "trigger": {"type": "manual"}, "steps": []},
    ("POST", "/api/v1/workflows/{workflow_id}/enabled"): {"enabled": False},
    ("POST", "/api/v1/broadcasts/{broadcast_id}/test"): {"contact_id": "6b12d0c703ad15ea8f962084"},
    ("POST", "/api/v1/broadcasts/{broadcast_id}/start"): {},
    ("PUT", "/api/v1/broadcasts/{broadcast_id}"): {"name": "Renamed", "account_id": "6b12d0c703ad15ea8f962084",
                                                   "template_name": "sale", "language": "en"},
}
# Routes whose parameter is not an id of a workspace's thing (a ready-made workflow's key is the same for all).
NOT_IDS = {"/api/v1/workflows/ready-made/{key}"}
WAITING = {"name": "Mine", "enabled": True, "trigger": {"type": "webhook"},
           "steps": [{"id": "pause", "type": "wait", "params": {"minutes": 60}}]}


@pytest.fixture
async def worlds(client_factory):
    client = await client_factory(settings={"api_rate_limit_per_minute": 10000})
    runtime = client.app.state.runtime
    mine, theirs = await build_world(runtime, "Mine"), await build_world(runtime, "Theirs")
    # A workflow of mine, on, with a run in progress (no worker here: it stays queued, i.e. in progress).
    workflow = await runtime.workflows.save(mine.workspace_id, WAITING)
    run = await runtime.workflows.start_by_hand(mine.workspace_id, str(workflow.id),
                                                conversation_id=str(mine.conversations[0].id))
    # A draft broadcast of mine (a template and a tag audience: the draft's checks pass).
    from app.domains.broadcasts.models import Broadcast

    broadcast = await Broadcast(workspace_id=mine.workspace_id, name="Mine", account_id=mine.account.id,
                                template_name="sale", language="en").insert()
    mine.extra_ids.update({"workflows": str(workflow.id), "workflow-runs": str(run.id), "broadcasts": str(broadcast.id)})
    return client, mine, theirs


async def test_every_route_answers_404_for_another_workspaces_ids(worlds):
    client, mine, theirs = worlds
    document = (await client.get("/schema/openapi.json")).json()
    ids = mine.ids_by_collection()
    tried = []
    for path, item in document["paths"].items():
        if "{" not in path or not path.startswith("/api/v1/") or path in NOT_IDS:
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
                if path == "/api/v1/workflows/{workflow_id}/runs":  # a body that would start a run of theirs
                    kwargs["json"] = {"contact_id": str(theirs.contacts[0].id)}
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
    workflow = await Workflow.get(ids["workflows"])
    assert workflow.enabled and workflow.version == 1 and workflow.name == "Mine"
    assert (await WorkflowRun.get(ids["workflow-runs"])).status in ("running", "waiting")
    assert await WorkflowRun.find({"workspace_id": theirs.workspace_id}).count() == 0
    assert await Workflow.find({"workspace_id": theirs.workspace_id}).count() == 0
    from app.domains.broadcasts.models import Broadcast

    assert (await Broadcast.get(ids["broadcasts"])).status == "draft"


async def test_lists_only_show_the_callers_workspace(worlds):
    client, mine, theirs = worlds
    for path in ("/api/v1/contacts", "/api/v1/conversations", "/api/v1/labels", "/api/v1/canned-responses",
                 "/api/v1/templates", "/api/v1/subscriptions", "/api/v1/users", "/api/v1/teams", "/api/v1/workflows",
                 "/api/v1/workflow-runs", "/api/v1/broadcasts"):
        seen = {x["id"] for x in (await client.get(path, headers=theirs.auth)).json()["data"]}
        assert not seen & set(mine.ids_by_collection().values()), path
