"""WhatsApp in its 2026 shapes, end to end over real HTTP with the Cloud API sandbox standing in for
Meta: a customer who keeps their number private (username only) is answered through their
business-scoped user id; a person who writes first with their number and then without it stays one
conversation; a group's message and its reply stay in the group; a number without groups says so."""

from __future__ import annotations

import httpx

from tests.integration.test_inbound_e2e import _connect, _poll, live  # noqa: F401 - the fixture


async def _conversations(api: httpx.AsyncClient, count: int = 1) -> list[dict]:
    """The conversations once ``count`` of them show the customer's message (a conversation is
    listed a moment before its first message is recorded in it)."""
    listing = await _poll(lambda: api.get("/api/v1/conversations"), lambda r: len(
        [c for c in r.json()["data"] if c["last_message"] is not None]) >= count)
    return listing.json()["data"]


async def _messages(api: httpx.AsyncClient, conversation_id: str) -> list[dict]:
    return (await api.get(f"/api/v1/conversations/{conversation_id}/messages")).json()["data"]


async def test_a_username_only_customer_is_answered_through_their_user_id(live):
    base, runtime = live
    setup = await _connect(base, runtime)
    pnid = setup.account.phone_number_id
    async with httpx.AsyncClient(base_url=base, headers=setup.auth) as api:
        wrote = await api.post("/sandbox/control/inbound", json={
            "phone_number_id": pnid, "user_id": "US.13491208655302741918", "username": "dana.bakes",
            "name": "Dana", "message": {"type": "text", "text": {"body": "hi, no number for you"}}})
        assert wrote.status_code == 200, wrote.text
        assert wrote.json()["wa_id"] is None
        [conversation] = await _conversations(api)
        contact = conversation["contact"]
        assert (contact["wa_id"], contact["phone"], contact["user_id"], contact["username"]) == (
            None, None, "US.13491208655302741918", "dana.bakes")
        reply = await api.post(f"/api/v1/conversations/{conversation['id']}/messages",
                               json={"type": "text", "content": {"body": "Hello Dana!"}})
        assert reply.status_code == 202, reply.text
        message_url = f"/api/v1/messages/{reply.json()['id']}"
        sent = await _poll(lambda: api.get(message_url), lambda r: r.json()["status"] in ("sent", "delivered",
                                                                                            "read", "failed"))
        assert sent.json()["status"] != "failed", sent.json()["error"]
        [record] = (await api.get("/sandbox/control/sent")).json()["data"]
        assert (record["to"], record["recipient"], record["recipient_type"]) == (
            None, "US.13491208655302741918", "individual")


async def test_number_then_username_only_is_one_conversation_and_the_reply_goes_to_the_number(live):
    base, runtime = live
    setup = await _connect(base, runtime)
    pnid = setup.account.phone_number_id
    async with httpx.AsyncClient(base_url=base, headers=setup.auth) as api:
        first = await api.post("/sandbox/control/inbound", json={
            "phone_number_id": pnid, "from": "+1 650 555 1234", "username": "omar", "name": "Omar",
            "message": {"type": "text", "text": {"body": "with my number"}}})
        user_id = first.json()["user_id"]
        await api.post("/sandbox/control/inbound", json={
            "phone_number_id": pnid, "user_id": user_id, "name": "Omar",
            "message": {"type": "text", "text": {"body": "now without it"}}})
        [conversation] = await _conversations(api)
        await _poll(lambda: api.get(f"/api/v1/conversations/{conversation['id']}/messages"),
                    lambda r: len(r.json()["data"]) == 2)
        assert len(await _conversations(api)) == 1
        reply = await api.post(f"/api/v1/conversations/{conversation['id']}/messages",
                               json={"type": "text", "content": {"body": "got both"}})
        assert reply.status_code == 202, reply.text
        records = await _poll(lambda: api.get("/sandbox/control/sent"), lambda r: r.json()["data"])
        assert records.json()["data"][0]["to"] == "+16505551234"  # a known number is used first


