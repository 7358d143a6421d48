"""Duplicates and merging contacts (issue 16 item 6), through the API, the admin pages and real signed
webhooks: duplicates by each reason; a merge moves conversations on other numbers and folds the one
on a shared number, keeps every message in order, unites tags and consent and applies the picked
fields; the other's number then finds the survivor; a merge cut short is finished by the sweeper
with nothing lost or duplicated; agents 403, self or group 422, another workspace's contact 404."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import timedelta

import pytest
from beanie import PydanticObjectId

from app.domains.accounts.models import WhatsAppAccount
from app.domains.accounts.services import NewAccount
from app.domains.contacts.merge import ContactMerger
from app.domains.contacts.models import Contact, ContactMerge
from app.domains.contacts.services import ContactService
from app.domains.conversations.models import Conversation
from app.domains.messages.models import Message
from app.domains.subscriptions.models import IntegrationEvent, Subscription
from app.domains.workspaces.models import Role, User
from app.realtime import workspace_stream
from app.runtime import Runtime
from tests.conftest import csrf_from, sign_in
from tests.support.inbound import APP_SECRET, Setup, deliver, envelope, make_setup, on_test_loop, text_message

SURVIVOR, OTHER = "972501110001", "972502220002"
NOW = int(time.time())


@dataclass
class Env:
    client: object
    runtime: Runtime
    main: Setup
    sales: Setup
    agent: User
    agent_auth: dict[str, str]

    @property
    def ws(self):
        return self.main.workspace_id


@pytest.fixture
async def env(client_factory):
    client = await client_factory(settings={"api_rate_limit_per_minute": 10000})
    runtime = client.app.state.runtime
    main = await make_setup(runtime)
    account = await runtime.accounts.create(main.workspace_id, NewAccount(
        name="Sales", phone_number_id="2233445566778", waba_id="1234567890987654322",
        display_phone_number="972123450000", access_token="EAAG-test-token-0002", app_secret=APP_SECRET))
    sales = Setup(runtime, account, main.api_key, main.email, main.password)
    agent = await runtime.people.create_user(main.workspace_id, "agent@example.com", "agent password", Role.AGENT, "Ann")
    _, agent_key = await runtime.people.create_api_key(main.workspace_id, "agent key", Role.AGENT, agent.id)
    return Env(client, runtime, main, sales, agent, {"Authorization": f"Bearer {agent_key}"})


async def write(env: Env, number: Setup, wa_id: str, body: str, at: int, name: str = "Dana") -> None:
    """The customer ``wa_id`` writes ``body`` to ``number``, as Meta's signed webhook."""
    await deliver(env.runtime, number, envelope(messages=[text_message(body, from_=wa_id, timestamp=at)], name=name,
                                                phone_number_id=number.account.phone_number_id,
                                                waba_id=number.account.waba_id))


async def by_number(wa_id: str) -> Contact:
    return await Contact.find_one({"identities": f"wa:{wa_id}"})


async def thread(conversation_id) -> list[str]:
    return [m.content["body"] for m in await Message.find(Message.conversation_id == conversation_id).sort("_id").to_list()]


async def two_customers(env: Env) -> tuple[Contact, Contact]:
    """Dana wrote from two numbers: the survivor on the main number; the other on both numbers."""
    await write(env, env.main, SURVIVOR, "S1 hello", NOW - 3600)
    await write(env, env.main, OTHER, "O1 first on main", NOW - 3500, name="Dana L")
    await write(env, env.sales, OTHER, "O2 on sales", NOW - 3400, name="Dana L")
    await write(env, env.main, OTHER, "O3 again on main", NOW - 3300, name="Dana L")
    await write(env, env.main, SURVIVOR, "S2 still here", NOW - 3200)
    survivor, other = await by_number(SURVIVOR), await by_number(OTHER)
    contacts = Contact.get_motor_collection()
    await contacts.update_one({"_id": survivor.id}, {"$set": {"tags": ["vip"], "attributes": {"plan": "pro"}}})
    await contacts.update_one({"_id": other.id}, {"$set": {"tags": ["beta", "vip"], "name": "Dana Levi",
                                                           "email": "dana@example.com",
                                                           "attributes": {"plan": "free", "city": "Paris"}}})
    await ContactService().set_marketing_opt_out(env.ws, other.id, True, source="agent", by="u-1", note="asked by phone")
    mine = await Conversation.find_one({"contact_id": survivor.id, "account_id": env.main.account.id})
    theirs = await Conversation.find_one({"contact_id": other.id, "account_id": env.main.account.id})
    await Conversation.get_motor_collection().update_one({"_id": mine.id}, {"$set": {
        "assignee_id": env.agent.id, "labels": ["l-survivor"]}})
    await Conversation.get_motor_collection().update_one({"_id": theirs.id}, {"$set": {
        "assignee_id": PydanticObjectId(), "labels": ["l-other", "l-survivor"]}})  # another agent
    return await by_number(SURVIVOR), await by_number(OTHER)


