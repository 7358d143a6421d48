"""The Broadcasts admin screens as a browser without JavaScript posts them: the list, a draft from the form
(a refused one shows each message next to its field), the broadcast's page before sending (audience count,
preview, test send, schedule) and after (progress, counts with reasons, pause / resume / cancel, recipients,
CSV); agents kept out.

Only Meta is simulated (the sandbox); the worker is the real one, in-process.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from typing import Any

from app.domains.broadcasts.models import Broadcast
from tests.conftest import csrf_from, sign_in
from tests.integration.outbound_env import outbound, sandbox_server, wait_for  # noqa: F401
from tests.integration.test_broadcasts import world
from tests.support.admin import add_agent

PASSWORD = "a long test password"  # outbound_env's bootstrap admin


async def signed_in(outbound: Any, **options: Any) -> tuple[Any, Any, list[Any]]:  # noqa: F811
    env, account, people = await world(outbound, **options)
    answer = await sign_in(env.client, "admin@example.com", PASSWORD)
    assert answer.status_code in (302, 303), answer.text
    return env, account, people


def form_of(account: Any, **changes: Any) -> dict[str, str]:
    """The draft form as a person fills it: name, number, template, two parameters, tag vip."""
    return {"name": "Spring sale", "account_id": str(account.id), "template": "sale|en",
            "param_source_0": "name", "param_fallback_0": "",
            "param_source_1": "attribute", "param_attribute_1": "city", "param_fallback_1": "",
            "tags": "vip", **changes}


async def post_form(client: Any, url: str, data: dict[str, Any], page: str = "/admin/broadcasts/new") -> Any:
    shown = await client.get(page)
    return await client.post(url, data={"_csrf_token": csrf_from(shown.text), **data}, follow_redirects=False)


async def create_draft(client: Any, account: Any, **changes: Any) -> str:
    made = await post_form(client, "/admin/broadcasts/new", form_of(account, **changes))
    assert made.status_code == 303, made.text
    found = re.match(r"/admin/broadcasts/([0-9a-f]{24})\?saved=1$", made.headers["location"])
    assert found, made.headers["location"]
    return found.group(1)


async def press(client: Any, broadcast_id: str, action: str, **data: str) -> Any:
    return await post_form(client, f"/admin/broadcasts/{broadcast_id}/{action}", data,
                           page=f"/admin/broadcasts/{broadcast_id}")


def text_of(page: str) -> str:
    """The page's words, tags and spacing folded (what a person reads)."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def field_error(page: str, field_id: str) -> str:
    found = re.search(rf'<p class="field-error" id="e-{field_id}">(.*?)</p>', page, re.S)
    assert found, f"no error next to {field_id}"
    return html.unescape(found.group(1))


