"""Demo mode: a workspace on the sandbox with numbers, templates, contacts and conversations in every state.

The numbers are registered in the in-process SandboxState (same ids, token and app secret as
the WhatsAppAccounts, webhook URL = the account's own), so replies really go through the Cloud
API simulator and come back as status webhooks; the "simulate customer" panel makes its
customers write. History is written directly so the inbox opens full, in a second.
"""

from __future__ import annotations

import secrets
from datetime import UTC
from pathlib import Path
from typing import Any

from app.db import utcnow
from app.domains.accounts.models import WhatsAppAccount
from app.domains.accounts.services import NewAccount
from app.domains.workspaces.models import Role, User
from app.logging import get_logger
from app.runtime import Runtime

log = get_logger(__name__)

DEMO_ADMIN = "admin@demo.wa-inbox.test"
DEMO_AGENT = "agent@demo.wa-inbox.test"
DEMO_NUMBERS = [
    {"name": "Coffee Co sales", "phone_number_id": "106540352242922", "waba_id": "102290129340398",
     "display_phone_number": "+1 555 010 0100"},
    {"name": "Coffee Co support", "phone_number_id": "106540352242923", "waba_id": "102290129340398",
     "display_phone_number": "+1 555 010 0101"},
]
DEMO_TEMPLATES = [
    ("order_update", "en_US", "UTILITY", "Hi {{1}}, your order {{2}} is on its way and arrives {{3}}."),
    ("welcome_back", "en_US", "MARKETING", "Hello {{1}}! Fresh beans from Brazil just arrived. Reply to order."),
    ("hello_world", "en_US", "UTILITY", "Hello! Thanks for contacting Coffee Co. How can we help today?"),
]


def _body_component(text: str) -> dict[str, Any]:
    import re

    params = re.findall(r"\{\{(\d+)\}\}", text)
    component: dict[str, Any] = {"type": "BODY", "text": text}
    if params:
        component["example"] = {"body_text": [[f"sample{p}" for p in params]]}
    return component


def demo_password(data_dir: Path) -> str:
    """The demo users' password: made at the first seed and kept under the data dir, so the login
    printed at every start stays valid (the database keeps the users across restarts)."""
    path = data_dir / "demo_password"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(9)
    path.write_text(password)
    path.chmod(0o600)
    return password


async def seed_demo(runtime: Runtime, sandbox_state=None) -> dict[str, str]:
    """Create the demo workspace once; returns the logins to print and whether this start seeded it."""
    existing = await User.find_one(User.email == DEMO_ADMIN)
    password = demo_password(runtime.settings.data_dir)
    if existing is None:
        workspace, admin = await runtime.people.create_workspace("Demo Coffee Co", DEMO_ADMIN, password, "Demo Admin")
        agent = await runtime.people.create_user(workspace.id, DEMO_AGENT, password, Role.AGENT, "Demo Agent")
        accounts = []
        for spec in DEMO_NUMBERS:
            token, app_secret = "demo-token-" + secrets.token_hex(12), "demo-secret-" + secrets.token_hex(12)
            accounts.append(await runtime.accounts.create(workspace.id, NewAccount(
                access_token=token, app_secret=app_secret, **spec)))
        _register(runtime, sandbox_state, accounts)
        await _seed_templates(workspace.id, sandbox_state, accounts[0])
        await _seed_canned(workspace.id)
        from app.demo_history import seed_history

        await seed_history(runtime, sandbox_state, workspace.id, accounts, admin, agent)
        await _seed_crm(workspace.id)
        from app.domains.reports.backlog import sample_backlog

        await sample_backlog(workspace.id)  # the reports' backlog starts now (the worker counts every quarter hour)
        seeded = "demo data seeded (once: later starts keep it and everything you add)"
    else:  # kept from an earlier start: the sandbox keeps nothing across restarts, so tell it the numbers again
        accounts = await WhatsAppAccount.find(WhatsAppAccount.workspace_id == existing.workspace_id).to_list()
        _register(runtime, sandbox_state, accounts)
        await _restore_windows(sandbox_state, accounts)
        if accounts:
            await _seed_templates(existing.workspace_id, sandbox_state, accounts[0])
        seeded = (f"demo data kept from the first start ({existing.created_at:%Y-%m-%d %H:%M} UTC); "
                  "if you changed the demo password, use yours")
    return {"admin": DEMO_ADMIN, "agent": DEMO_AGENT, "password": password, "seeded": seeded}


