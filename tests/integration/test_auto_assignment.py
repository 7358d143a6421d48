"""Auto-assignment end to end: a customer's webhook, the real arq worker in-process, real Mongo and Redis.

What agents notice: new conversations come to the online agents in turn (or to the one with the fewest
open), never to an away or offline one, never past the cap, never over a person's own assignment;
without a rule nothing is assigned; a conversation that found nobody goes to the first agent who
comes online.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from beanie import PydanticObjectId
from pydantic import SecretStr
from redis.asyncio import Redis

from app.domains.accounts.models import WhatsAppAccount
from app.domains.accounts.services import NewAccount
from app.domains.assignment.models import AssignmentRule
from app.domains.assignment.presence import Presence
from app.domains.assignment.services import AssignmentRules, AutoAssigner
from app.domains.contacts.models import Contact
from app.domains.conversations.actions import ConversationActions
from app.domains.conversations.models import Conversation, ConversationStatus
from app.domains.messages.models import Message
from app.domains.workspaces.models import Role, User
from app.queue import DEFAULT_QUEUE
from app.runtime import Runtime
from tests.support.command_capture import capture
from tests.support.inbound import APP_SECRET, PHONE_NUMBER_ID, WABA_ID, envelope, signed, text_message, wait_for

KEY = "wai_auto-assignment-test-key-0001"
AUTH = {"Authorization": f"Bearer {KEY}"}
SETTINGS = {"admin_email": "admin@example.com", "admin_password": SecretStr("admin password"),
            "admin_api_key": SecretStr(KEY)}
_phones = iter(range(15551230001, 15551239999))


@dataclass
class Env:
    client: object
    runtime: Runtime
    workspace_id: PydanticObjectId
    account: WhatsAppAccount


@pytest.fixture
async def env(client_factory) -> Env:
    client = await client_factory(settings=SETTINGS, inline_worker=True)
    runtime = client.app.state.runtime
    admin = await User.find_one(User.email == "admin@example.com")
    account = await runtime.accounts.create(admin.workspace_id, NewAccount(
        name="Main", phone_number_id=PHONE_NUMBER_ID, waba_id=WABA_ID, display_phone_number="+15550100001",
        access_token="EAAG-token-0001", app_secret=APP_SECRET))
    return Env(client, runtime, admin.workspace_id, account)


async def agent(env: Env, name: str, *, at_inbox: bool = True, availability: str = "online",
                role: Role = Role.AGENT) -> User:
    user = await env.runtime.people.create_user(env.workspace_id, f"{name.lower()}@example.com", "agent password",
                                                role, name)
    if availability != "online":
        await env.runtime.presence.choose(env.workspace_id, user.id, availability)
    if at_inbox:
        await env.runtime.presence.beat(env.workspace_id, user.id)  # what an open inbox tab does
    return user


async def make_rule(env: Env, **fields) -> dict:
    answer = await env.client.post("/api/v1/assignment-rules", headers=AUTH, json={"name": "Everyone", **fields})
    assert answer.status_code == 201, answer.text
    return answer.json()


async def customer_writes(env: Env, phone: str | None = None, text: str = "Hello") -> Conversation:
    phone = phone or str(next(_phones))
    body, headers = signed(envelope(messages=[text_message(text, from_=phone)]))
    answer = await env.client.post(f"/webhooks/whatsapp/{env.account.webhook_key}", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    contact = await Contact.find_one(Contact.wa_id == phone)
    return await Conversation.find_one(Conversation.contact_id == contact.id)


async def assignee_of(conversation: Conversation, *, within: float = 10.0) -> PydanticObjectId:
    async def assigned():
        fresh = await Conversation.get(conversation.id)
        return fresh.assignee_id

    return await wait_for(assigned, timeout=within)


async def queued(env: Env, *prefixes: str) -> list[bytes | str]:
    """The ids of the jobs waiting in the queue whose id starts with one of `prefixes`. (Read from
    the queue itself: arq's `queued_jobs()` raises when a job finishes between its two reads.)"""
    ids = await env.runtime.redis.zrange(DEFAULT_QUEUE, 0, -1)
    return [i for i in ids if (i.decode() if isinstance(i, bytes) else i).startswith(prefixes)]


async def settled(env: Env) -> None:
    """Every queued auto-assignment job has run (the worker is in this process)."""

    async def idle():
        waiting = await queued(env, "auto-assign:", "assign-waiting:")
        running = await env.runtime.redis.keys("arq:in-progress:a*")  # auto-assign:…, assign-waiting:…
        return not waiting and not running

    await wait_for(idle)
    await asyncio.sleep(0.1)


async def test_three_online_agents_get_new_conversations_in_turn(env):
    agents = [await agent(env, n) for n in ("Ann", "Bob", "Cat")]
    await make_rule(env, method="round_robin")
    order = sorted((a.id for a in agents), key=str)
    got = [await assignee_of(await customer_writes(env)) for _ in range(6)]
    start = order.index(got[0])
    assert got == [order[(start + i) % 3] for i in range(6)]
    # The thread says who did it, and the same path as a person's assignment published it.
    event = await Message.find_one({"type": "event", "content.kind": "assigned"})
    assert event.content["rule"] == "Everyone" and event.content["text"].startswith("Auto-assigned to ")


async def test_the_turn_is_atomic_across_workers(env):
    """Two workers (two Redis connections, two assigners) taking turns at once never share one."""
    rule = await AssignmentRule(workspace_id=env.workspace_id, name="RR").insert()
    url = env.runtime.settings.redis_url
    redis_a, redis_b = Redis.from_url(url), Redis.from_url(url)
    try:
        workers = [AutoAssigner(AssignmentRules(), Presence(r, 30), ConversationActions(env.runtime.live), r,
                                enqueue_assign=_never, enqueue_waiting=_never) for r in (redis_a, redis_b)]
        turns = await asyncio.gather(*(workers[i % 2].next_turn(rule) for i in range(60)))
    finally:
        await redis_a.aclose()
        await redis_b.aclose()
    assert sorted(turns) == list(range(1, 61))


async def test_concurrent_assignments_spread_evenly(env):
    """Six waiting conversations given out at once by two assigners: two each, none twice."""
    agents = [await agent(env, n) for n in ("Ann", "Bob", "Cat")]
    conversations = [await customer_writes(env) for _ in range(6)]
    await settled(env)  # no rule yet: nobody was assigned
    assert [(await Conversation.get(c.id)).assignee_id for c in conversations] == [None] * 6
    await AssignmentRule(workspace_id=env.workspace_id, name="RR").insert()
    outcomes = await two_assigners(env, conversations)
    assert outcomes == ["assigned"] * 6
    held = [(await Conversation.get(c.id)).assignee_id for c in conversations]
    assert sorted(held.count(a.id) for a in agents) == [2, 2, 2]


async def test_counting_rules_hold_under_concurrency(env):
    """Least-open and the cap read counts: two assigners at once still spread evenly and stop at the cap."""
    agents = [await agent(env, n) for n in ("Ann", "Bob", "Cat")]
    conversations = [await customer_writes(env) for _ in range(8)]
    await settled(env)
    await AssignmentRule(workspace_id=env.workspace_id, name="Least", method="least_open",
                         max_open_per_agent=2).insert()
    outcomes = await two_assigners(env, conversations)
    assert sorted(outcomes) == ["assigned"] * 6 + ["nobody"] * 2
    held = [(await Conversation.get(c.id)).assignee_id for c in conversations]
    assert sorted(held.count(a.id) for a in agents) == [2, 2, 2]


async def test_least_open_picks_the_agent_with_fewest_open(env):
    ann, bob, cat = [await agent(env, n) for n in ("Ann", "Bob", "Cat")]
    for holder, count in ((ann, 2), (bob, 0), (cat, 1)):
        for _ in range(count):
            await Conversation(workspace_id=env.workspace_id, account_id=env.account.id, contact_id=PydanticObjectId(),
                               assignee_id=holder.id).insert()
    # Resolved ones do not count: Bob has three of them.
    for _ in range(3):
        await Conversation(workspace_id=env.workspace_id, account_id=env.account.id, contact_id=PydanticObjectId(),
                           assignee_id=bob.id, status=ConversationStatus.RESOLVED).insert()
    await make_rule(env, method="least_open")
    assert await assignee_of(await customer_writes(env)) == bob.id
    second = await assignee_of(await customer_writes(env))
    assert second in (bob.id, cat.id)  # both hold one now: the tie goes either way, never to Ann
    third = await assignee_of(await customer_writes(env))
    assert {second, third} == {bob.id, cat.id}


async def test_away_busy_and_offline_agents_get_none(env):
    online = await agent(env, "Ann")
    await agent(env, "Bob", availability="away")
    await agent(env, "Cat", availability="busy")
    await agent(env, "Dan", at_inbox=False)  # chose online, but no inbox tab open: offline
    await agent(env, "Eve", availability="offline")
    await make_rule(env)
    for _ in range(4):
        assert await assignee_of(await customer_writes(env)) == online.id


async def test_the_cap_is_respected(env):
    ann, bob = await agent(env, "Ann"), await agent(env, "Bob")
    await make_rule(env, max_open_per_agent=1)
    first = await assignee_of(await customer_writes(env))
    second = await assignee_of(await customer_writes(env))
    assert {first, second} == {ann.id, bob.id}
    third = await customer_writes(env)
    await settled(env)
    assert (await Conversation.get(third.id)).assignee_id is None


async def test_a_persons_assignment_is_never_overridden(env):
    ann, bob = await agent(env, "Ann"), await agent(env, "Bob", at_inbox=False)
    phone = "15557770001"
    conversation = await customer_writes(env, phone)
    await settled(env)
    answer = await env.client.patch(f"/api/v1/conversations/{conversation.id}", headers=AUTH,
                                    json={"assignee_id": str(bob.id)})
    assert answer.status_code == 200, answer.text
    await make_rule(env)
    await customer_writes(env, phone, "Still there?")
    resolved = await env.client.patch(f"/api/v1/conversations/{conversation.id}", headers=AUTH,
                                      json={"status": "resolved"})
    assert resolved.status_code == 200, resolved.text
    await customer_writes(env, phone, "One more thing")  # reopens it, Bob keeps it (offline or not)
    await settled(env)
    fresh = await Conversation.get(conversation.id)
    assert fresh.assignee_id == bob.id and fresh.status is ConversationStatus.OPEN
    # A person assigning while the worker decides: the worker's conditional write loses.
    stale = await Conversation.get(conversation.id)
    stale.assignee_id = None
    await ConversationActions(env.runtime.live).assign(stale, assignee_id=ann.id, by=None, only_if_unassigned=True,
                                                       rule_name="Everyone")
    assert stale.assignee_id is None and (await Conversation.get(conversation.id)).assignee_id == bob.id


async def test_no_enabled_rule_leaves_conversations_unassigned(env):
    await agent(env, "Ann")
    first = await customer_writes(env)
    await make_rule(env, enabled=False)
    second = await customer_writes(env)
    await settled(env)
    assert (await Conversation.get(first.id)).assignee_id is None
    assert (await Conversation.get(second.id)).assignee_id is None


async def test_a_waiting_conversation_goes_to_the_first_agent_who_comes_online(env):
    ann = await agent(env, "Ann", at_inbox=False)
    await make_rule(env)
    conversation = await customer_writes(env)
    await settled(env)
    assert (await Conversation.get(conversation.id)).assignee_id is None
    await env.runtime.presence.beat(env.workspace_id, ann.id)  # Ann opens the inbox
    assert await assignee_of(conversation) == ann.id


async def test_team_rule_gives_to_its_members_on_its_number(env):
    ann, bob = await agent(env, "Ann"), await agent(env, "Bob")
    team = await env.client.post("/api/v1/teams", headers=AUTH, json={"name": "Sales", "member_ids": [str(bob.id)]})
    assert team.status_code == 201, team.text
    await make_rule(env, name="Sales", team_id=team.json()["id"], account_id=str(env.account.id))
    for _ in range(3):
        assert await assignee_of(await customer_writes(env)) == bob.id
    assert ann.id is not None


async def test_rules_api_validates_and_is_admin_only(env):
    bad = await env.client.post("/api/v1/assignment-rules", headers=AUTH,
                                json={"name": "", "method": "random", "max_open_per_agent": 0,
                                      "team_id": str(PydanticObjectId())})
    assert bad.status_code == 422
    body = bad.json()
    assert body["error_code"] == "BAD_ASSIGNMENT_RULE"
    assert {"name", "method", "max_open_per_agent", "team_id"} <= set(body["details"])
    not_bool = await env.client.post("/api/v1/assignment-rules", headers=AUTH, json={"name": "x", "enabled": "yes"})
    assert not_bool.status_code == 422
    created = await make_rule(env, method="least_open", max_open_per_agent=5)
    assert created["method"] == "least_open" and created["max_open_per_agent"] == 5 and created["enabled"]
    changed = await env.client.patch(f"/api/v1/assignment-rules/{created['id']}", headers=AUTH,
                                     json={"enabled": False, "max_open_per_agent": None})
    assert changed.status_code == 200, changed.text
    assert changed.json()["enabled"] is False and changed.json()["max_open_per_agent"] is None
    listed = (await env.client.get("/api/v1/assignment-rules", headers=AUTH)).json()
    assert [r["id"] for r in listed["data"]] == [created["id"]]
    _, agent_key = await env.runtime.people.create_api_key(env.workspace_id, "agent", Role.AGENT,
                                                           (await agent(env, "Ann")).id)
    refused = await env.client.get("/api/v1/assignment-rules", headers={"Authorization": f"Bearer {agent_key}"})
    assert refused.status_code == 403
    gone = await env.client.delete(f"/api/v1/assignment-rules/{created['id']}", headers=AUTH)
    assert gone.status_code == 204
    assert (await env.client.get(f"/api/v1/assignment-rules/{created['id']}", headers=AUTH)).status_code == 404


async def test_no_rule_costs_the_webhook_no_database_operation(env):
    """With no enabled rule the hook answers from its cache: what MongoDB is asked while customers write
    (the driver's own command log) holds nothing about assignment rules, and no job is queued."""
    rules = env.runtime.auto_assigner.rules
    assert await rules.has_enabled(env.workspace_id) is False
    with capture(env.runtime.settings.mongodb_database) as seen:
        for _ in range(3):
            await customer_writes(env)
    assert seen, "the webhooks were stored"
    # (the reassignment cron's one distinct over every workspace may fall in the window; it is no webhook's)
    assert not [c for c in seen if c.command.get(c.name) == AssignmentRule.Settings.name and c.name != "distinct"]
    assert not await queued(env, "auto-assign:")


async def two_assigners(env, conversations) -> list[str]:
    """The conversations given out at once by two assigners, each with its own Redis connection (two
    workers), taking them in turn."""
    url = env.runtime.settings.redis_url
    redis_a, redis_b = Redis.from_url(url), Redis.from_url(url)
    try:
        workers = [AutoAssigner(AssignmentRules(), Presence(r, 30), ConversationActions(env.runtime.live), r,
                                enqueue_assign=_never, enqueue_waiting=_never) for r in (redis_a, redis_b)]
        return list(await asyncio.gather(*(workers[i % 2].assign(env.workspace_id, c.id)
                                           for i, c in enumerate(conversations))))
    finally:
        await redis_a.aclose()
        await redis_b.aclose()


async def _never(*args: object) -> None:
    raise AssertionError("not queued in this test")
