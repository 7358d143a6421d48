"""Templates per WABA: create, list with Meta's paging, delete, status changes, send lookup.

Status changes post the ``message_template_status_update`` webhook to the WABA's first
registered number (its URL and app secret), like Meta's per-app subscription.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from app.sandbox.errors import GraphError, invalid_param
from app.sandbox.templates import STATUSES, Template, build_template, check_send_parameters

if TYPE_CHECKING:
    from app.sandbox.state import SandboxState
    from app.sandbox.validation import ParsedSend


# Meta's ``rejection_info`` wording for common rejection reasons (message_template_status_update).
_REJECTIONS = {
    "INVALID_FORMAT": ("Your template has parameters placed next to each other (like {{1}}{{2}}) without text or "
                       "punctuation between them.",
                       "Separate parameters with descriptive text and ensure each parameter is clearly "
                       "contextualized."),
    "INCORRECT_CATEGORY": ("The content of your template does not match the category you selected.",
                           "Choose the category that matches the template's content, or edit the content."),
    "PROMOTIONAL": ("Your template contains promotional content.",
                    "Remove the promotional content or submit the template in the MARKETING category."),
    "TAG_CONTENT_MISMATCH": ("The template's content does not match its category.",
                             "Make the content match the selected category."),
    "ABUSIVE_CONTENT": ("Your template contains content that violates WhatsApp's policies.",
                        "Review the WhatsApp Business Messaging Policy and remove the violating content."),
    "SCAM": ("Your template appears to be misleading or a scam.",
             "Review the WhatsApp Business Messaging Policy before submitting again."),
}


def rejection_info_for(reason: str | None) -> dict[str, str]:
    """``{reason, recommendation}`` for a rejection ``reason`` code (a generic pair when unknown)."""
    text, advice = _REJECTIONS.get((reason or "").upper(), (
        "Your template does not comply with WhatsApp's template guidelines.",
        "Review the template guidelines, edit the template and submit it again."))
    return {"reason": text, "recommendation": advice}


class TemplateStore:
    """All templates, indexed by id, by WABA (creation order) and by (WABA, name, language)."""

    def __init__(self, state: SandboxState) -> None:
        self._state = state
        self._by_id: dict[str, Template] = {}
        self._by_waba: dict[str, dict[str, Template]] = {}
        self._by_key: dict[tuple[str, str, str], Template] = {}

    def has_waba(self, waba_id: str) -> bool:
        return waba_id in self._by_waba

    def get(self, template_id: str) -> Template | None:
        return self._by_id.get(template_id)

    def create(self, waba_id: str, body: Any, *, status: str = "PENDING", require_examples: bool = True) -> Template:
        """Validate and store a template; 100 (subcode 2388024) when name+language exists."""
        status = str(status).upper()
        if status not in STATUSES:
            raise invalid_param(f"status must be one of {', '.join(sorted(STATUSES))}.")
        template = build_template(body, template_id=self._state.new_id(), waba_id=waba_id,
                                  require_examples=require_examples, status=status)
        key = (waba_id, template.name, template.language)
        if key in self._by_key:
            raise GraphError(100, f"Content in this language already exists: {template.name} ({template.language}).",
                             message="(#100) Invalid parameter", subcode=2388024)
        self._by_id[template.id] = template
        self._by_waba.setdefault(waba_id, {})[template.id] = template
        self._by_key[key] = template
        review_ms = self._state.template_review_ms
        if status == "PENDING" and review_ms is not None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is not None:  # demo mode: Meta's review, compressed to review_ms
                loop.call_later(review_ms / 1000, self._auto_approve, template.id)
        return template

    def _auto_approve(self, template_id: str) -> None:
        template = self._by_id.get(template_id)
        if template is not None and template.status == "PENDING":
            self.set_status(template_id, "APPROVED")

    def list(self, waba_id: str, *, name: str | None = None, status: str | None = None,
             language: str | None = None, category: str | None = None) -> list[Template]:
        items = list(self._by_waba.get(waba_id, {}).values())
        if name:  # Meta's name filter matches substrings
            items = [t for t in items if name.lower() in t.name.lower()]
        if status:
            wanted = {s.strip().upper() for s in status.split(",")}
            items = [t for t in items if t.status in wanted]
        if language:
            items = [t for t in items if t.language == language]
        if category:
            items = [t for t in items if t.category == category.upper()]
        return items

    def delete(self, waba_id: str, name: str, hsm_id: str | None = None) -> None:
        """Delete every language of ``name`` (or only ``hsm_id``); 100 when nothing matches."""
        doomed = [t for t in self._by_waba.get(waba_id, {}).values()
                  if t.name == name and (hsm_id is None or t.id == hsm_id)]
        if not doomed:
            raise GraphError(100, f"Message template {name!r} was not found.", message="(#100) Invalid parameter",
                             subcode=2593002)
        for template in doomed:
            del self._by_id[template.id]
            del self._by_waba[waba_id][template.id]
            del self._by_key[(waba_id, template.name, template.language)]

    def set_status(self, template_id: str, status: str, reason: str | None = None, *,
                   rejection_info: dict[str, Any] | None = None) -> Template:
        template = self._by_id.get(template_id)
        if template is None:
            raise invalid_param(f"Unknown template id {template_id!r}.")
        status = str(status).upper()
        if status not in STATUSES:
            raise invalid_param(f"status must be one of {', '.join(sorted(STATUSES))}.")
        template.status = status
        template.reason = reason
        numbers = self._state.numbers_of(template.waba_id)
        if numbers:
            value = {
                "event": status,
                "message_template_id": int(template.id),
                "message_template_name": template.name,
                "message_template_language": template.language,
                "reason": reason or "NONE",
                "message_template_category": template.category,
            }
            if status == "REJECTED":
                value["rejection_info"] = rejection_info or rejection_info_for(reason)
            self._state.webhooks.emit(numbers[0].phone_number_id, ("template", (template.waba_id, value, time.time())))
        return template

    def for_send(self, waba_id: str, parsed: ParsedSend) -> Template:
        """The approved template a send names; 132001/132015/132016, then 132000 on params."""
        name, language = parsed.template_name or "", parsed.template_language or ""
        template = self._by_key.get((waba_id, name, language))
        if template is None or template.status not in ("APPROVED", "PAUSED", "DISABLED"):
            raise GraphError(132001, f"template name ({name}) does not exist in {language}")
        if template.status == "PAUSED":
            raise GraphError(132015, f"Template {name} is paused due to low quality.")
        if template.status == "DISABLED":
            raise GraphError(132016, f"Template {name} has been disabled.")
        check_send_parameters(template, parsed.template_components or [])
        return template

    def clear(self) -> None:
        self._by_id.clear()
        self._by_waba.clear()
        self._by_key.clear()
