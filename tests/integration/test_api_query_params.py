"""Query parameters of the JSON API: unknown ones are refused by name; conversations by customer."""

from __future__ import annotations

from tests.support.inbound import envelope, make_setup, signed, text_message


async def test_unknown_query_parameters_are_a_400_naming_them(client_factory):
    client = await client_factory()
    setup = await make_setup(client.app.state.runtime)
    for path in ("/api/v1/conversations?offset=20", "/api/v1/conversations?start_date=2026-01-01&status=open",
                 "/api/v1/contacts?page=2"):
        answer = await client.get(path, headers=setup.auth)
        assert answer.status_code == 400, (path, answer.text)
        body = answer.json()
        assert body["error_code"] == "UNKNOWN_PARAMETER" and body["success"] is False
        assert set(body["details"]) == {path.split("?")[1].split("=")[0]}
    # The documented ones still work, aliases included.
    assert (await client.get("/api/v1/conversations?status=open&limit=5", headers=setup.auth)).status_code == 200


async def test_conversations_by_contact_or_whatsapp_id(client_factory):
    client = await client_factory()
    setup = await make_setup(client.app.state.runtime)
    for sender in ("972500000001", "972500000002"):
        body, headers = signed(envelope(messages=[text_message("hi", from_=sender)]))
        assert (await client.post(setup.webhook_path, content=body, headers=headers)).status_code == 200
    every = (await client.get("/api/v1/conversations", headers=setup.auth)).json()["data"]
    assert len(every) == 2
    by_wa_id = (await client.get("/api/v1/conversations?wa_id=%2B972 50 000 0002", headers=setup.auth)).json()["data"]
    assert [c["contact"]["wa_id"] for c in by_wa_id] == ["972500000002"]
    contact_id = by_wa_id[0]["contact"]["id"]
    by_contact = (await client.get(f"/api/v1/conversations?contact_id={contact_id}", headers=setup.auth)).json()
    assert [c["id"] for c in by_contact["data"]] == [by_wa_id[0]["id"]]
    unknown = await client.get("/api/v1/conversations?wa_id=15550000000", headers=setup.auth)
    assert unknown.status_code == 200 and unknown.json()["data"] == []
    bad = await client.get("/api/v1/conversations?wa_id=call-me-maybe", headers=setup.auth)
    assert bad.status_code == 400 and "wa_id" in bad.json()["details"]