async def test_preview_and_merge_move_fold_keep_every_message_and_unite_the_rest(env):
    client, ws = env.client, env.ws
    survivor, other = await two_customers(env)
    await Subscription(workspace_id=ws, url="https://hooks.example.test/in", events=["contact.merged"],
                       secret_encrypted=env.runtime.secrets.encrypt("whsec_x"), secret_last4="ec_x").insert()
    before = {m.id: m.content["body"] for m in await Message.find(Message.workspace_id == ws).to_list()}
    mine = await Conversation.find_one({"contact_id": survivor.id})
    theirs_main = await Conversation.find_one({"contact_id": other.id, "account_id": env.main.account.id})
    theirs_sales = await Conversation.find_one({"contact_id": other.id, "account_id": env.sales.account.id})

    pair = {"survivor_id": str(survivor.id), "other_id": str(other.id)}
    preview = await client.post("/api/v1/contacts/merge/preview", headers=env.main.auth, json=pair)
    assert preview.status_code == 200, preview.text
    p = preview.json()
    fields = {f["field"]: f for f in p["fields"]}
    assert {"name", "email", "phone", "profile_name", "opted_out_marketing", "attributes.plan",
            "attributes.city"} == set(fields)
    assert fields["name"]["default"] == "other" and fields["attributes.plan"]["default"] == "survivor"
    assert fields["opted_out_marketing"]["default"] == "other" and fields["phone"]["default"] == "survivor"
    assert sorted(p["tags"]) == ["beta", "vip"]
    assert [(s["messages"], s["folds_into"]) for s in p["survivor_conversations"]] == [(2, None)]
    assert sorted((s["account_name"], s["messages"], s["folds_into"]) for s in p["other_conversations"]) == [
        ("Main", 2, str(mine.id)), ("Sales", 1, None)]

    merged = await client.post("/api/v1/contacts/merge", headers=env.main.auth,
                               json={**pair, "choose": {"attributes.plan": "other", "profile_name": "survivor"}})
    assert merged.status_code == 200, merged.text
    m = merged.json()
    assert m["state"] == "done" and m["conversations_moved"] == 1 and m["conversations_folded"] == 1
    assert m["messages_moved"] == 3 and m["contact"]["id"] == str(survivor.id)

    # The other contact is gone (404); its id leads to the survivor.
    assert (await client.get(f"/api/v1/contacts/{other.id}", headers=env.main.auth)).status_code == 404
    assert await ContactMerger().merged_into(ws, other.id) == survivor.id
    assert await Contact.find(Contact.workspace_id == ws, Contact.kind == "person").count() == 1
    s = await Contact.get(survivor.id)
    assert sorted(s.tags) == ["beta", "vip"] and s.attributes == {"plan": "free", "city": "Paris"}
    assert s.name == "Dana Levi" and s.email == "dana@example.com" and s.profile_name == "Dana"
    assert s.opted_out_marketing and s.wa_id == SURVIVOR
    assert [(c.source, c.opted_out) for c in s.consent] == [("agent", True), ("merge", True)]
    assert {f"wa:{SURVIVOR}", f"wa:{OTHER}"} <= set(s.identities)

    # Every message kept, all the survivor's; the shared number's thread holds both, in order.
    after = {m.id: m for m in await Message.find(Message.workspace_id == ws).to_list()}
    assert {i: m.content["body"] for i, m in after.items()} == before
    assert {m.contact_id for m in after.values()} == {survivor.id}
    assert await thread(mine.id) == ["S1 hello", "O1 first on main", "O3 again on main", "S2 still here"]
    assert await Conversation.get(theirs_main.id) is None
    moved = await Conversation.get(theirs_sales.id)
    assert moved.contact_id == survivor.id and await thread(moved.id) == ["O2 on sales"]
    folded = await Conversation.get(mine.id)
    assert folded.unread_count == 4 and folded.assignee_id == env.agent.id
    assert sorted(folded.labels) == ["l-other", "l-survivor"] and folded.merged_from == [theirs_main.id]
    assert folded.last_message.text == "S2 still here"
    assert (await IntegrationEvent.find_one(IntegrationEvent.type == "contact.merged")) is not None
    async with on_test_loop(env.runtime) as local:  # open inboxes: the folded row goes, the others redraw
        events = [json.loads(fields[b"e"]) for _, fields in await local.redis.xrange(workspace_stream(ws))]
    assert {"event": "conversation.removed", "conversation_id": str(theirs_main.id)} in events
    assert {(e["event"], e.get("conversation_id")) for e in events} >= {
        ("conversation.updated", str(mine.id)), ("conversation.updated", str(theirs_sales.id))}

    # The other's number now finds the survivor, in its conversation on that number.
    await write(env, env.main, OTHER, "O4 after the merge", NOW - 60, name="Dana L")
    assert await Contact.find(Contact.workspace_id == ws, Contact.kind == "person").count() == 1
    assert (await thread(mine.id))[-1] == "O4 after the merge"
    assert (await Contact.get(survivor.id)).wa_id == OTHER  # replies go to the number they wrote from
    await write(env, env.main, SURVIVOR, "S3 and the first number too", NOW - 30)
    assert (await thread(mine.id))[-1] == "S3 and the first number too"
    assert await Contact.find(Contact.workspace_id == ws, Contact.kind == "person").count() == 1

    # Asking again returns the finished merge (nothing done twice).
    again = await client.post("/api/v1/contacts/merge", headers=env.main.auth, json=pair)
    assert again.status_code == 200 and again.json()["id"] == m["id"]
    assert await Message.find(Message.workspace_id == ws).count() == len(before) + 2