async def test_a_group_message_and_its_reply_stay_in_the_group(live):
    base, runtime = live
    setup = await _connect(base, runtime)
    pnid = setup.account.phone_number_id
    async with httpx.AsyncClient(base_url=base, headers=setup.auth) as api:
        made = await api.post("/sandbox/control/groups", json={
            "phone_number_id": pnid, "subject": "Bakery orders", "participants": ["+16505551234", "+16505550000"]})
        assert made.status_code == 201, made.text
        group_id = made.json()["group_id"]
        await api.post("/sandbox/control/inbound", json={
            "phone_number_id": pnid, "from": "+16505551234", "name": "Dana", "group_id": group_id,
            "message": {"type": "text", "text": {"body": "two croissants please"}}})
        conversations = await _poll(lambda: api.get("/api/v1/conversations"),
                                    lambda r: any(c["last_message"] for c in r.json()["data"]))
        [conversation] = conversations.json()["data"]
        assert conversation["contact"]["kind"] == "group" and conversation["contact"]["name"] == "Bakery orders"
        [said] = await _messages(api, conversation["id"])
        assert said["content"] == {"body": "two croissants please"} and said["sender_contact_id"]
        dana = (await api.get(f"/api/v1/contacts/{said['sender_contact_id']}")).json()
        assert dana["phone"] == "+16505551234" and dana["kind"] == "person"
        reply = await api.post(f"/api/v1/conversations/{conversation['id']}/messages",
                               json={"type": "text", "content": {"body": "Coming up!"}})
        assert reply.status_code == 202, reply.text
        records = await _poll(lambda: api.get("/sandbox/control/sent"), lambda r: r.json()["data"])
        [record] = records.json()["data"]
        assert (record["recipient_type"], record["to"]) == ("group", group_id)
        delivered = await _poll(lambda: api.get(f"/api/v1/messages/{reply.json()['id']}"),
                                lambda r: r.json()["status"] in ("sent", "delivered", "read", "failed"))
        assert delivered.json()["status"] != "failed", delivered.json()["error"]


async def test_a_number_without_groups_says_so_instead_of_sending_elsewhere(live):
    import time

    from tests.integration.test_inbound_e2e import SECRET
    from tests.support.inbound import signed

    base, runtime = live
    setup = await _connect(base, runtime)
    pnid = setup.account.phone_number_id
    async with httpx.AsyncClient(base_url=base, headers=setup.auth) as api:
        # The sandbox's copy of this number has groups turned off (Meta has not enabled it for groups).
        answer = await api.post("/sandbox/control/numbers", json={
            "phone_number_id": pnid, "waba_id": setup.account.waba_id, "display_phone_number": "+1 555 078 3881",
            "access_token": "EAAG-sandbox-token-e2e", "app_secret": SECRET, "groups_enabled": False,
            "webhook_url": f"{base}{setup.webhook_path}"})
        assert answer.status_code == 201, answer.text
        message = {"from": "16505551234", "group_id": "Z3JvdXAtb2YtYS1wYXJ0bmVy", "id": "wamid.group-1",
                   "timestamp": str(int(time.time())), "type": "text", "text": {"body": "from a group"}}
        value = {"messaging_product": "whatsapp", "metadata": {"phone_number_id": pnid},
                 "contacts": [{"profile": {"name": "Dana"}, "wa_id": "16505551234"}], "messages": [message]}
        body, headers = signed({"object": "whatsapp_business_account", "entry": [
            {"id": setup.account.waba_id, "changes": [{"field": "messages", "value": value}]}]}, SECRET)
        delivered = await api.post(setup.webhook_path, content=body, headers=headers)
        assert delivered.status_code == 200, delivered.text
        [conversation] = await _conversations(api)
        assert conversation["contact"]["kind"] == "group"
        reply = await api.post(f"/api/v1/conversations/{conversation['id']}/messages",
                               json={"type": "text", "content": {"body": "hi all"}})
        assert reply.status_code == 202, reply.text
        failed = await _poll(lambda: api.get(f"/api/v1/messages/{reply.json()['id']}"),
                             lambda r: r.json()["status"] == "failed")
        assert "groups are not available for this number" in failed.json()["error"]["agent_message"]
        assert (await api.get("/sandbox/control/sent")).json()["data"] == []
