"""A populated workspace for API v1 tests: a number, contacts, conversations, messages in every state,
a stored media file, a label, a team, an agent, an admin API key. Built with our own services and
documents (Mongo only, so it works from the test's event loop)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from beanie import PydanticObjectId

from app.db import utcnow
from app.domains.accounts.models import WhatsAppAccount
from app.domains.accounts.services import NewAccount
from app.domains.assignment.models import AssignmentRule
from app.domains.catalog.models import CannedResponse, ContactAttribute, Label
from app.domains.contact_files.models import ContactExport, ContactImport
from app.domains.contacts.models import Contact
from app.domains.contacts.services import ContactService
from app.domains.conversations.models import Conversation, MessagePreview
from app.domains.conversations.services import ConversationService
from app.domains.media.store import MediaStore
from app.domains.messages.models import MediaRef, Message, MessageError, MessageStatus
from app.domains.segments.models import Segment
from app.domains.subscriptions.models import Delivery, DeliveryState, IntegrationEvent, Subscription
from app.domains.team.models import Team
from app.domains.templates.models import MessageTemplate
from app.domains.workspaces.models import Role, User

_n = itertools.count(1)


@dataclass
class World:
    workspace_id: PydanticObjectId
    key: str
    admin: User
    agent: User
    account: WhatsAppAccount
    contacts: list[Contact] = field(default_factory=list)
    conversations: list[Conversation] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    label: Label | None = None
    canned: CannedResponse | None = None
    team: Team | None = None
    agent_key: str = ""
    token: str = ""
    app_secret: str = ""
    extra_ids: dict[str, str] = field(default_factory=dict)

    def ids_by_collection(self) -> dict[str, str]:
        """A real id of this workspace for the path segment that names its kind (``/labels/{item_id}``)."""
        return {"conversations": str(self.conversations[0].id), "messages": str(self.messages[1].id),
                "contacts": str(self.contacts[-1].id), "labels": str(self.label.id),
                "canned-responses": str(self.canned.id), "teams": str(self.team.id), "users": str(self.agent.id),
                "accounts": str(self.account.id), **self.extra_ids}

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def agent_auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.agent_key}"}


async def message(world: World, conversation: Conversation, direction: str, at: datetime, *,
                  status: MessageStatus | None = None, reached: tuple[str, ...] = (), error_code: int | None = None,
                  text: str = "hi", **extra: Any) -> Message:
    n = next(_n)
    status = status or (MessageStatus.RECEIVED if direction == "inbound" else MessageStatus.SENT)
    doc = Message(workspace_id=world.workspace_id, conversation_id=conversation.id, account_id=conversation.account_id,
                  contact_id=conversation.contact_id, direction=direction, type="text", content={"body": text},
                  wamid=f"wamid.world{n}.{int(at.timestamp() * 1000)}", status=status,
                  status_at={s: at + timedelta(seconds=i) for i, s in enumerate(reached or (status.value,))},
                  error=MessageError(code=error_code, title=f"Error {error_code}") if error_code else None,
                  timestamp=at, created_at=at, updated_at=at, **extra)
    await doc.insert()
    world.messages.append(doc)
    return doc


async def build_world(runtime: Any, name: str = "Shop", *, email: str | None = None, key: str | None = None) -> World:
    n = next(_n)
    workspace, admin = await runtime.people.create_workspace(name, email or f"owner{n}@example.com", "owner password")
    _, plaintext = await runtime.people.create_api_key(workspace.id, "tests", Role.ADMIN, admin.id, key)
    agent = await runtime.people.create_user(workspace.id, f"agent{n}@example.com", "agent password", Role.AGENT, "Ann")
    agent_key_record, agent_key = await runtime.people.create_api_key(workspace.id, "agent key", Role.AGENT, agent.id)
    account = await runtime.accounts.create(workspace.id, NewAccount(
        name="Main", phone_number_id=f"55{n:06d}", waba_id=f"66{n:06d}", display_phone_number=f"+1555{n:07d}",
        access_token=f"EAAG-token-{n}", app_secret=f"secret-{n}"))
    world = World(workspace.id, plaintext, admin, agent, account, agent_key=agent_key, token=f"EAAG-token-{n}",
                  app_secret=f"secret-{n}")
    world.label = await Label(workspace_id=workspace.id, name=f"vip{n}", colour="#128c7e").insert()
    world.canned = await CannedResponse(workspace_id=workspace.id, shortcut=f"hello{n}", text="Hello!").insert()
    world.team = await Team(workspace_id=workspace.id, name="Sales", member_ids=[agent.id]).insert()
    now = utcnow()
    for i in range(3):
        contact, _ = await ContactService().upsert(workspace.id, wa_id=f"1555{n:03d}{i:04d}", profile_name=f"Customer {i}")
        conversation, _ = await ConversationService().open_for(workspace.id, account.id, contact.id)
        start = now - timedelta(hours=2, minutes=10 * i)
        first = await message(world, conversation, "inbound", start, text=f"question {i}")
        await message(world, conversation, "outbound", start + timedelta(seconds=60 * (i + 1)),
                      status=MessageStatus.READ, reached=("accepted", "sent", "delivered", "read"))
        await message(world, conversation, "inbound", start + timedelta(minutes=5))
        await message(world, conversation, "outbound", start + timedelta(minutes=6), status=MessageStatus.FAILED,
                      reached=("accepted", "failed"), error_code=131047 if i < 2 else 131026)
        await ConversationService().record_inbound(conversation, start + timedelta(minutes=5),
                                                   MessagePreview(text="hi", message_id=first.id))
        world.contacts.append(contact)
        world.conversations.append(await Conversation.get(conversation.id))
    attribute = await ContactAttribute(workspace_id=workspace.id, key="plan", name="Plan").insert()
    template = await MessageTemplate(workspace_id=workspace.id, waba_id=account.waba_id, meta_id=f"77{n}",
                                     name=f"order_update_{n}", language="en_US", category="UTILITY",
                                     status="APPROVED", components=[{"type": "BODY", "text": "Your order is ready"}]
                                     ).insert()
    subscription = await Subscription(workspace_id=workspace.id, url="https://hooks.example.test/in",
                                      events=["message.received"], secret_encrypted=runtime.secrets.encrypt("whsec_x"),
                                      secret_last4="ec_x").insert()
    event = await IntegrationEvent(workspace_id=workspace.id, key=f"ping:{n}", type="ping", occurred_at=now,
                                   body='{"id": "evt_x", "type": "ping", "data": {}}').insert()
    delivery = await Delivery(workspace_id=workspace.id, subscription_id=subscription.id, event_id=event.id,
                              event_type="ping", state=DeliveryState.DELIVERED, retry_until=now).insert()
    segment = await Segment(workspace_id=workspace.id, name="VIP", name_key="vip",
                            filter={"match": "all", "conditions": [{"field": "tag", "op": "has", "value": "vip"}]}
                            ).insert()
    contact_import = await ContactImport(workspace_id=workspace.id, file_id=PydanticObjectId(), size=0, encoding="utf-8"
                                         ).insert()
    contact_export = await ContactExport(workspace_id=workspace.id).insert()
    rule = await AssignmentRule(workspace_id=workspace.id, name="In turn", enabled=False).insert()
    world.extra_ids = {"segments": str(segment.id), "imports": str(contact_import.id),
                       "exports": str(contact_export.id), "attributes": str(attribute.id), "templates": str(template.id),
                       "subscriptions": str(subscription.id), "deliveries": str(delivery.id),
                       "api-keys": str(agent_key_record.id), "assignment-rules": str(rule.id)}
    # A stored media file on the first customer's first message (erasure must remove it).
    stored = await MediaStore().put(workspace.id, b"\x89PNG fake image bytes", kind="image", content_type="image/png",
                                    message_id=world.messages[0].id)
    await Message.get_motor_collection().update_one({"_id": world.messages[0].id}, {"$set": {
        "media": MediaRef(stored_file_id=stored.id, state="stored", mime_type="image/png").model_dump()}})
    return world
