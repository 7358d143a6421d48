"""Ready-made workflows an admin copies and adapts (each is created turned off, to be read first)."""

from __future__ import annotations

from typing import Any

_ESCALATE = ["urgent", "emergency", "complaint", "refund", "cancel", "manager", "asap"]

READY_MADE: dict[str, dict[str, Any]] = {
    "keyword_replies": {
        "name": "Keyword replies with escalation",
        "description": "Answers common questions by keyword; words like “urgent” or “refund” mark the "
                       "conversation high priority, give it to an online agent, tell them and tell the customer.",
        "trigger": {"type": "message_received", "match": "any"},
        "conditions": {"match": "all", "conditions": []},
        "steps": [{"id": "route", "type": "condition", "branches": [
            {"label": "escalate", "when": {"match": "any", "conditions": [
                {"field": "message.text", "op": "has", "value": _ESCALATE}]},
             "steps": [
                 {"id": "priority", "type": "set_priority", "params": {"priority": "high"}},
                 {"id": "label", "type": "labels", "params": {"add": ["escalated"], "remove": []}},
                 {"id": "give", "type": "assign", "params": {"to": "least_open"}},
                 {"id": "tell", "type": "notify", "params": {"text": "Escalated by keyword: “{{message.text}}”"}},
                 {"id": "ack", "type": "send_text", "params": {
                     "text": "Thanks {{contact.name}}, we've marked this as urgent and a person will answer shortly."}},
             ]},
            {"label": "opening hours", "when": {"match": "any", "conditions": [
                {"field": "message.text", "op": "has", "value": ["hours", "open", "opening", "closed"]}]},
             "steps": [{"id": "hours", "type": "send_text", "params": {
                 "text": "We're open Monday to Friday, 9:00 to 17:00. Write any time: we answer in opening hours."}}]},
            {"label": "prices", "when": {"match": "any", "conditions": [
                {"field": "message.text", "op": "has", "value": ["price", "prices", "pricing", "cost"]}]},
             "steps": [{"id": "prices", "type": "send_text", "params": {
                 "text": "Our prices are at https://example.com/pricing. Reply AGENT to talk to a person."}}]},
            {"label": "a person", "when": {"match": "any", "conditions": [
                {"field": "message.text", "op": "has", "value": ["agent", "human", "person"]}]},
             "steps": [{"id": "person", "type": "assign", "params": {"to": "round_robin"}},
                       {"id": "person-ack", "type": "send_text", "params": {
                           "text": "Connecting you with a person now."}}]},
        ]}],
    },
    "appointment_reminders": {
        "name": "Appointment reminders",
        "description": "Reminds a contact 24 hours, 2 hours and 30 minutes before their appointment_at "
                       "(a date-time attribute) with an approved template, so it reaches them outside the "
                       "24-hour window. A moved appointment moves the reminders still to come.",
        "trigger": {"type": "date_reached", "attribute": "appointment_at", "offset_minutes": -1440},
        "conditions": {"match": "all", "conditions": [{"field": "opted_out", "op": "is", "value": False}]},
        "steps": [
            {"id": "day", "type": "send_template", "params": {
                "name": "appointment_reminder", "language": "en",
                "params": ["{{contact.name}}", "{{attributes.appointment_at}}"]}},
            {"id": "wait-2h", "type": "wait", "params": {"attribute": "appointment_at", "offset_minutes": -120}},
            {"id": "two-hours", "type": "send_template", "params": {
                "name": "appointment_reminder", "language": "en",
                "params": ["{{contact.name}}", "{{attributes.appointment_at}}"]}},
            {"id": "wait-30m", "type": "wait", "params": {"attribute": "appointment_at", "offset_minutes": -30}},
            {"id": "half-hour", "type": "send_template", "params": {
                "name": "appointment_reminder", "language": "en",
                "params": ["{{contact.name}}", "{{attributes.appointment_at}}"]}},
        ],
    },
    "follow_up": {
        "name": "Follow-up sequence",
        "description": "Tag a contact “follow-up”: a template message at once, another a day later and a third "
                       "three days after that; it stops as soon as the customer replies, and a week after the "
                       "last one without an answer it removes the tag.",
        "trigger": {"type": "tag_added", "tag": "follow-up"},
        "conditions": {"match": "all", "conditions": []},
        "steps": [
            {"id": "first", "type": "send_template", "params": {"name": "follow_up", "language": "en",
                                                                "params": ["{{contact.name}}"]}},
            {"id": "wait-1d", "type": "wait", "params": {"minutes": 1440, "end_on_reply": True}},
            {"id": "second", "type": "send_template", "params": {"name": "follow_up", "language": "en",
                                                                 "params": ["{{contact.name}}"]}},
            {"id": "wait-3d", "type": "wait", "params": {"minutes": 4320, "end_on_reply": True}},
            {"id": "third", "type": "send_template", "params": {"name": "follow_up", "language": "en",
                                                                "params": ["{{contact.name}}"]}},
            {"id": "wait-7d", "type": "wait", "params": {"minutes": 10080, "end_on_reply": True}},
            {"id": "untag", "type": "tags", "params": {"add": [], "remove": ["follow-up"]}},
        ],
    },
}
