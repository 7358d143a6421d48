"""STOP / START with a workspace's own words and confirmations, end to end: a customer's webhook, the real
worker job, the one send path, Meta's sandbox. Only Meta is simulated."""

from __future__ import annotations

import asyncio
import itertools

from arq.jobs import Job, JobStatus

from app.domains.contacts.models import Contact, KeywordSettings
from app.domains.messages.models import Message
from app.queue import DEFAULT_QUEUE, open_pool
from tests.conftest import csrf_from, sign_in
from tests.integration.outbound_env import outbound, sandbox_server, wait_for  # noqa: F401 (fixtures)
from tests.support.inbound import envelope, new_wamid, signed, text_message

OUT = "You will get no more offers from us. Write START to get them again."
IN = "Welcome back! Offers are on again."
_phones = itertools.count(4915200000001)


async def _world(outbound, **keywords):  # noqa: F811
    env = await outbound()
    account = await env.add_number()
    if keywords:
        answer = await env.client.put("/api/v1/opt-out-keywords", headers=env.headers, json=keywords)
        assert answer.status_code == 200, answer.text
    return env, account


async def _deliver(env, account, phone: str, text: str, wamid: str, name: str = "Dana") -> Message:
    body, headers = signed(envelope(messages=[text_message(text, wamid=wamid, from_=phone)], name=name,
                                    phone_number_id=account.phone_number_id, waba_id=account.waba_id), "secret")
    answer = await env.client.post(f"/webhooks/whatsapp/{account.webhook_key}", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    return await wait_for(lambda: Message.find_one(Message.wamid == wamid))


async def _job_result(env, message: Message) -> str:
    pool = await open_pool(env.runtime.settings.redis_url)
    try:
        job = Job(f"consent-confirm:{message.id}", pool, _queue_name=DEFAULT_QUEUE)
        if await job.status() == JobStatus.not_found:
            return "no job"
        return await job.result(timeout=30, poll_delay=0.05)
    finally:
        await pool.aclose()


async def _writes(env, account, phone: str, text: str) -> str:
    """A customer's message through our webhook endpoint; returns what the confirmation job did."""
    return await _job_result(env, await _deliver(env, account, phone, text, new_wamid()))


async def _texts_to(env, account, phone: str) -> list[str]:
    return [s["body"]["text"]["body"] for s in await env.sent(account) if s["to"] == f"+{phone}" and s["type"] == "text"]


async def test_an_extra_word_opts_out_and_is_confirmed_once_then_start_is_confirmed(outbound):  # noqa: F811
    env, account = await _world(outbound, opt_out_words=["ALTO", "no más"], opt_in_words=["volver"],
                                opt_out_confirmation=OUT, opt_in_confirmation=IN)
    phone = str(next(_phones))
    assert await _writes(env, account, phone, "Hola") == "not a keyword"

    wamid = new_wamid()
    message = await _deliver(env, account, phone, "alto!", wamid)
    assert await _job_result(env, message) == "opt-out confirmed"
    assert await wait_for(lambda: _texts_to(env, account, phone)) == [OUT]
    contact = await Contact.get(message.contact_id)
    assert contact.opted_out_marketing and contact.consent[-1].by == wamid and contact.consent[-1].source == "keyword"
    stored = await Message.find_one(Message.idempotency_key == f"auto:consent:{message.id}")
    assert stored.via == "automation" and stored.content == {"body": OUT}

    # The same message delivered again (another body: Meta's redelivery with a new profile name): nothing more.
    await _deliver(env, account, phone, "alto!", wamid, name="Dana R.")
    pool = await open_pool(env.runtime.settings.redis_url)
    try:  # and the job run again (a second worker): the confirmation exists
        job = await pool.enqueue_job("confirm_consent_keyword", str(message.workspace_id), str(message.id),
                                     _job_id="again")
        assert await job.result(timeout=30, poll_delay=0.05) == "sent before"
    finally:
        await pool.aclose()
    # A repeat (already opted out) is not confirmed; the built-in words count too.
    assert await _writes(env, account, phone, "STOP") == "not confirmed: a repeat (consent was already so)"
    assert await _writes(env, account, phone, "Start") == "opt-in confirmed"
    assert await wait_for(lambda: _len_is(_texts_to(env, account, phone), 2)) == [OUT, IN]
    assert await _writes(env, account, phone, "Volver") == "not confirmed: a repeat (consent was already so)"
    await asyncio.sleep(0.3)
    assert await _texts_to(env, account, phone) == [OUT, IN]
    assert await Message.find(Message.via == "automation").count() == 2


async def test_with_texts_empty_nothing_is_sent_but_the_words_count(outbound):  # noqa: F811
    env, account = await _world(outbound, opt_out_words=["ALTO"])
    phone = str(next(_phones))
    message = await _deliver(env, account, phone, "Alto", new_wamid())
    assert await _job_result(env, message) == "no job"  # the cached answer: no confirmation, no job
    contact = await wait_for(lambda: _opted_out(message.contact_id))
    assert contact.consent[-1].source == "keyword"
    await asyncio.sleep(0.3)
    assert await _texts_to(env, account, phone) == []
    assert await Message.find(Message.direction == "outbound").count() == 0


async def test_api_shows_defaults_saves_and_refuses_bad_input(outbound):  # noqa: F811
    env, _ = await _world(outbound)
    shown = (await env.client.get("/api/v1/opt-out-keywords", headers=env.headers)).json()
    assert shown == {"opt_out_words": [], "opt_in_words": [], "opt_out_confirmation": "",
                     "opt_in_confirmation": "", "updated_at": None}
    saved = await env.client.put("/api/v1/opt-out-keywords", headers=env.headers,
                                 json={"opt_out_words": [" ALTO ", "alto", "Basta"], "opt_out_confirmation": OUT})
    assert saved.status_code == 200, saved.text
    assert saved.json()["opt_out_words"] == ["ALTO", "Basta"] and saved.json()["opt_out_confirmation"] == OUT
    bad = [({"opt_out_words": [f"w{i}" for i in range(21)]}, "opt_out_words"),
           ({"opt_in_words": ["x" * 31]}, "opt_in_words"),
           ({"opt_in_words": ["basta"]}, "opt_in_words"),
           ({"opt_in_words": ["Stop!"]}, "opt_in_words"),  # a built-in opt-out word
           ({"opt_out_words": ["START"]}, "opt_out_words"),
           ({"opt_in_confirmation": "x" * 1025}, "opt_in_confirmation")]
    for body, field in bad:
        answer = await env.client.put("/api/v1/opt-out-keywords", headers=env.headers, json=body)
        assert answer.status_code == 422, answer.text
        assert answer.json()["error_code"] == "KEYWORDS_INVALID" and field in answer.json()["details"], answer.text
    for body in ({}, {"unknown": 1}):
        answer = await env.client.put("/api/v1/opt-out-keywords", headers=env.headers, json=body)
        assert answer.status_code in (400, 422) and "error_code" in answer.json(), answer.text
    kept = (await env.client.get("/api/v1/opt-out-keywords", headers=env.headers)).json()
    assert kept["opt_out_words"] == ["ALTO", "Basta"] and kept["opt_in_words"] == []


async def _opted_out(contact_id):
    contact = await Contact.get(contact_id)
    return contact if contact is not None and contact.opted_out_marketing else None


async def _len_is(texts, n: int):
    found = await texts
    return found if len(found) >= n else None


async def test_admin_section_on_the_business_hours_page_saves_and_shows_field_errors(outbound):  # noqa: F811
    env, _ = await _world(outbound)
    client = env.client
    await sign_in(client, "admin@example.com", "a long test password")
    page = await client.get("/admin/business-hours")
    assert page.status_code == 200 and 'id="consent-keywords-form"' in page.text
    form = {"_csrf_token": csrf_from(page.text), "opt_out_words": "ALTO\nno más", "opt_in_words": "VOLVER",
            "opt_out_confirmation": OUT, "opt_in_confirmation": ""}

    bad = await client.post("/admin/business-hours/keywords", data={**form, "opt_in_words": "alto"})
    assert bad.status_code == 422 and "is also an opt-out word" in bad.text and 'id="business-hours-form"' in bad.text
    assert await KeywordSettings.find_one({}) is None

    fragment = await client.post("/admin/business-hours/keywords", data=form,
                                 headers={"HX-Request": "true", "X-CSRFToken": form["_csrf_token"]})
    assert fragment.status_code == 200 and "Saved." in fragment.text and "<html" not in fragment.text
    stored = await KeywordSettings.find_one({})
    assert stored.opt_out_words == ["ALTO", "no más"] and stored.opt_in_words == ["VOLVER"]
    assert stored.opt_out_confirmation == OUT and stored.opt_in_confirmation == ""
    assert "no más" in (await client.get("/admin/business-hours")).text


async def test_an_extra_word_gets_no_greeting_but_its_confirmation(outbound):  # noqa: F811
    env, account = await _world(outbound, opt_out_words=["ALTO"], opt_out_confirmation=OUT)
    answer = await env.client.put("/api/v1/business-hours", headers=env.headers, json={"greeting_message": "Hi!"})
    assert answer.status_code == 200, answer.text
    phone = str(next(_phones))
    message = await _deliver(env, account, phone, "ALTO", new_wamid())
    assert await _job_result(env, message) == "opt-out confirmed"
    pool = await open_pool(env.runtime.settings.redis_url)
    try:
        job = Job(f"auto-reply:{message.id}", pool, _queue_name=DEFAULT_QUEUE)
        assert await job.result(timeout=30, poll_delay=0.05) == "not answered: a STOP / START keyword"
    finally:
        await pool.aclose()
    assert await wait_for(lambda: _texts_to(env, account, phone)) == [OUT]