async def test_a_merge_cut_short_is_finished_by_the_sweeper_with_nothing_lost_or_doubled(env):
    from workers.tasks import finish_contact_merges

    ws = env.ws
    survivor, other = await two_customers(env)
    count = await Message.find(Message.workspace_id == ws).count()
    merger = ContactMerger()
    merge = await merger.plan(ws, survivor.id, other.id, choose={"name": "survivor"}, by="test")
    await merger.run_step(merge, "release")
    # Meanwhile the customer writes from the other number: a new contact holds it for a moment.
    await write(env, env.main, OTHER, "O5 during the merge", NOW - 100, name="Dana L")
    assert await Contact.find(Contact.workspace_id == ws, Contact.kind == "person").count() == 3
    await merger.run_step(merge, "survivor")
    await merger.run_step(merge, "survivor")  # run twice (a retry after a crash): applied once
    # The process dies here. A second merge of either contact waits for this one.
    busy = await env.client.post("/api/v1/contacts/merge", headers=env.main.auth,
                                 json={"survivor_id": str(other.id), "other_id": str(survivor.id)})
    assert busy.status_code == 409 and busy.json()["error_code"] == "MERGE_RUNNING"
    assert (await ContactMerge.get(merge.id)).state == "running"

    await ContactMerge.get_motor_collection().update_one(
        {"_id": merge.id}, {"$set": {"updated_at": merge.updated_at - timedelta(minutes=5)}})
    async with on_test_loop(env.runtime) as local:
        assert await finish_contact_merges({"runtime": local}) == 1
    done = await ContactMerge.get(merge.id)
    assert done.state == "done" and done.locked is None and len(done.absorbed_ids) == 1
    s = await Contact.get(survivor.id)
    assert s.name == "" and [c.source for c in s.consent] == ["agent", "merge"]
    assert await Contact.find(Contact.workspace_id == ws, Contact.kind == "person").count() == 1
    messages = await Message.find(Message.workspace_id == ws).to_list()
    assert len(messages) == count + 1 and {m.contact_id for m in messages} == {survivor.id}
    mine = await Conversation.find_one({"contact_id": survivor.id, "account_id": env.main.account.id})
    assert await thread(mine.id) == ["S1 hello", "O1 first on main", "O3 again on main", "S2 still here",
                                     "O5 during the merge"]
    assert await Conversation.find(Conversation.workspace_id == ws).count() == 2

    # The late pass changes nothing more; neither does running the steps again.
    assert await merger.sweep(settle_after=timedelta(0)) == 1
    settled = await ContactMerge.get(merge.id)
    assert settled.settled and settled.other == {"display_name": "Dana Levi"}
    for step in ("survivor", "conversations", "messages", "remove"):
        await merger.run_step(done, step)
    assert len((await Contact.get(survivor.id)).consent) == 2
    assert await Message.find(Message.workspace_id == ws).count() == count + 1
    assert (await Conversation.get(mine.id)).unread_count == 5


