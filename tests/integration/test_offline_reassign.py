"""A rule's "reassign when an agent goes offline": end to end, with the real arq worker in-process.

What agents notice: when a colleague chooses away or offline (or closes their last inbox tab and the
presence timeout passes), that colleague's open conversations under a reassigning rule come to the online
agents, by the rule's method and under its cap, with a line in the thread saying why. Busy keeps them;
pending, snoozed and resolved ones stay; a rule without the setting moves nothing; with nobody online
they stay, and move when somebody comes online.
"""

from __future__ import annotations

import re

from app.domains.assignment.models import AssignmentRule
from app.domains.conversations.models import Conversation
from app.domains.workspaces.models import Role, User
from tests.conftest import csrf_from, sign_in
from tests.integration.test_auto_assignment import (  # noqa: F401 - env is a fixture
    AUTH,
    Env,
    agent,
    customer_writes,
    env,
    make_rule,
    settled,
)
from tests.support.command_capture import capture
from tests.support.inbound import wait_for
from tests.support.index_rule import assert_served, declared_indexes, queries_of
from workers import tasks
from workers.settings import CRON_JOBS


async def held_by(env: Env, holder: User, count: int, *, status: str = "open") -> list[Conversation]:
    """``count`` conversations customers started, given to ``holder`` by an admin (before any rule existed)."""
    conversations = [await customer_writes(env) for _ in range(count)]
    await settled(env)
    for conversation in conversations:
        answer = await env.client.patch(f"/api/v1/conversations/{conversation.id}", headers=AUTH,
                                        json={"assignee_id": str(holder.id),
                                              **({"status": status} if status != "open" else {})})
        assert answer.status_code == 200, answer.text
    return conversations


async def sets_own_status(env: Env, user: User, availability: str) -> None:
    """What the agent does in the header control or through the API: here, the API with their own key."""
    _, key = await env.runtime.people.create_api_key(env.workspace_id, f"{user.name} key", Role.AGENT, user.id)
    answer = await env.client.put("/api/v1/me/availability", headers={"Authorization": f"Bearer {key}"},
                                  json={"availability": availability})
    assert answer.status_code == 200, answer.text


async def holders(conversations: list[Conversation]) -> list[object]:
    return [(await Conversation.get(c.id)).assignee_id for c in conversations]


async def event_lines(env: Env, conversation: Conversation) -> list[str]:
    answer = await env.client.get(f"/api/v1/conversations/{conversation.id}/messages", headers=AUTH)
    assert answer.status_code == 200, answer.text
    return [m["content"]["text"] for m in answer.json()["data"] if m["type"] == "event"]


async def cron_pass(env: Env) -> int:
    """What the worker's cron runs every 30 s."""
    return await tasks.reassign_offline_conversations({"runtime": env.runtime})


async def test_an_agent_who_goes_away_hands_their_open_conversations_to_the_online_agent(env):
    ann, bob = await agent(env, "Ann"), await agent(env, "Bob")
    await agent(env, "Cat", availability="busy")  # busy: takes none, and would keep hers
    mine = await held_by(env, ann, 2)
    pending = await held_by(env, ann, 1, status="pending")
    rule = await make_rule(env, reassign_when_offline=True)
    assert rule["reassign_when_offline"] is True
    await settled(env)
    assert await holders(mine + pending) == [ann.id] * 3  # online: nothing moves

    await sets_own_status(env, ann, "away")  # at once: a job, not the next cron pass

    async def moved():
        return await holders(mine) == [bob.id, bob.id]

    assert await wait_for(moved)
    assert await holders(pending) == [ann.id]  # only open conversations move
    lines = await event_lines(env, mine[0])
    assert "Ann went away: reassigned to Bob (rule Everyone)" in lines
    assert "Auto-assigned to Bob (rule Everyone)" not in lines  # one line, saying why


async def test_a_rule_without_the_setting_moves_nothing(env):
    ann, _bob = await agent(env, "Ann"), await agent(env, "Bob")
    mine = await held_by(env, ann, 2)
    await make_rule(env)  # reassign_when_offline left out: off
    await sets_own_status(env, ann, "offline")
    assert await cron_pass(env) == 0
    await settled(env)
    assert await holders(mine) == [ann.id, ann.id]


async def test_with_nobody_online_they_stay_until_someone_comes_online(env):
    ann = await agent(env, "Ann")
    bob = await agent(env, "Bob", at_inbox=False)  # chose online, no inbox tab open
    mine = await held_by(env, ann, 2)
    await make_rule(env, reassign_when_offline=True, method="least_open")
    await sets_own_status(env, ann, "offline")
    assert await cron_pass(env) == 0
    await settled(env)
    assert await holders(mine) == [ann.id, ann.id]
    await env.runtime.presence.beat(env.workspace_id, bob.id)  # Bob opens the inbox: a pass at once

    async def moved():
        return await holders(mine) == [bob.id, bob.id]

    assert await wait_for(moved)
    assert "Ann went offline: reassigned to Bob (rule Everyone)" in await event_lines(env, mine[1])


async def test_the_cap_is_respected(env):
    ann, bob, cat = await agent(env, "Ann"), await agent(env, "Bob"), await agent(env, "Cat")
    await held_by(env, bob, 1)
    mine = await held_by(env, ann, 3)
    await make_rule(env, reassign_when_offline=True, max_open_per_agent=1)
    await env.runtime.presence.choose(env.workspace_id, ann.id, "away")
    await settled(env)
    assert await cron_pass(env) == 0  # the job did it; nothing left that can move
    held = await holders(mine)
    assert sorted(map(str, held)) == sorted(map(str, [cat.id, ann.id, ann.id]))  # Bob is at his cap


