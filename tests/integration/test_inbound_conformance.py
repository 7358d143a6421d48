"""Every real payload of the conformance corpus (tests/fixtures/webhooks) ingests without error."""

from __future__ import annotations

import json
from pathlib import Path

from app.domains.accounts.models import WhatsAppAccount
from app.domains.messages.models import Message
from app.domains.webhooks.models import WebhookEvent
from app.security import new_token
from tests.support.inbound import ingest_pending, make_setup, store_event

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "webhooks"


def corpus() -> list[tuple[str, dict]]:
    cases = [(path.name, json.loads(path.read_text())) for path in sorted(FIXTURES.glob("*.json"))]
    for path in sorted((FIXTURES / "pywa_raw").glob("*.json")):
        for name, payload in json.loads(path.read_text()).items():
            if isinstance(payload, dict) and "entry" in payload:
                cases.append((f"pywa_raw/{path.name}:{name}", payload))
    return cases


def numbers_in(payload: dict) -> set[str]:
    found = set()
    for entry in payload.get("entry", []):
        for change in entry.get("changes", []):
            metadata = (change.get("value") or {}).get("metadata") or {}
            if metadata.get("phone_number_id"):
                found.add((metadata["phone_number_id"], entry.get("id", "")))
    return found


async def test_every_corpus_file_ingests_without_error(client_factory):
    client = await client_factory()
    runtime = client.app.state.runtime
    setup = await make_setup(runtime, phone_number_id="9990001", waba_id="9990002")
    cases = corpus()
    assert len(cases) > 90
    # Connect every number the corpus talks about, so its changes are routed (ids are Meta's, some
    # placeholders, hence inserted directly rather than through the admin's digit-only form).
    numbers = dict(sorted(set().union(*(numbers_in(p) for _, p in cases))))  # one account per number
    for phone_number_id, waba_id in numbers.items():
        await WhatsAppAccount(workspace_id=setup.workspace_id, name=phone_number_id, phone_number_id=phone_number_id,
                              waba_id=waba_id, display_phone_number="+1 555 0100", access_token_encrypted="x",
                              app_secret_encrypted="x", verify_token=new_token(), webhook_key=new_token()).insert()
    event_ids = {}
    for name, payload in cases:
        event_ids[name] = await store_event(runtime, setup, json.dumps(payload).encode())
    outcomes = await ingest_pending(runtime)
    assert set(outcomes) == {"ingested"}, outcomes
    for name, event_id in event_ids.items():
        event = await WebhookEvent.get(event_id)
        assert event.ingested_at is not None and event.error is None, (name, event.error)
        assert not [n for n in event.notes if "not connected" in n], (name, event.notes)
    # Every customer message is stored, or applied to the message it reacts to / edits / revokes.
    stored = {m.wamid for m in await Message.find_all().to_list()}
    for name, payload in cases:
        for entry in payload["entry"]:
            for change in entry["changes"]:
                value = change.get("value") or {}
                for message in value.get("messages", []) + value.get("message_echoes", []):
                    if message.get("type") in ("reaction", "edit", "revoke"):
                        continue
                    assert message["id"] in stored, (name, message["id"])
    # Re-ingesting the whole corpus changes nothing.
    count = await Message.find_all().count()
    await WebhookEvent.get_motor_collection().update_many({}, {"$set": {"ingested_at": None}})
    assert set(await ingest_pending(runtime)) == {"ingested"}
    assert await Message.find_all().count() == count