async def test_agents_get_403_self_and_groups_422_other_workspaces_404(env):
    client = env.client
    await write(env, env.main, SURVIVOR, "hello", NOW - 100)
    await write(env, env.main, OTHER, "hi", NOW - 90)
    survivor, other = await by_number(SURVIVOR), await by_number(OTHER)
    pair = {"survivor_id": str(survivor.id), "other_id": str(other.id)}
    assert (await client.get("/api/v1/contacts/duplicates", headers=env.agent_auth)).status_code == 403
    assert (await client.post("/api/v1/contacts/merge/preview", headers=env.agent_auth, json=pair)).status_code == 403
    assert (await client.post("/api/v1/contacts/merge", headers=env.agent_auth, json=pair)).status_code == 403

    itself = await client.post("/api/v1/contacts/merge", headers=env.main.auth,
                               json={"survivor_id": str(survivor.id), "other_id": str(survivor.id)})
    assert itself.status_code == 422 and itself.json()["error_code"] == "SAME_CONTACT"
    await deliver(env.runtime, env.main, envelope(messages=[text_message("in a group", from_=SURVIVOR,
                                                                         group_id="120363000000000001")]))
    group = await Contact.find_one(Contact.kind == "group")
    with_group = await client.post("/api/v1/contacts/merge", headers=env.main.auth,
                                   json={"survivor_id": str(survivor.id), "other_id": str(group.id)})
    assert with_group.status_code == 422 and with_group.json()["error_code"] == "GROUP_NOT_MERGEABLE"
    bad = await client.post("/api/v1/contacts/merge", headers=env.main.auth,
                            json={**pair, "choose": {"name": "both", "password": "other"}})
    assert bad.status_code == 422 and bad.json()["error_code"] == "CHOOSE_INVALID"
    assert set(bad.json()["details"]) == {"name", "password"}

    elsewhere = await make_setup(env.runtime, email="owner@elsewhere.example", phone_number_id="9988776655443",
                                 waba_id="5555", display="15550001111")
    stranger, _ = await ContactService().upsert(elsewhere.workspace_id, wa_id="15550002222", profile_name="Stranger")
    for body in ({"survivor_id": str(survivor.id), "other_id": str(stranger.id)},
                 {"survivor_id": str(stranger.id), "other_id": str(survivor.id)}):
        for path in ("/api/v1/contacts/merge/preview", "/api/v1/contacts/merge"):
            answer = await client.post(path, headers=env.main.auth, json=body)
            assert answer.status_code == 404, (path, answer.text)
    assert (await Contact.get(stranger.id)).identities == ["wa:15550002222"]
    assert await ContactMerge.find_all().count() == 0
    assert (await client.post("/api/v1/contacts/merge", headers=env.main.auth,
                              json={"survivor_id": "nope", "other_id": str(other.id)})).status_code == 404


async def duplicate_contacts(ws) -> dict[str, Contact]:
    """One pair per reason (plus a contact that has none)."""
    contacts = ContactService()
    made = {}
    made["a"], _ = await contacts.upsert(ws, wa_id="447700900001", profile_name="Ann Old")
    await contacts.change_number(ws, "447700900001", "447700900002")  # her old number ...
    made["b"], _ = await contacts.upsert(ws, wa_id="447700900001", profile_name="Someone")  # ... imported again
    made["c"], _ = await contacts.upsert(ws, user_id="US.1000000000000000001", profile_name="Cy")
    await contacts.change_number(ws, None, None, old_user_id="US.1000000000000000001",
                                 new_user_id="US.1000000000000000002")
    made["d"], _ = await contacts.upsert(ws, user_id="US.1000000000000000001", profile_name="Dee")
    made["e"], _ = await contacts.upsert(ws, wa_id="33612345001", profile_name="Eve")
    made["f"], _ = await contacts.upsert(ws, wa_id="33612345002", profile_name="Fay")
    for key in ("e", "f"):
        await Contact.get_motor_collection().update_one({"_id": made[key].id}, {"$set": {"email": "same@example.com"}})
    made["g"], _ = await contacts.upsert(ws, wa_id="972541234567", profile_name="Noa Cohen")
    made["h"], _ = await contacts.upsert(ws, wa_id="16501234567", profile_name="noa  COHÉN")
    made["i"], _ = await contacts.upsert(ws, wa_id="972500000009", profile_name="Ira")
    made["j"], _ = await contacts.upsert(ws, user_id="US.2000000000000000009", profile_name="Jo")
    await contacts.upsert(ws, wa_id="972500000009", user_id="US.2000000000000000009")  # links, never merges
    made["z"], _ = await contacts.upsert(ws, wa_id="4915112345678", profile_name="Zoe")
    return made


