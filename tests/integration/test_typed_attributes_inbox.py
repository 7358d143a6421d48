"""Typed attributes in the inbox's side panel: a date and a yes/no attribute are set from the panel's
text box, stored typed, shown as people read them (not as Python's datetime or True), used by canned
responses the same way; a value of the wrong type is refused under the attribute field."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from app.domains.catalog.models import CannedResponse, ContactAttribute
from app.domains.contacts.models import Contact
from tests.integration.test_inbox_actions import conversation_of, setup


async def test_date_and_yes_no_attributes_in_the_side_panel_and_canned_responses(client_factory):
    client, headers = await setup(client_factory)
    maria = await conversation_of("Maria Silva")
    ws = maria.workspace_id
    await ContactAttribute(workspace_id=ws, key="visit", name="Next visit", type="date").insert()
    await ContactAttribute(workspace_id=ws, key="newsletter", name="Newsletter", type="boolean").insert()
    await CannedResponse(workspace_id=ws, shortcut="renew",
                         text="Renews on {{contact.visit}}, newsletter: {{contact.newsletter}}").insert()
    base = f"/inbox/c/{maria.id}/contact/attributes"
    await client.post(base, data={"key": "visit", "value": "2025-03-01"}, headers=headers)
    panel = await client.post(base, data={"key": "newsletter", "value": "No"}, headers=headers)
    assert panel.status_code == 200
    attributes = re.search(r'<dl class="attributes">.*?</dl>', panel.text, re.S).group(0)
    assert "<dd>2025-03-01</dd>" in attributes and "<dd>no</dd>" in attributes
    assert "00:00:00" not in attributes and "False" not in attributes
    contact = await Contact.get(maria.contact_id)
    assert contact.attributes["visit"].replace(tzinfo=UTC) == datetime(2025, 3, 1, tzinfo=UTC)
    assert contact.attributes["newsletter"] is False

    canned = await client.get(f"/inbox/c/{maria.id}/canned", params={"q": "renew"}, headers=headers)
    assert "Renews on 2025-03-01, newsletter: no" in canned.text

    refused = await client.post(base, data={"key": "visit", "value": "next spring"}, headers=headers)
    form = re.search(r'<form[^>]*contact/attributes.*?</form>', refused.text, re.S).group(0)
    assert 'class="field-error"' in form and "Next visit must be a date (YYYY-MM-DD)" in form
    assert 'value="next spring"' in form
    stored = (await Contact.get(maria.contact_id)).attributes["visit"]
    assert stored.replace(tzinfo=UTC) == datetime(2025, 3, 1, tzinfo=UTC)  # unchanged
