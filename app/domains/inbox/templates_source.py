"""Approved templates for the composer's picker, and the send object built from the agent's fields.

Templates come from the templates area's documents (synced from Meta by the admin screens); a
workspace whose templates were never synced gets them straight from the Graph API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from app.domains.accounts.models import WhatsAppAccount
from app.errors import NotFound, ValidationFailed
from app.logging import get_logger
from app.runtime import Runtime
from app.whatsapp.templates import template_object, template_placeholders

log = get_logger(__name__)
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
MAX_PARAM = 1024


@dataclass
class PickerTemplate:
    """One approved template with the fields the agent must fill."""

    key: str
    name: str
    language: str
    category: str
    components: list[dict[str, Any]]
    parameter_format: str = "POSITIONAL"
    fields: list[dict[str, str]] = field(default_factory=list)
    supported: bool = True

    @property
    def body_text(self) -> str:
        return next((str(c.get("text") or "") for c in self.components if str(c.get("type")).upper() == "BODY"), "")

    @property
    def header_text(self) -> str:
        return next((str(c.get("text") or "") for c in self.components
                     if str(c.get("type")).upper() == "HEADER" and str(c.get("format", "TEXT")).upper() == "TEXT"), "")

    @property
    def footer_text(self) -> str:
        return next((str(c.get("text") or "") for c in self.components if str(c.get("type")).upper() == "FOOTER"), "")


def _picker(name: str, language: str, category: str, components: list, parameter_format: str | None) -> PickerTemplate:
    definition = {"components": components, "parameter_format": parameter_format}
    slots = template_placeholders(definition)
    fields = [{"part": "header", "name": n, "id": f"header-{n}"} for n in slots.header]
    fields += [{"part": "body", "name": n, "id": f"body-{n}"} for n in slots.body]
    for index, slot in slots.buttons.items():
        if slot.required_parameter_type == "text":
            fields.append({"part": f"button-{index}", "name": "1", "id": f"button-{index}"})
    supported = slots.header_format in (None, "TEXT") and all(
        s.required_parameter_type in (None, "text") for s in slots.buttons.values())
    return PickerTemplate(key=f"{name}:{language}", name=name, language=language, category=category,
                          components=components, parameter_format=slots.parameter_format, fields=fields,
                          supported=supported)


async def approved_templates(runtime: Runtime, account: WhatsAppAccount) -> list[PickerTemplate]:
    try:
        from app.domains.templates.models import MessageTemplate
    except ImportError:  # the templates area is not there: ask Meta
        MessageTemplate = None  # noqa: N806
    found: list[PickerTemplate] = []
    if MessageTemplate is not None:
        docs = await MessageTemplate.find({"workspace_id": account.workspace_id, "waba_id": account.waba_id,
                                           "status": "APPROVED"}).sort("name").to_list()
        found = [_picker(d.name, d.language, d.category, d.components, d.parameter_format) for d in docs]
    if not found:
        try:
            listed = await runtime.accounts.graph(account).list_templates(account.waba_id)
        except Exception as exc:  # Meta unreachable: the picker says so instead of failing the page
            log.info("template list failed", error=type(exc).__name__)
            listed = []
        found = [_picker(t.get("name", ""), t.get("language", ""), t.get("category", ""), t.get("components") or [],
                         t.get("parameter_format")) for t in listed if t.get("status") == "APPROVED"]
    return sorted(found, key=lambda t: (t.name, t.language))


async def find_template(runtime: Runtime, account: WhatsAppAccount, key: str) -> PickerTemplate:
    for template in await approved_templates(runtime, account):
        if template.key == key:
            return template
    raise NotFound("That template is not approved for this number.", error_code="TEMPLATE_NOT_APPROVED",
                   details={"template": key[:100]})


def build_template_content(template: PickerTemplate, values: dict[str, str]) -> dict[str, Any]:
    """Meta's template object from the agent's fields; every field is required and plain text."""
    missing = {}
    parts: dict[str, list[dict[str, Any]]] = {}
    for f in template.fields:
        value = " ".join(str(values.get(f["id"]) or "").split())
        if not value:
            missing[f["id"]] = "Required."
            continue
        if len(value) > MAX_PARAM:
            missing[f["id"]] = f"At most {MAX_PARAM} characters."
            continue
        parameter: dict[str, Any] = {"type": "text", "text": value}
        if template.parameter_format == "NAMED" and not f["part"].startswith("button"):
            parameter["parameter_name"] = f["name"]
        parts.setdefault(f["part"], []).append(parameter)
    if missing:
        raise ValidationFailed("Fill in every template field.", error_code="TEMPLATE_PARAMS", details=missing)
    components: list[dict[str, Any]] = []
    for part, parameters in parts.items():
        if part.startswith("button-"):
            components.append({"type": "button", "sub_type": "url", "index": part.split("-", 1)[1],
                               "parameters": parameters})
        else:
            components.append({"type": part, "parameters": parameters})
    return template_object(template.name, template.language, components)


def preview(text: str, values: dict[str, str], part: str) -> str:
    """The text with the agent's values in place (placeholders not yet filled stay visible)."""
    return _PLACEHOLDER.sub(lambda m: values.get(f"{part}-{m.group(1)}") or m.group(0), text)