async def test_duplicates_by_each_reason_in_the_api_and_the_pages(env):
    client, ws = env.client, env.ws
    made = await duplicate_contacts(ws)
    name_of = {str(c.id): key for key, c in made.items()}
    found = await client.get("/api/v1/contacts/duplicates", headers=env.main.auth)
    assert found.status_code == 200, found.text
    pairs = {(name_of[p["a"]["id"]], name_of[p["b"]["id"]]): p["reasons"] for p in found.json()["data"]}
    assert pairs == {("a", "b"): ["phone"], ("c", "d"): ["user_id"], ("e", "f"): ["email"], ("i", "j"): ["linked"],
                     ("g", "h"): ["name_phone"]}
    assert len((await client.get("/api/v1/contacts/duplicates", params={"limit": 2},
                                 headers=env.main.auth)).json()["data"]) == 2

    await sign_in(client, env.main.email, env.main.password)
    page = await client.get("/contacts/duplicates")
    assert page.status_code == 200
    assert "Same email" in page.text and "Same name and a similar number" in page.text
    link = f'/contacts/merge?a={made["e"].id}&amp;b={made["f"].id}'
    assert link in page.text
    form = await client.get(link.replace("&amp;", "&"))
    assert form.status_code == 200 and "Eve" in form.text and "Fay" in form.text
    assert 'name="keep:phone" value="other"' in form.text
    posted = await client.post("/contacts/merge", follow_redirects=False, data={
        "_csrf_token": csrf_from(form.text), "survivor_id": str(made["e"].id), "other_id": str(made["f"].id),
        "keep:profile_name": "other"})
    assert posted.status_code == 303 and posted.headers["location"] == f"/contacts/{made['e'].id}"
    assert await Contact.get(made["f"].id) is None and (await Contact.get(made["e"].id)).profile_name == "Fay"
    gone = await client.get(f"/contacts/{made['f'].id}", follow_redirects=False)  # an old link to the merged one
    assert gone.status_code == 303 and gone.headers["location"] == f"/contacts/{made['e'].id}"
    assert (await client.get(f"/contacts/{'0' * 24}")).status_code == 404
    bad = await client.post("/contacts/merge", data={"_csrf_token": csrf_from(form.text), "survivor_id": str(made["a"].id),
                                                     "other_id": str(made["b"].id), "keep:nothing": "other"})
    assert bad.status_code == 422 and "Choose a side" in bad.text

    # Contacts WhatsApp linked (a shared identifier): merged, the note about each other goes.
    linked = await client.post("/api/v1/contacts/merge", headers=env.main.auth,
                               json={"survivor_id": str(made["i"].id), "other_id": str(made["j"].id)})
    assert linked.status_code == 200, linked.text
    ira = await Contact.get(made["i"].id)
    assert ira.identity_notes == [] and ira.user_id == "US.2000000000000000009"
    assert {"wa:972500000009", "user:US.2000000000000000009"} <= set(ira.identities)
    again, _ = await ContactService().upsert(ws, wa_id="972500000009", user_id="US.2000000000000000009")
    assert again.id == ira.id and await Contact.get(made["j"].id) is None

    await client.post("/logout", data={"_csrf_token": csrf_from(page.text)})
    await sign_in(client, "agent@example.com", "agent password")
    assert (await client.get("/contacts/duplicates")).status_code == 403
    assert (await client.get(link.replace("&amp;", "&"))).status_code == 403
    assert re.search("Likely duplicates", (await client.get("/contacts/duplicates")).text) is None
    assert await WhatsAppAccount.find(WhatsAppAccount.workspace_id == ws).count() == 2
