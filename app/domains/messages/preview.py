"""The one-line preview of a message for the conversation list (``Conversation.last_message.text``).

One function for every message, whichever way it came: received from a customer (webhook), sent by us
(the outbox) or echoed from the WhatsApp Business app, so the same message previews the same.
Content is Meta's object for the type (what a webhook carries and what the send payload holds).
"""

from __future__ import annotations

from typing import Any

from app.whatsapp.payloads import MEDIA_TYPES

MAX_PREVIEW = 200


def preview_text(message_type: str, content: Any, rendered: dict[str, Any] | None = None) -> str:
    """One line (at most 200 characters) for the conversation list; ``[type]`` when there are no words.
    ``rendered``: a template as the customer read it (Message.rendered): its body is the line."""
    if rendered and rendered.get("body"):
        return " ".join(str(rendered["body"]).split())[:MAX_PREVIEW]
    body = content if isinstance(content, dict) else {}
    return _words(message_type, body)[:MAX_PREVIEW]


def _words(message_type: str, body: dict[str, Any]) -> str:
    if message_type in ("text", "system"):
        return str(body.get("body") or ("" if message_type == "text" else "[system]"))
    if message_type in MEDIA_TYPES:
        return str(body.get("caption") or body.get("filename") or f"[{message_type}]")
    if message_type == "interactive":
        # A customer's reply (button, list, flow) or the interactive message we sent (its body text).
        reply = body.get("button_reply") or body.get("list_reply") or body.get("nfm_reply") or {}
        sent = body.get("body") if isinstance(body.get("body"), dict) else {}
        return str(reply.get("title") or reply.get("body") or sent.get("text") or "[interactive]")
    if message_type == "button":
        return str(body.get("text") or "[button]")
    if message_type == "location":
        return str(body.get("name") or body.get("address") or "[location]")
    if message_type == "template":
        return f"[template {body['name']}]" if body.get("name") else "[template]"
    if message_type == "reaction":
        return str(body.get("emoji") or "")  # an empty emoji (a removed reaction) previews as nothing
    return f"[{message_type}]"
