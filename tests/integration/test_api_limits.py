"""The API's guard rails: per-key rate limit (shared by processes), one error shape, Idempotency-Key."""

from __future__ import annotations

import asyncio

from pydantic import SecretStr

from app.domains.subscriptions.models import Subscription

KEY = "wai_api-limits-test-key-0000000000001"
AUTH = {"Authorization": f"Bearer {KEY}"}
SETTINGS = {"admin_email": "admin@example.com", "admin_password": SecretStr("admin password"),
            "admin_api_key": SecretStr(KEY), "allow_private_webhook_targets": True}


async def test_rate_limit_headers_on_every_api_answer_and_429_shared_by_processes(client_factory):
    one = await client_factory(settings={**SETTINGS, "api_rate_limit_per_minute": 4})
    two = await client_factory(settings={**SETTINGS, "api_rate_limit_per_minute": 4})  # another web process
    first = await one.get("/api/v1/me", headers=AUTH)
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit"] == "4" and first.headers["x-ratelimit-remaining"] == "3"
    assert 0 < int(first.headers["x-ratelimit-reset"]) <= 60
    missing = await two.get("/api/v1/no-such-route", headers=AUTH)
    assert missing.status_code == 404 and missing.headers["x-ratelimit-remaining"] == "2"
    assert missing.json()["error_code"] == "NOT_FOUND"
    third = await two.get("/api/v1/conversations/nope", headers=AUTH)
    assert third.headers["x-ratelimit-remaining"] == "1"
    await one.get("/api/v1/me", headers=AUTH)
    refused = await two.get("/api/v1/me", headers=AUTH)
    assert refused.status_code == 429
    body = refused.json()
    assert body["error_code"] == "RATE_LIMITED" and set(body) == {"success", "error", "error_code", "details"}
    assert 0 < int(refused.headers["retry-after"]) <= 60 and refused.headers["x-ratelimit-remaining"] == "0"
    other_key = await one.get("/api/v1/me", headers={"Authorization": "Bearer wai_someone-else"})
    assert other_key.status_code == 401 and other_key.headers["x-ratelimit-remaining"] == "3"  # its own bucket
    assert "x-ratelimit-limit" not in (await one.get("/health/live")).headers


async def test_a_process_takes_its_counts_a_few_at_a_time_and_still_refuses_at_the_limit(client_factory):
    """With a limit of 1,000 a process takes 10 counts at a time from Redis: one process counts
    exactly, another sees the counts taken as used, and near the limit counts go one by one: no
    request past the 1,000th passes, whichever process gets it."""
    one = await client_factory(settings={**SETTINGS, "api_rate_limit_per_minute": 1000})
    two = await client_factory(settings={**SETTINGS, "api_rate_limit_per_minute": 1000})
    remaining = [int((await one.get("/api/v1/me", headers=AUTH)).headers["x-ratelimit-remaining"]) for _ in range(12)]
    assert remaining == list(range(999, 987, -1))  # exact in one process
    other = await two.get("/api/v1/me", headers=AUTH)
    assert other.headers["x-ratelimit-remaining"] == "979"  # one's 20 counts taken (12 used) are gone
    redis = one.app.state.runtime.redis
    key = next(k for k in await redis.keys("inbox:api-rl:*"))
    await redis.incrby(key, 950)  # other processes used 950 meanwhile
    # one: its 8 counts left, 10 more (981-990), then one at a time up to the limit; never past it
    answers = [await one.get("/api/v1/me", headers=AUTH) for _ in range(29)]
    assert [a.status_code for a in answers] == [200] * 28 + [429]
    assert [a.headers["x-ratelimit-remaining"] for a in answers[-3:]] == ["1", "0", "0"]
    assert int(await redis.get(key)) == 1001  # no count past the limit was taken for more than one request
    # two's 9 counts were taken before the limit was reached: they are its to use
    assert [(await two.get("/api/v1/me", headers=AUTH)).status_code for _ in range(10)] == [200] * 9 + [429]