async def test_presence_lapsed_by_inactivity_is_noticed_by_the_cron(env):
    ann, bob = await agent(env, "Ann"), await agent(env, "Bob")
    mine = await held_by(env, ann, 1)
    await make_rule(env, reassign_when_offline=True)
    await env.runtime.redis.delete(f"inbox:presence:{ann.id}")  # her last tab closed, the timeout passed
    assert await cron_pass(env) == 1
    assert await holders(mine) == [bob.id]
    assert "Ann went offline (no inbox open): reassigned to Bob (rule Everyone)" in await event_lines(env, mine[0])
    assert await cron_pass(env) == 0  # nothing twice
    assert [c for c in CRON_JOBS if c.coroutine is tasks.reassign_offline_conversations]


async def test_the_conversations_own_rule_decides(env):
    """A number's rule without the setting governs its conversations, even beside an 'every number' rule
    with it; and a disabled rule with the setting moves nothing."""
    ann, _bob = await agent(env, "Ann"), await agent(env, "Bob")
    mine = await held_by(env, ann, 1)
    await make_rule(env, name="Main number", account_id=str(env.account.id))
    broad = await make_rule(env, name="Everyone", reassign_when_offline=True)
    await env.runtime.presence.choose(env.workspace_id, ann.id, "offline")
    await settled(env)
    assert await cron_pass(env) == 0 and await holders(mine) == [ann.id]
    rules = await env.client.get("/api/v1/assignment-rules", headers=AUTH)
    number_rule = next(r for r in rules.json()["data"] if r["name"] == "Main number")
    off = await env.client.patch(f"/api/v1/assignment-rules/{number_rule['id']}", headers=AUTH,
                                 json={"enabled": False})
    assert off.status_code == 200
    disabled = await env.client.patch(f"/api/v1/assignment-rules/{broad['id']}", headers=AUTH,
                                      json={"enabled": False})
    assert disabled.status_code == 200 and disabled.json()["reassign_when_offline"] is True
    assert await cron_pass(env) == 0 and await holders(mine) == [ann.id]


async def test_the_cron_reads_are_indexed_and_cost_nothing_without_the_setting(env):
    ann, _bob = await agent(env, "Ann"), await agent(env, "Bob")
    await held_by(env, ann, 2)
    await make_rule(env, reassign_when_offline=True)
    await env.runtime.presence.choose(env.workspace_id, ann.id, "away")
    await settled(env)
    database = env.runtime.settings.mongodb_database
    with capture(database) as seen:
        await cron_pass(env)
    models = {m.Settings.name: m for m in (AssignmentRule, Conversation, User)}
    reads = [q for c in seen for q in queries_of(c.name, c.command) if q.collection in models]
    assert {q.collection for q in reads} >= {"assignment_rules", "conversations", "users"}
    for query in reads:
        assert_served(query, declared_indexes(models[query.collection]))
    # No rule with the setting: the pass asks assignment_rules one question and nothing else.
    await AssignmentRule.find_all().update({"$set": {"reassign_when_offline": False}})
    with capture(database) as seen:
        assert await cron_pass(env) == 0
    assert [(c.name, c.collection) for c in seen if c.collection in models] == [("distinct", "assignment_rules")]


async def test_api_validates_and_the_admin_screen_shows_and_sets_it(env):
    bad = await env.client.post("/api/v1/assignment-rules", headers=AUTH,
                                json={"name": "x", "reassign_when_offline": "yes"})
    assert bad.status_code == 422
    created = await make_rule(env)
    assert created["reassign_when_offline"] is False
    null = await env.client.patch(f"/api/v1/assignment-rules/{created['id']}", headers=AUTH,
                                  json={"reassign_when_offline": None})
    assert null.status_code == 422 and "reassign_when_offline" in null.json()["details"]
    on = await env.client.patch(f"/api/v1/assignment-rules/{created['id']}", headers=AUTH,
                                json={"reassign_when_offline": True})
    assert on.status_code == 200 and on.json()["reassign_when_offline"] is True
    schema = (await env.client.get("/schema/openapi.json")).json()
    shape = schema["components"]["schemas"]["AssignmentRuleShape"]["properties"]["reassign_when_offline"]
    assert "goes away or offline" in shape["description"]

    assert (await sign_in(env.client, "admin@example.com", "admin password")).status_code in (302, 303)
    screen = await env.client.get("/admin/assignment/")
    assert re.search(r'id="rule-' + created["id"] + r'".*?<td>Reassign</td>', screen.text, re.S)
    assert "Reassign when an agent goes offline" in screen.text
    headers = {"X-CSRFToken": csrf_from(screen.text), "HX-Request": "true"}
    added = await env.client.post("/admin/assignment/", headers=headers, data={
        "name": "Night shift", "method": "round_robin", "enabled": "on", "reassign_when_offline": "on"})
    assert added.status_code == 200 and "Saved." in added.text
    night = await AssignmentRule.find_one(AssignmentRule.name == "Night shift")
    assert night.reassign_when_offline is True
    edited = await env.client.post(f"/admin/assignment/{night.id}", headers=headers, data={
        "name": "Night shift", "method": "round_robin", "enabled": "on"})
    assert edited.status_code == 200 and (await AssignmentRule.get(night.id)).reassign_when_offline is False
    assert re.search(r'id="rule-' + str(night.id) + r'".*?<td>Keep</td>', edited.text, re.S)
