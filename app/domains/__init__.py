"""Business areas, one package each: models (Beanie), services (logic), controllers (HTML), api (JSON)."""

from __future__ import annotations

from beanie import Document


def all_documents() -> list[type[Document]]:
    """Every Document, for init_beanie."""
    from app.domains.accounts.models import WhatsAppAccount
    from app.domains.assignment.models import AssignmentRule, InboxMinutes
    from app.domains.audit.models import AuditEntry
    from app.domains.broadcasts.models import Broadcast, BroadcastRecipient
    from app.domains.business_hours.models import BusinessHours
    from app.domains.catalog.models import CannedResponse, ContactAttribute, Label
    from app.domains.contact_files.models import ContactExport, ContactImport, ImportRefusal
    from app.domains.contacts.models import Contact, ContactMerge, KeywordSettings
    from app.domains.conversations.models import Conversation
    from app.domains.media.models import MediaChunk, StoredMedia
    from app.domains.messages.models import Message, PendingStatus
    from app.domains.outbox.media import OutboundMedia
    from app.domains.reports.models import BacklogSample, ContactHour, ReportHour, ReportState, SliceHour
    from app.domains.segments.models import Segment
    from app.domains.subscriptions.models import Delivery, IntegrationEvent, Subscription
    from app.domains.team.models import Invitation, Team
    from app.domains.templates.models import MessageTemplate
    from app.domains.webhooks.models import TemplateStatusEvent, WebhookEvent
    from app.domains.workflows.models import Workflow, WorkflowRun, WorkflowTimer
    from app.domains.workspaces.models import ApiKey, User, WebSession, Workspace

    # Each area adds its Documents here (one line per area keeps merges trivial).
    return [
        Workspace, User, ApiKey, WebSession,
        WhatsAppAccount,
        Contact, ContactMerge, KeywordSettings,
        Conversation,
        Message, PendingStatus,
        OutboundMedia,
        WebhookEvent, TemplateStatusEvent,
        StoredMedia, MediaChunk,
        MessageTemplate,
        Team, Invitation,
        CannedResponse, Label, ContactAttribute,
        ContactImport, ImportRefusal, ContactExport,
        Segment,
        Subscription, IntegrationEvent, Delivery,
        AssignmentRule, InboxMinutes,
        BusinessHours,
        Workflow, WorkflowRun, WorkflowTimer,
        Broadcast, BroadcastRecipient,
        ReportHour, ReportState, ContactHour, SliceHour, BacklogSample,
        AuditEntry,
    ]
