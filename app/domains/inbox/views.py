"""Display models: what one conversation row and one message bubble show, computed in Python.

The page and the live WebSocket render the same partials from these, so a bubble looks the same
whether it came with the page or was pushed. Nothing here marks text safe: templates autoescape.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from app.db import as_utc, utcnow
from app.domains.accounts.models import WhatsAppAccount
from app.domains.contacts.models import Contact
from app.domains.conversations.models import Conversation
from app.domains.messages.models import Message
from app.domains.messages.preview import preview_text
from app.domains.workflows.models import ACTIVE, WorkflowRun
from app.domains.workspaces.models import User

WINDOW_WARNING = timedelta(hours=2)
_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""
MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")

# What the ticks say, for screen readers and the data-status attribute.
TICKS = {
    "queued": ("🕓", "Queued"),
    "accepted": ("🕓", "Accepted by WhatsApp"),
    "sent": ("✓", "Sent"),
    "delivered": ("✓✓", "Delivered"),
    "read": ("✓✓", "Read"),
    "failed": ("⚠", "Failed"),
}


# The panel's choices, lowest first; "none" clears it (ConversationActions.set_priority).
PRIORITY_CHOICES = (("none", "No priority"), ("low", "Low"), ("medium", "Medium"), ("high", "High"),
                    ("urgent", "Urgent"))
PRIORITY_WORDS = {value: word for value, word in PRIORITY_CHOICES if value != "none"}
FLAGGED_PRIORITIES = ("urgent", "high")


def status_attr(direction: str, status: str | None) -> str:
    """The six values styles and tests follow; inbound and internal messages count as delivered."""
    if direction != "outbound":
        return "delivered"
    if status == "played":
        return "read"
    return status if status in TICKS else "queued"


def text_segments(text: str) -> list[tuple[str, str]]:
    """Plain text split into ("text", s) and ("url", s) parts; only http(s) links become links."""
    segments: list[tuple[str, str]] = []
    position = 0
    for match in _URL.finditer(text or ""):
        url = match.group(0)
        while url and url[-1] in _TRAILING:
            url = url[:-1]
        if len(url) <= len("https://"):
            continue
        start = match.start()
        if start > position:
            segments.append(("text", text[position:start]))
        segments.append(("url", url))
        position = start + len(url)
    if position < len(text or ""):
        segments.append(("text", text[position:]))
    return segments


def window_state(expires_at: datetime | None, now: datetime | None = None) -> str:
    """open / closing (under two hours left) / closed: the list badge and the composer's mode."""
    now = now or utcnow()
    if expires_at is None or as_utc(expires_at) <= now:
        return "closed"
    return "closing" if as_utc(expires_at) - now <= WINDOW_WARNING else "open"


def iso(value: datetime | None) -> str:
    return as_utc(value).isoformat().replace("+00:00", "Z") if value else ""


def media_url(message: Message) -> str | None:
    """Where the browser loads a message's stored media from (the media area's /media/{id})."""
    if message.media is not None and message.media.stored_file_id is not None:
        return f"/media/{message.media.stored_file_id}"
    link = (message.content or {}).get("link")
    return link if isinstance(link, str) and link.startswith("https://") else None


class ConversationRow:
    """One line of the conversation list."""

    def __init__(self, conversation: Conversation, contact: Contact | None, account: WhatsAppAccount | None,
                 assignee: User | None, label_info: dict | None = None, people: dict | None = None) -> None:
        self.c = conversation
        self.contact = contact
        self.account = account
        self.assignee = assignee
        self.label_info = label_info or {}
        group = contact.group if contact is not None else None
        self.participants: list[Contact] = [people[i] for i in group.participant_ids if i in people] if (
            group is not None and people) else []
        """A group's participants we know, by name (empty for a one-to-one conversation)."""

    @property
    def labels(self) -> list:
        """(name, colour) per label; ids the admin list does not know are shown as they are."""
        return [(self.label_info[x].name, self.label_info[x].colour) if x in self.label_info else (x, "")
                for x in self.c.labels]

    @property
    def id(self) -> str:
        return str(self.c.id)

    @property
    def name(self) -> str:
        return self.contact.display_name if self.contact else "Unknown contact"

    @property
    def phone(self) -> str:
        """What stands under the name: the number, a username user's @handle, or "WhatsApp group"."""
        c = self.contact
        if c is None:
            return ""
        if c.group is not None:
            return "WhatsApp group"
        return c.phone or c.wa_id or (f"@{c.username.lstrip('@')}" if c.username else "")

    @property
    def sort_key(self) -> str:
        at = self.c.last_message_at
        millis = int(as_utc(at).timestamp() * 1000) if at else 0
        return f"{millis:015d}-{self.c.id}"

    @property
    def window(self) -> str:
        return window_state(self.c.window_expires_at)

    @property
    def preview(self) -> str:
        p = self.c.last_message
        if p is None:
            return ""
        if p.text:
            return p.text
        return {"image": "📷 Photo", "video": "🎬 Video", "audio": "🎤 Audio", "document": "📄 Document",
                "sticker": "Sticker", "location": "📍 Location", "contacts": "👤 Contact card",
                "template": "Template", "reaction": "Reaction"}.get(p.type, p.type)

    @property
    def preview_tick(self) -> tuple[str, str, str] | None:
        p = self.c.last_message
        if p is None or p.direction != "outbound":
            return None
        status = status_attr("outbound", p.status)
        return (status, *TICKS[status])

    @property
    def account_name(self) -> str:
        return self.account.name if self.account else ""

    @property
    def assignee_name(self) -> str:
        return (self.assignee.name or self.assignee.email) if self.assignee else ""

    @property
    def priority(self) -> str:
        """urgent / high / medium / low, or "" (none)."""
        return self.c.priority or ""

    @property
    def priority_word(self) -> str:
        return PRIORITY_WORDS.get(self.priority, "")

    @property
    def priority_flagged(self) -> bool:
        """Urgent and high stand out in the list (a badge with its word, not a colour alone)."""
        return self.priority in FLAGGED_PRIORITIES