def _register(runtime: Runtime, sandbox_state, accounts: list[WhatsAppAccount]) -> None:
    if sandbox_state is None:
        return
    for account in accounts:
        # Ticks advance visibly: delivered after 0.8 s, read after 2.5 s.
        sandbox_state.register_number(
            account.phone_number_id, account.waba_id, account.display_phone_number,
            runtime.accounts.access_token(account), runtime.accounts.app_secret(account),
            runtime.accounts.webhook_url(account), account.mps, delivered_after_ms=800, read_after_ms=2500,
            verified_name="Demo Coffee Co")


async def _restore_windows(sandbox_state, accounts: list[WhatsAppAccount]) -> None:
    """Tell the restarted sandbox when each customer last wrote (kept in the database), so its 24-hour
    rule agrees with the inbox after a restart, as Meta's would."""
    if sandbox_state is None:
        return
    from app.domains.contacts.models import Contact
    from app.domains.conversations.models import Conversation

    for account in accounts:
        number = sandbox_state.numbers.get(account.phone_number_id)
        if number is None:
            continue
        conversations = await Conversation.find(Conversation.account_id == account.id,
                                                Conversation.last_inbound_at != None).to_list()  # noqa: E711
        contacts = {c.id: c for c in await Contact.find({"_id": {"$in": [c.contact_id for c in conversations]}}).to_list()}
        for conversation in conversations:
            contact = contacts.get(conversation.contact_id)
            if contact is not None and contact.wa_id:
                number.last_inbound[contact.wa_id] = max(number.last_inbound.get(contact.wa_id, 0.0),
                                                         conversation.last_inbound_at.timestamp())


async def _seed_templates(workspace_id, sandbox_state, account: WhatsAppAccount) -> None:
    if sandbox_state is None:
        return
    try:
        from app.domains.templates.models import MessageTemplate
    except ImportError:
        MessageTemplate = None  # noqa: N806
    for name, language, category, text in DEMO_TEMPLATES:
        components = [_body_component(text)]
        template_id = sandbox_state.seed_template(account.waba_id, name, language, category, components)
        if MessageTemplate is not None and not await MessageTemplate.find_one(
                {"workspace_id": workspace_id, "waba_id": account.waba_id, "name": name, "language": language}):
            await MessageTemplate(workspace_id=workspace_id, waba_id=account.waba_id, meta_id=template_id, name=name,
                                  language=language, category=category, status="APPROVED",
                                  components=components, synced_at=utcnow()).insert()


DEMO_CANNED = [
    ("thanks", "Thanks {{contact.name}}! Anything else I can help you with?"),
    ("hours", "We're open Monday to Friday, 8:00-18:00, and Saturday 9:00-13:00."),
    ("shipping", "Orders ship within 24 hours; you get the tracking link here on WhatsApp."),
]


async def _seed_canned(workspace_id) -> None:
    try:
        from app.domains.catalog.models import CannedResponse
    except ImportError:
        return
    for shortcut, text in DEMO_CANNED:
        await CannedResponse(workspace_id=workspace_id, shortcut=shortcut, text=text).insert()



DEMO_ATTRIBUTES = [("plan", "Plan", "list", ["basic", "pro"]), ("city", "City", "text", []),
                   ("renewal", "Renewal date", "date", [])]
DEMO_PROFILES = {  # wa_id -> tags, attributes (typed as stored), email
    "351912345678": (["vip", "wholesale"], {"plan": "pro", "city": "Lisbon", "renewal": (2027, 1, 15)}, "maria@example.com"),
    "14155550123": (["lead"], {"plan": "basic", "city": "San Francisco"}, None),
    "819012345678": (["vip"], {"plan": "pro", "city": "Tokyo", "renewal": (2027, 3, 1)}, "aiko@example.com"),
    "5215512345678": (["lead"], {"city": "Mexico City"}, None),
}


async def _seed_crm(workspace_id) -> None:
    """Attributes, tags and a segment, so the contacts page has something to filter on."""
    from datetime import datetime

    from app.domains.catalog.models import ContactAttribute
    from app.domains.contacts.models import Contact
    from app.domains.segments.services import SegmentService

    for key, name, kind, options in DEMO_ATTRIBUTES:
        await ContactAttribute(workspace_id=workspace_id, key=key, name=name, type=kind, options=options).insert()
    for wa_id, (tags, attributes, email) in DEMO_PROFILES.items():
        typed = {k: datetime(*v, tzinfo=UTC) if isinstance(v, tuple) else v for k, v in attributes.items()}
        await Contact.find_one(Contact.workspace_id == workspace_id, Contact.wa_id == wa_id).update(
            {"$set": {"tags": tags, "attributes": typed, "email": email}})
    await SegmentService().create(workspace_id, "Pro customers", {"match": "all", "conditions": [
        {"field": "attributes.plan", "op": "is", "value": "pro"}]})