async def test_a_draft_from_the_form_with_its_count_and_preview_and_refusals_next_to_their_fields(outbound):  # noqa: F811
    env, account, people = await signed_in(outbound)
    client = env.client
    await client.patch(f"/api/v1/contacts/{people[4].id}", headers=env.headers, json={"opted_out_marketing": True})

    empty = await client.get("/admin/broadcasts")
    assert empty.status_code == 200 and "No broadcasts yet" in empty.text
    assert 'href="/admin/broadcasts" aria-current="page">Broadcasts</a>' in empty.text
    new = await client.get("/admin/broadcasts/new")
    assert new.status_code == 200 and 'value="sale|en"' in new.text and account.name in new.text
    assert "Hi {{1}}, our sale ends on {{2}}." in html.unescape(new.text)  # the template's text, shown
    assert "Off: conversations appear in the inbox when people answer." in new.text

    # Refused: each message next to its field, what was typed kept.
    unknown_contact = await post_form(client, "/admin/broadcasts/new", form_of(account, contact_ids="0" * 24 + ",x"))
    assert unknown_contact.status_code == 422
    assert 'value="Spring sale"' in unknown_contact.text
    wrong_template = await post_form(client, "/admin/broadcasts/new", form_of(account, template="nope|en"))
    assert wrong_template.status_code == 422
    assert "does not exist on this number" in field_error(wrong_template.text, "f-template")
    unnamed = await post_form(client, "/admin/broadcasts/new", form_of(account, name=""))
    assert unnamed.status_code == 422 and field_error(unnamed.text, "f-name")
    insecure = await post_form(client, "/admin/broadcasts/new", form_of(account, header_link="http://x.example/a.jpg"))
    assert insecure.status_code == 422 and "https" in field_error(insecure.text, "f-header_link")
    bad_list = await post_form(client, "/admin/broadcasts/new", form_of(account, contact_ids="not-an-id"))
    assert bad_list.status_code == 422 and "not contact ids" in field_error(bad_list.text, "f-contact_ids")
    assert await Broadcast.find_all().count() == 0
    # Nobody picked yet: saved as a draft whose page says how to fill it.
    empty = await post_form(client, "/admin/broadcasts/new", form_of(account, tags=""))
    assert empty.status_code == 303
    words = text_of((await client.get(empty.headers["location"])).text)
    assert "Audience Nobody yet: pick segments or tags" in words and "or upload a list below." in words
    await Broadcast.find_all().delete()

    broadcast_id = await create_draft(client, account)
    page = await client.get(f"/admin/broadcasts/{broadcast_id}?saved=1")
    words = text_of(page.text)
    assert "Saved." in words
    assert "3 contacts now, 1 opted out of marketing (skipped): 2 to send." in words  # vip: 0, 2, 4 (4 opted out)
    assert "Hi Person 0, our sale ends on City 0." in words  # the preview, as the customer reads it
    assert "The audience is frozen when sending starts." in words
    # The preview for a contact without the attribute says they would be skipped.
    skipped = text_of((await client.get(f"/admin/broadcasts/{broadcast_id}?contact_id={people[2].id}")).text)
    assert "This contact would be skipped: no value for city." in skipped
    # Bad input in the address is answered in words, never with an error page of ours.
    unknown = await client.get(f"/admin/broadcasts/{broadcast_id}?contact_id=nope&status=weird&after=zzz")
    assert unknown.status_code == 200 and "No contact with that id in this workspace." in text_of(unknown.text)
    assert (await client.get("/admin/broadcasts/nope")).status_code == 404
    assert (await client.get("/admin/broadcasts/6b12d0c703ad15ea8f962084/progress")).status_code == 404

    # The draft reads back in the form and changes there.
    edit = await client.get(f"/admin/broadcasts/{broadcast_id}/edit")
    assert 'value="Spring sale"' in edit.text and 'value="sale|en" data-waba' in edit.text
    assert re.search(r'<option value="city" selected>', edit.text)
    changed = await post_form(client, f"/admin/broadcasts/{broadcast_id}/edit",
                              form_of(account, name="Spring sale 2", param_fallback_1="your city", local_time="10:30"),
                              page=f"/admin/broadcasts/{broadcast_id}/edit")
    assert changed.status_code == 303
    stored = await Broadcast.get(broadcast_id)
    assert stored.name == "Spring sale 2" and stored.params[1].fallback == "your city" and stored.local_time == "10:30"
    late = await post_form(client, f"/admin/broadcasts/{broadcast_id}/edit", form_of(account, local_time="25:00"),
                           page=f"/admin/broadcasts/{broadcast_id}/edit")
    assert late.status_code == 422 and field_error(late.text, "f-local_time")

    listing = text_of((await client.get("/admin/broadcasts")).text)
    assert "Spring sale 2" in listing and "Draft" in listing and "sale (en)" in listing


