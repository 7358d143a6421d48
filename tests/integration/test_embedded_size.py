"""Past the size the embedded database serves, admins are told (and the log says so) to move to MongoDB."""

from __future__ import annotations

from beanie import PydanticObjectId

import app.domains.system.embedded_size as embedded_size
from app.domains.conversations.models import Conversation
from tests.conftest import sign_in
from tests.support.admin import ADMIN


async def test_admins_see_when_the_embedded_database_is_outgrown(client_factory, mongo_server, monkeypatch):
    if mongo_server is None:
        return  # the mongomock quick lane has no embedded server to watch
    monkeypatch.setattr(embedded_size, "EMBEDDED_CONVERSATION_LIMIT", 2)
    small = await client_factory(settings=ADMIN, embedded=mongo_server)
    await sign_in(small, "admin@example.com", "admin password")
    assert "embedded database" not in (await small.get("/admin/numbers")).text

    workspace = PydanticObjectId()
    for _ in range(3):
        await Conversation(workspace_id=workspace, account_id=PydanticObjectId(), contact_id=PydanticObjectId()).insert()
    grown = await client_factory(settings=ADMIN, embedded=mongo_server)
    await sign_in(grown, "admin@example.com", "admin password")
    page = (await grown.get("/admin/numbers")).text
    assert "runs on the embedded database" in page and "it now holds 3" in page and "Move to MongoDB" in page