class MessageView:
    """One bubble: its text, media, ticks, reactions, quote, edits, errors."""

    def __init__(self, message: Message, quoted: Message | None = None, author: User | None = None,
                 sender: Contact | None = None) -> None:
        self.m = message
        self.quoted = quoted
        self.author = author
        self.sender = sender
        """In a group's thread: the participant who wrote it (shown above the bubble's text)."""
        self.content: dict[str, Any] = message.content or {}

    @property
    def id(self) -> str:
        return str(self.m.id)

    @property
    def kind(self) -> str:
        t = self.m.type
        if self.m.direction == "internal":
            return "event" if t == "event" else "note"
        if t in MEDIA_TYPES:
            return "media"
        return t if t in ("text", "location", "contacts", "interactive", "button", "reaction", "template",
                          "order", "system", "unsupported") else "other"

    @property
    def status(self) -> str:
        return status_attr(self.m.direction, self.m.status.value)

    @property
    def tick(self) -> tuple[str, str]:
        return TICKS[self.status]

    @property
    def time_iso(self) -> str:
        return iso(self.m.timestamp)

    @property
    def time_short(self) -> str:
        return as_utc(self.m.timestamp).strftime("%H:%M")

    @property
    def text(self) -> str:
        c = self.content
        if self.kind in ("text", "note"):
            return str(c.get("body") or "")
        if self.kind == "media":
            return str(c.get("caption") or "")
        if self.kind == "event":
            return str(c.get("text") or "")
        if self.kind == "button":
            return str(c.get("text") or c.get("payload") or "")
        if self.kind == "order":
            return str(c.get("text") or "")
        if self.kind == "system":
            return str(c.get("body") or "The customer's WhatsApp account changed")
        return ""

    @property
    def segments(self) -> list[tuple[str, str]]:
        return text_segments(self.text)

    @property
    def media(self) -> dict[str, Any]:
        c = self.content
        media = self.m.media
        return {
            "type": self.m.type, "url": media_url(self.m),
            "mime": (media.mime_type if media else None) or c.get("mime_type") or "",
            "filename": (media.filename if media else None) or c.get("filename") or "document",
            "voice": bool(c.get("voice")),
            "state": "stored" if media_url(self.m) else (media.state if media and media.state == "failed" else "pending"),
            "error": media.error if media else None,
        }

    @property
    def location(self) -> dict[str, Any]:
        c = self.content
        try:
            lat, lng = float(c.get("latitude")), float(c.get("longitude"))
        except (TypeError, ValueError):
            return {"ok": False, "name": str(c.get("name") or ""), "address": str(c.get("address") or "")}
        ok = math.isfinite(lat) and math.isfinite(lng) and -90 <= lat <= 90 and -180 <= lng <= 180
        return {"ok": ok, "lat": lat, "lng": lng, "name": str(c.get("name") or ""),
                "address": str(c.get("address") or ""),
                "map_url": "https://www.openstreetmap.org/?" + urlencode({"mlat": lat, "mlon": lng}) + f"#map=16/{lat}/{lng}"}

    @property
    def contact_cards(self) -> list[dict[str, Any]]:
        cards = self.content.get("contacts") if isinstance(self.content.get("contacts"), list) else []
        if not cards and isinstance(self.m.content, dict) and isinstance(self.m.content.get("items"), list):
            cards = self.m.content["items"]
        out = []
        for card in cards[:5]:
            if not isinstance(card, dict):
                continue
            name = card.get("name") or {}
            phones = [str(p.get("phone") or p.get("wa_id") or "") for p in card.get("phones") or [] if isinstance(p, dict)]
            out.append({"name": str(name.get("formatted_name") or name.get("first_name") or "Contact"),
                        "phones": [p for p in phones if p]})
        return out

    @property
    def interactive(self) -> dict[str, Any]:
        """Inbound: the reply the customer tapped. Outbound: our body and buttons."""
        c = self.content
        kind = c.get("type")
        if kind == "button_reply":
            return {"reply": str((c.get("button_reply") or {}).get("title") or ""), "label": "Tapped button"}
        if kind == "list_reply":
            reply = c.get("list_reply") or {}
            return {"reply": str(reply.get("title") or ""), "detail": str(reply.get("description") or ""),
                    "label": "Picked from list"}
        if kind == "nfm_reply":
            reply = c.get("nfm_reply") or {}
            return {"reply": str(reply.get("body") or "Form submitted"), "label": "Flow reply"}
        body = str((c.get("body") or {}).get("text") or "") if isinstance(c.get("body"), dict) else ""
        action = c.get("action") or {}
        buttons = [str((b.get("reply") or {}).get("title") or "") for b in action.get("buttons") or [] if isinstance(b, dict)]
        rows = [str(r.get("title") or "") for s in action.get("sections") or [] if isinstance(s, dict)
                for r in s.get("rows") or [] if isinstance(r, dict)]
        return {"body": body, "buttons": buttons, "rows": rows, "label": "Interactive message"}

    @property
    def template(self) -> dict[str, Any]:
        c = self.content
        params = []
        for component in c.get("components") or []:
            if isinstance(component, dict):
                for p in component.get("parameters") or []:
                    if isinstance(p, dict) and p.get("type") == "text":
                        params.append(str(p.get("text") or ""))
        language = c.get("language") or {}
        return {"name": str(c.get("name") or "template"), "params": params,
                "language": str(language.get("code") or "") if isinstance(language, dict) else "",
                "rendered": self.m.rendered}

    @property
    def reaction_target_emoji(self) -> str:
        return str(self.content.get("emoji") or "")

    @property
    def reaction_chips(self) -> list[tuple[str, int]]:
        counts = Counter(r.emoji for r in self.m.reactions if r.emoji)
        return sorted(counts.items(), key=lambda kv: -kv[1])

    @property
    def quote(self) -> str | None:
        if not (self.m.reply_to_id or self.m.reply_to_wamid):
            return None
        if self.quoted is None:
            return "an earlier message"
        view = MessageView(self.quoted)
        # Our interactive message or template is quoted by what the customer read, not by its kind.
        return view.text or preview_text(self.quoted.type, self.quoted.content, self.quoted.rendered)

    @property
    def edited(self) -> bool:
        return bool(self.m.edits)

    @property
    def deleted(self) -> bool:
        return self.m.deleted_at is not None

    @property
    def error_text(self) -> str:
        e = self.m.error
        if e is None:
            return ""
        return e.agent_message or " ".join(x for x in (e.title, e.detail) if x) or f"Error {e.code}"

    @property
    def can_retry(self) -> bool:
        return self.m.direction == "outbound" and self.status == "failed"

    @property
    def author_name(self) -> str:
        if self.author:
            return self.author.name or self.author.email
        if self.m.via == "automation":  # a workflow's message names it; business-hours replies have no name
            name = str((self.m.automation or {}).get("name") or "").strip()
            return f"Automation · {name}" if name else "Automation"
        if self.m.via == "broadcast":
            name = str((self.m.broadcast or {}).get("name") or "").strip()
            return f"Broadcast · {name}" if name else "Broadcast"
        return {"api": "API"}.get(self.m.via or "", "")

    @property
    def can_act(self) -> bool:
        """Reply and react work on real WhatsApp messages (they need a wamid)."""
        return self.m.direction != "internal" and bool(self.m.wamid) and not self.deleted