async def test_start_shows_progress_then_the_counts_with_reasons_recipients_and_csv(outbound):  # noqa: F811
    env, account, people = await signed_in(outbound)
    client = env.client
    await client.patch(f"/api/v1/contacts/{people[4].id}", headers=env.headers, json={"opted_out_marketing": True})
    broadcast_id = await create_draft(client, account)

    started = await press(client, broadcast_id, "start", when="now")
    assert started.status_code == 303 and started.headers["location"].endswith("?started=1")
    page = await client.get(started.headers["location"])
    assert 'id="bc-progress"' in page.text and f'ws-connect="/admin/broadcasts/{broadcast_id}/live"' in page.text
    assert "Start now" not in page.text  # nothing to start twice

    async def completed_and_handed_on() -> str | None:
        shown = text_of((await client.get(f"/admin/broadcasts/{broadcast_id}/progress")).text)
        handed_on = "In the send queue: 0" in shown and "Waiting their turn: 0" in shown
        return shown if "Completed" in shown and handed_on else None

    progress = await wait_for(completed_and_handed_on, timeout=60)
    assert re.search(r"Sent [01] of 3", progress)  # the sandbox's status webhooks may or may not have come
    assert "Skipped: 2" in progress and "Handed to the send queue 1" in progress
    assert "no value for city: 1" in progress and "opted out of marketing: 1" in progress
    assert "Pause" not in progress and "Cancel the broadcast" not in progress
    assert "<html" not in (await client.get(f"/admin/broadcasts/{broadcast_id}/progress")).text  # the fragment

    page = text_of((await client.get(f"/admin/broadcasts/{broadcast_id}")).text)
    assert "Person 0" in page and "Person 2" in page and "Person 4" in page
    only_skipped = text_of((await client.get(f"/admin/broadcasts/{broadcast_id}?status=skipped")).text)
    assert "Person 2" in only_skipped and "Person 4" in only_skipped and "Person 0" not in only_skipped

    listing = text_of((await client.get("/admin/broadcasts")).text)
    assert "Completed" in listing and re.search(r"Sent [01] of 3", listing)

    csv = await client.get(f"/admin/broadcasts/{broadcast_id}/recipients.csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    assert lines[0] == "contact_id,name,phone,status,reason,replied_at" and len(lines) == 4
    assert any("Person 4" in line and "opted out of marketing" in line for line in lines)
    assert any(line.startswith(f"{people[0].id},Person 0,+4915300000000,") for line in lines)  # the number as is


async def test_pause_resume_and_cancel_change_the_state_and_a_refused_one_says_why(outbound):  # noqa: F811
    env, account, _ = await signed_in(outbound, inline_worker=False, contacts=4)
    client = env.client
    broadcast_id = await create_draft(client, account, param_source_1="text", param_text_1="Friday",
                                      tags="vip, other")
    assert (await press(client, broadcast_id, "start", when="now")).status_code == 303
    sending = text_of((await client.get(f"/admin/broadcasts/{broadcast_id}")).text)
    assert "Sending" in sending and "Pause" in sending and "Resume" not in sending

    paused = await press(client, broadcast_id, "pause")
    assert paused.status_code == 303 and paused.headers["location"].endswith("?paused=1")
    shown = text_of((await client.get(paused.headers["location"])).text)
    assert "Paused: paused by" in shown and "Resume" in shown

    resumed = await press(client, broadcast_id, "resume")
    assert resumed.status_code == 303
    shown = text_of((await client.get(resumed.headers["location"])).text)
    assert "Sending" in shown and "Paused:" not in shown

    cancelled = await press(client, broadcast_id, "cancel")
    assert cancelled.status_code == 303
    shown = text_of((await client.get(cancelled.headers["location"])).text)
    assert "Cancelled" in shown and "Resume" not in shown and "Pause" not in shown
    refused = await press(client, broadcast_id, "resume")
    assert refused.status_code == 409 and "A cancelled broadcast cannot be resumed." in text_of(refused.text)
    # A broadcast that started is not edited: its page says what happened.
    edit = await client.get(f"/admin/broadcasts/{broadcast_id}/edit", follow_redirects=False)
    assert edit.status_code == 303 and edit.headers["location"] == f"/admin/broadcasts/{broadcast_id}"


async def test_schedule_test_send_and_delete_a_draft(outbound):  # noqa: F811
    env, account, people = await signed_in(outbound, inline_worker=False, contacts=3)
    client = env.client
    broadcast_id = await create_draft(client, account)

    no_city = await press(client, broadcast_id, "test", contact_id=str(people[2].id))
    assert no_city.status_code == 422 and "has no value for city" in text_of(no_city.text)
    nobody = await press(client, broadcast_id, "test", contact_id_typed="6b12d0c703ad15ea8f962084")
    assert nobody.status_code == 422 and "No contact with that id" in text_of(nobody.text)
    tested = await press(client, broadcast_id, "test", contact_id=str(people[0].id))
    assert tested.status_code == 303
    shown = text_of((await client.get(tested.headers["location"])).text)
    assert "Test message queued" in shown and (await Broadcast.get(broadcast_id)).status == "draft"

    past = await press(client, broadcast_id, "start", when="later", at="2001-01-01T10:00")
    assert past.status_code == 422 and "That time has passed" in text_of(past.text)
    unreadable = await press(client, broadcast_id, "start", when="later", at="soon")
    assert unreadable.status_code == 422 and "Pick a date and a time" in text_of(unreadable.text)
    later = (datetime.now() + timedelta(days=2)).replace(second=0, microsecond=0)  # UTC: no business hours set
    scheduled = await press(client, broadcast_id, "start", when="later", at=later.strftime("%Y-%m-%dT%H:%M"))
    assert scheduled.status_code == 303 and scheduled.headers["location"].endswith("?scheduled=1")
    shown = text_of((await client.get(scheduled.headers["location"])).text)
    assert "Scheduled" in shown and "Starts at" in shown and "Delete" in shown
    stored = await Broadcast.get(broadcast_id)
    assert stored.status == "scheduled" and stored.scheduled_at is not None

    deleted = await press(client, broadcast_id, "delete")
    assert deleted.status_code == 303 and deleted.headers["location"] == "/admin/broadcasts?deleted=1"
    assert await Broadcast.find_all().count() == 0
    assert (await client.get(f"/admin/broadcasts/{broadcast_id}")).status_code == 404


async def test_agents_are_kept_out(outbound):  # noqa: F811
    env, account, _ = await signed_in(outbound, contacts=1)
    broadcast_id = await create_draft(env.client, account)
    await add_agent(env.client)
    await env.client.post("/logout", data={"_csrf_token": csrf_from((await env.client.get("/admin/broadcasts")).text)})
    await sign_in(env.client, "agent@example.com", "agent password")
    for url in ("/admin/broadcasts", "/admin/broadcasts/new", f"/admin/broadcasts/{broadcast_id}",
                f"/admin/broadcasts/{broadcast_id}/recipients.csv"):
        assert (await env.client.get(url)).status_code == 403, url
    nav = await env.client.get("/inbox")
    assert 'href="/admin/broadcasts"' not in nav.text