async def test_one_error_shape_for_every_status(client_factory):
    client = await client_factory(settings={**SETTINGS, "api_rate_limit_per_minute": 1000})
    runtime = client.app.state.runtime
    admin = await runtime.people.principal_for_api_key(KEY)
    _, agent_key = await runtime.people.create_api_key(admin.workspace_id, "agent", "agent", None)
    cases = [
        (400, client.get("/api/v1/conversations?limit=zero", headers=AUTH)),
        (401, client.get("/api/v1/me")),
        (401, client.get("/api/v1/me", headers={"Authorization": "Basic abc"})),
        (403, client.get("/api/v1/subscriptions", headers={"Authorization": f"Bearer {agent_key}"})),
        (404, client.get("/api/v1/subscriptions/000000000000000000000000", headers=AUTH)),
        (405, client.put("/api/v1/me", headers=AUTH)),
        (422, client.post("/api/v1/subscriptions", headers=AUTH, json={"url": 5})),
        (400, client.post("/api/v1/subscriptions", headers={**AUTH, "content-type": "application/json"},
                          content=b"{not json")),
        (413, client.post("/api/v1/subscriptions", headers={**AUTH, "content-type": "application/json"},
                          content=b'{"url": "' + b"x" * (11 * 1024 * 1024) + b'"}')),
    ]
    for status, call in cases:
        answer = await call
        assert answer.status_code == status, (status, answer.status_code, answer.text[:200])
        body = answer.json()
        assert set(body) == {"success", "error", "error_code", "details"} and body["error"] and body["error_code"], body


async def test_idempotency_key_returns_the_first_answer_for_24h(client_factory):
    client = await client_factory(settings=SETTINGS)
    body = {"url": "http://127.0.0.1:9/hook", "events": ["message.received"]}
    first = await client.post("/api/v1/subscriptions", headers={**AUTH, "Idempotency-Key": "create-1"}, json=body)
    again = await client.post("/api/v1/subscriptions", headers={**AUTH, "Idempotency-Key": "create-1"}, json=body)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert await Subscription.count() == 1
    other = await client.post("/api/v1/subscriptions", headers={**AUTH, "Idempotency-Key": "create-1"},
                              json={**body, "description": "changed"})
    assert other.status_code == 422 and other.json()["error_code"] == "IDEMPOTENCY_KEY_REUSED"
    # Failures are not kept: the same key works once the request is fixed.
    bad = await client.post("/api/v1/subscriptions", headers={**AUTH, "Idempotency-Key": "create-2"},
                            json={**body, "events": []})
    assert bad.status_code == 422
    fixed = await client.post("/api/v1/subscriptions", headers={**AUTH, "Idempotency-Key": "create-2"},
                              json={**body, "events": []})
    assert fixed.status_code == 422 and "idempotent-replayed" not in fixed.headers
    without = await client.post("/api/v1/subscriptions", headers=AUTH, json=body)
    assert without.status_code == 201 and await Subscription.count() == 2
    too_long = await client.post("/api/v1/subscriptions", headers={**AUTH, "Idempotency-Key": "k" * 201}, json=body)
    assert too_long.status_code == 422 and too_long.json()["error_code"] == "IDEMPOTENCY_KEY_INVALID"


async def test_concurrent_repeats_create_one_thing(client_factory):
    client = await client_factory(settings=SETTINGS)
    body = {"url": "http://127.0.0.1:9/hook", "events": ["message.received"]}
    answers = await asyncio.gather(*(client.post("/api/v1/subscriptions", json=body,
                                                 headers={**AUTH, "Idempotency-Key": "race"}) for _ in range(5)))
    assert {a.status_code for a in answers} <= {201, 409}
    assert len({a.json()["id"] for a in answers if a.status_code == 201}) == 1
    assert await Subscription.count() == 1


async def test_with_redis_down_sign_in_works_and_limits_still_limit(client_factory, tmp_path):
    """Redis unreachable: sign-in answers (no 500), wrong passwords are still throttled and the API's
    per-key limit still refuses (counted by this process alone), with the usual headers."""
    import re

    from app.embedded_redis import EmbeddedRedis

    redis = EmbeddedRedis(tmp_path / "own-redis", persist=False).start()
    try:
        client = await client_factory(settings={**SETTINGS, "redis_url": redis.url, "api_rate_limit_per_minute": 5})
    finally:
        redis.stop()

    async def sign_in(password: str):
        page = await client.get("/login")
        token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
        return await client.post("/login", data={"email": "admin@example.com", "password": password,
                                                 "_csrf_token": token}, follow_redirects=False)

    assert (await sign_in("admin password")).status_code in (302, 303)
    answers = [await client.get("/api/v1/me", headers=AUTH) for _ in range(7)]
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 2
    assert answers[-1].json()["error_code"] == "RATE_LIMITED" and answers[0].headers["x-ratelimit-remaining"] == "4"
    wrong = [(await sign_in("not the password")).status_code for _ in range(6)]
    assert wrong[:5] == [401] * 5 and wrong[5] == 429  # throttled, not a 500