RUN_WORDS = {"running": "Running", "waiting": "Waiting", "completed": "Completed", "stopped": "Stopped",
             "failed": "Failed"}


class RunView:
    """One workflow run of a conversation, as the side panel's Automations section shows it."""

    def __init__(self, run: WorkflowRun) -> None:
        self.r = run

    @property
    def id(self) -> str:
        return str(self.r.id)

    @property
    def workflow_name(self) -> str:
        return self.r.workflow_name

    @property
    def active(self) -> bool:
        return self.r.status in ACTIVE

    @property
    def status(self) -> str:
        return self.r.status

    @property
    def status_word(self) -> str:
        return RUN_WORDS.get(self.r.status, self.r.status)

    @property
    def waiting_for(self) -> str:
        """"reply" (an answer from the customer), "time", or "" (running: a worker is on it)."""
        if self.r.status != "waiting" or self.r.waiting is None:
            return ""
        return "reply" if self.r.waiting.kind in ("reply", "answered") else "time"

    @property
    def until(self) -> datetime | None:
        return as_utc(self.r.waiting.until) if self.waiting_for and self.r.waiting and self.r.waiting.until else None

    @property
    def until_iso(self) -> str:
        return iso(self.until)

    @property
    def until_text(self) -> str:
        """The wait's end in UTC (inbox.js shows it in the agent's own time)."""
        return self.until.strftime("%Y-%m-%d %H:%M UTC") if self.until else ""

    @property
    def end_reason(self) -> str:
        return self.r.end_reason or ""

    @property
    def ended_iso(self) -> str:
        return iso(self.r.ended_at)
