"""Issue 20, the failed messages (dead-letter view): WhatsApp refuses sends for good (the sandbox answers 131026,
"message undeliverable", a permanent error), nothing retries them by itself; an admin lists them with filters and
the reason in words, retries some in bulk (a new attempt of the same message, counted) and sets others aside.
Only Meta is simulated (the sandbox); the worker is the real one.
"""

from __future__ import annotations

import asyncio

from app.domains.messages.models import Message, MessageStatus
from tests.conftest import csrf_from, sign_in
from tests.integration.outbound_env import FAST, outbound, sandbox_server, wait_for  # noqa: F401

CUSTOMERS = ["4915100000081", "4915100000082", "4915100000083"]


async def failed_three(env, account) -> list[str]:
    await env.faults(phone_number_id=account.phone_number_id, error_rate=1.0, http_status=400, error_code=131026)
    ids = []
    for phone in CUSTOMERS:
        answer = await env.send(await env.conversation(account, phone), f"Your order to {phone}")
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["id"])

    async def all_failed() -> bool | None:
        found = [await Message.get(i) for i in ids]
        return all(m.status is MessageStatus.FAILED for m in found) or None

    await wait_for(all_failed)
    await env.clear_faults()
    return ids


async def test_the_failed_list_its_filters_bulk_retry_and_discard(outbound):  # noqa: F811
    env = await outbound()
    account = await env.add_number()
    other = await env.add_number()
    ids = await failed_three(env, account)
    await asyncio.sleep(0.5)
    assert [(await Message.get(i)).status for i in ids] == [MessageStatus.FAILED] * 3  # a permanent error: no retry

    listed = await env.client.get("/api/v1/messages", headers=env.headers, params={"status": "failed"})
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert [m["id"] for m in page["data"]] == ids[::-1] and page["next_cursor"] is None  # newest first
    assert page["data"][0]["error"]["code"] == 131026 and page["data"][0]["error"]["agent_message"]
    assert (await env.client.get("/api/v1/messages", headers=env.headers,
                                 params={"account_id": str(other.id)})).json()["data"] == []
    assert (await env.client.get("/api/v1/messages", headers=env.headers,
                                 params={"error_code": 131047})).json()["data"] == []
    first = await env.client.get("/api/v1/messages", headers=env.headers, params={"limit": 2})
    assert len(first.json()["data"]) == 2 and first.json()["next_cursor"] == ids[1]
    rest = await env.client.get("/api/v1/messages", headers=env.headers,
                                params={"limit": 2, "cursor": first.json()["next_cursor"]})
    assert [m["id"] for m in rest.json()["data"]] == [ids[0]]

    retried = await env.client.post("/api/v1/messages/retry", headers=env.headers, json={"ids": ids[:2]})
    assert retried.status_code == 202 and retried.json() == {"retried": 2, "skipped": {}}

    async def sent_again() -> bool | None:
        again = [await Message.get(i) for i in ids[:2]]
        return all(m.status is not MessageStatus.FAILED and m.wamid for m in again) or None

    await wait_for(sent_again)
    again = await Message.get(ids[0])
    assert again.retries == 1 and again.error is None  # the same message, a new attempt, counted
    twice = await env.client.post("/api/v1/messages/retry", headers=env.headers, json={"ids": ids[:1]})
    assert twice.json() == {"retried": 0, "skipped": {"NOT_FAILED": 1}}

    aside = await env.client.post("/api/v1/messages/discard", headers=env.headers, json={"ids": ids[2:]})
    assert aside.status_code == 200 and aside.json() == {"discarded": 1}
    assert (await env.client.get("/api/v1/messages", headers=env.headers)).json()["data"] == []
    shown = (await env.client.get("/api/v1/messages", headers=env.headers, params={"discarded": "true"})).json()
    assert [m["id"] for m in shown["data"]] == [ids[2]] and shown["data"][0]["discarded_at"]
    assert (await Message.get(ids[2])).status is MessageStatus.FAILED  # still failed in its conversation


async def test_bad_input_is_refused_with_its_reason(outbound):  # noqa: F811
    env = await outbound()
    for params, field in (({"status": "queued"}, "status"), ({"account_id": "nope"}, "account_id"),
                          ({"cursor": "x"}, "cursor"), ({"limit": 0}, "limit"),
                          ({"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"}, "to")):
        answer = await env.client.get("/api/v1/messages", headers=env.headers, params=params)
        assert answer.status_code == 400 and answer.json()["error_code"] == "FILTER_INVALID", (params, answer.text)
        assert field in answer.json()["details"]
    for body, code in (({"ids": []}, "NO_MESSAGES"), ({"ids": ["nope"]}, "VALIDATION_ERROR")):
        answer = await env.client.post("/api/v1/messages/retry", headers=env.headers, json=body)
        assert answer.status_code in (400, 422) and answer.json()["error_code"] == code, answer.text
    too_many = await env.client.post("/api/v1/messages/discard", headers=env.headers, json={"ids": ["a" * 24] * 501})
    assert too_many.status_code in (400, 422) and "500" in too_many.text


async def test_the_admin_screen_retries_the_chosen(outbound):  # noqa: F811
    env = await outbound()
    account = await env.add_number()
    ids = await failed_three(env, account)
    assert (await sign_in(env.client, FAST["admin_email"], FAST["admin_password"].get_secret_value())).status_code in (
        302, 303)
    page = await env.client.get("/admin/failed")
    assert page.status_code == 200
    for message_id in ids:
        assert f'id="failed-{message_id}"' in page.text
    assert "131026" in page.text and 'aria-current="page">Failed messages' in page.text
    done = await env.client.post("/admin/failed", data={"_csrf_token": csrf_from(page.text), "ids": ids[:2],
                                                        "action": "retry", "back": ""}, follow_redirects=True)
    assert done.status_code == 200 and "2 queued again." in done.text
    aside = await env.client.post("/admin/failed", data={"_csrf_token": csrf_from(page.text), "ids": ids[2],
                                                         "action": "discard", "back": "error_code=131026"},
                                  follow_redirects=True)
    assert "1 set aside." in aside.text and f'id="failed-{ids[2]}"' not in aside.text
    assert "error_code=131026" in str(aside.url)
    filtered = await env.client.get("/admin/failed", params={"error_code": "131047"})
    assert "No failed messages match these filters" in filtered.text
