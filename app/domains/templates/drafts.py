"""A template an admin is writing, checked against WHATSAPP.md's rules before Meta sees it.

``TemplateDraft.definition()`` returns Meta's create body or raises ValidationFailed whose
details map each field (``name``, ``body.text``, ``body.examples``, ``buttons[1].url`` ...) to a
sentence, so the form shows the error next to the field and the API names it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.domains.templates.models import CATEGORIES
from app.errors import ValidationFailed

_NAME = re.compile(r"^[a-z0-9_]{1,512}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$")
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_NAMED = re.compile(r"^[a-z][a-z0-9_]*$")
_PHONE = re.compile(r"^\+[1-9]\d{6,14}$")
HEADER_FORMATS = ("TEXT", "IMAGE", "VIDEO", "DOCUMENT", "LOCATION")
MEDIA_HEADERS = ("IMAGE", "VIDEO", "DOCUMENT")
BUTTON_TYPES = ("QUICK_REPLY", "URL", "PHONE_NUMBER", "COPY_CODE")
_BUTTON_LIMITS = {"QUICK_REPLY": 10, "URL": 2, "PHONE_NUMBER": 1, "COPY_CODE": 1}
_LABELS = {"QUICK_REPLY": "quick-reply", "URL": "link", "PHONE_NUMBER": "phone", "COPY_CODE": "copy-code"}
OFFER_CODE_MAX = 15
CODE_EXPIRATION_MINUTES = (1, 90)


@dataclass
class ButtonDraft:
    """A quick reply, a link (optionally ending in ``{{1}}``), a phone number to call or (marketing
    templates) a copy-code button whose ``example`` is a sample offer code; WhatsApp labels that one."""

    type: str
    text: str = ""
    url: str = ""
    phone_number: str = ""
    example: str = ""
    """For a link ending in {{1}}: a sample value of that suffix; for a copy-code button: a sample code."""


@dataclass
class TemplateDraft:
    """Everything the create form and ``POST /api/v1/templates`` take."""

    account_id: str = ""
    name: str = ""
    language: str = ""
    category: str = ""
    body: str = ""
    body_examples: list[str] | dict[str, str] = field(default_factory=list)
    parameter_format: str | None = None
    header_format: str | None = None
    header_text: str = ""
    header_example: str | dict[str, str] = ""
    """The example of the text header's placeholder; ``{name: example}`` for a named one."""
    header_handle: str = ""
    """A media header's sample (Meta's upload handle); the form fills it from an uploaded file."""
    footer: str = ""
    buttons: list[ButtonDraft] = field(default_factory=list)
    add_security_recommendation: bool | None = None
    """Authentication templates only: WhatsApp's "do not share this code" line (on unless False)."""
    code_expiration_minutes: int | None = None
    """Authentication templates only: the "expires in N minutes" footer (1-90)."""

    def definition(self, *, media_sample_pending: bool = False) -> dict[str, Any]:
        """Meta's create body; ValidationFailed with every field's problem at once."""
        errors: dict[str, str] = {}
        if not _NAME.match(self.name):
            errors["name"] = ("Required: lowercase letters, digits and underscores only (like order_update)."
                              if self.name else "Required.")
        if not _LANGUAGE.match(self.language):
            errors["language"] = "A language code such as en, en_US or pt_BR."
        category = self.category.upper()
        if category not in CATEGORIES:
            errors["category"] = "Pick Marketing, Utility or Authentication."
        if category == "AUTHENTICATION":
            components = self._authentication(errors)
            parameter_format = "POSITIONAL"
        else:
            if self.add_security_recommendation is not None:
                errors["body.add_security_recommendation"] = "Only authentication templates take this."
            if self.code_expiration_minutes is not None:
                errors["footer.code_expiration_minutes"] = "Only authentication templates take this."
            parameter_format = self._parameter_format(errors)
            components = [c for c in (self._header(parameter_format, errors, media_sample_pending),
                                      self._body(parameter_format, errors),
                                      self._footer(errors),
                                      self._buttons(errors)) if c]
        if errors:
            raise ValidationFailed("The template breaks WhatsApp's rules; see the highlighted fields.",
                                   error_code="TEMPLATE_INVALID", details=errors)
        out: dict[str, Any] = {"name": self.name, "language": self.language, "category": category,
                               "components": components}
        if parameter_format == "NAMED":
            out["parameter_format"] = "NAMED"
        return out

    # -- parts ------------------------------------------------------------------------------------

    def _parameter_format(self, errors: dict[str, str]) -> str:
        names = _placeholders(self.body) + _placeholders(self.header_text if self.header_format == "TEXT" else "")
        named = [n for n in names if not n.isdigit()]
        declared = (self.parameter_format or "").upper()
        if declared and declared not in ("POSITIONAL", "NAMED"):
            errors["parameter_format"] = "POSITIONAL ({{1}}) or NAMED ({{first_name}})."
            return "POSITIONAL"
        if named and len(named) < len(names):
            errors["body.text"] = "Use either numbered placeholders ({{1}}) or named ones ({{first_name}}), not both."
        inferred = "NAMED" if named else "POSITIONAL"
        if declared and names and declared != inferred:
            errors["parameter_format"] = f"The placeholders are {inferred.lower()}, not {declared.lower()}."
        return declared or inferred

    def _header(self, fmt: str, errors: dict[str, str], media_sample_pending: bool) -> dict[str, Any] | None:
        kind = (self.header_format or "").upper()
        if not kind or kind == "NONE":
            if self.header_text or self.header_example:
                errors["header.format"] = "Choose a header type for this header text."
            return None
        if kind not in HEADER_FORMATS:
            errors["header.format"] = "Text, image, video, document or location."
            return None
        if kind in MEDIA_HEADERS:
            if not self.header_handle and not media_sample_pending:
                errors["header.sample"] = f"Meta reviews {kind.lower()} headers with a sample: add one."
            return {"type": "HEADER", "format": kind,
                    "example": {"header_handle": [self.header_handle or "pending-upload"]}}
        if kind == "LOCATION":
            return {"type": "HEADER", "format": "LOCATION"}
        text = self.header_text
        if not text.strip():
            errors["header.text"] = "Required for a text header."
            return None
        if len(text) > 60:
            errors["header.text"] = f"At most 60 characters (this has {len(text)})."
        names = _placeholders(text)
        problem = _placeholder_problem(text, names, fmt, limit=1)
        if problem:
            errors["header.text"] = problem
        component: dict[str, Any] = {"type": "HEADER", "format": "TEXT", "text": text}
        example = self._header_example_value(names, fmt, errors)
        if example is None:  # already reported
            return component
        if names and not example:
            errors["header.example"] = f"Give an example value for {_shown(names)}."
        elif example and not names:
            errors["header.example"] = "The header has no placeholder, so it takes no example."
        elif names:
            component["example"] = ({"header_text_named_params": [{"param_name": names[0], "example": example}]}
                                     if fmt == "NAMED" else {"header_text": [example]})
        return component

    def _header_example_value(self, names: list[str], fmt: str, errors: dict[str, str]) -> str | None:
        """The header example as one value (None once an error is recorded); a named one must carry
        the placeholder's name."""
        given = self.header_example
        if not isinstance(given, Mapping):
            return str(given).strip()
        values = {str(k).strip(): str(v).strip() for k, v in given.items()}
        if not values:
            return ""
        if not names:
            errors["header.example"] = "The header has no placeholder, so it takes no example."
        elif fmt != "NAMED":
            errors["header.example"] = "A numbered placeholder takes a plain example value, not a named one."
        elif list(values) != names:
            errors["header.example"] = f"Give one example, for {_shown(names)}."
        else:
            return values[names[0]]
        return None

    def _body(self, fmt: str, errors: dict[str, str]) -> dict[str, Any] | None:
        text = self.body
        if not text.strip():
            errors["body.text"] = "Required."
            return None
        if len(text) > 1024:
            errors["body.text"] = f"At most 1024 characters (this has {len(text)})."
        names = _placeholders(text)
        problem = _placeholder_problem(text, names, fmt) or _placement_problem(text, names)
        if problem:
            errors.setdefault("body.text", problem)
        component: dict[str, Any] = {"type": "BODY", "text": text}
        examples = self.body_examples
        if isinstance(examples, Mapping):
            given = {str(k).strip(): str(v).strip() for k, v in examples.items()}
            if fmt != "NAMED" and given:
                errors["body.examples"] = "Numbered placeholders take a list of examples, in order."
            elif set(given) != set(names):
                errors["body.examples"] = _named_mismatch(names, list(given))
            elif any(not v for v in given.values()):
                errors["body.examples"] = "Every example needs a value."
            elif names:
                component["example"] = {"body_text_named_params": [
                    {"param_name": n, "example": given[n]} for n in names]}
        else:
            given_list = [str(v).strip() for v in examples]
            if fmt == "NAMED" and given_list:
                errors["body.examples"] = "Named placeholders take examples as name: value."
            elif len(given_list) != len(names):
                errors["body.examples"] = _mismatch(names, given_list)
            elif any(not v for v in given_list):
                errors["body.examples"] = "Every example needs a value."
            elif names:
                component["example"] = {"body_text": [given_list]}
        return component

    def _footer(self, errors: dict[str, str]) -> dict[str, Any] | None:
        text = self.footer
        if not text.strip():
            return None
        if len(text) > 60:
            errors["footer"] = f"At most 60 characters (this has {len(text)})."
        if "{{" in text or "}}" in text:
            errors["footer"] = "A footer cannot contain placeholders."
        return {"type": "FOOTER", "text": text}

    def _buttons(self, errors: dict[str, str]) -> dict[str, Any] | None:
        if not self.buttons:
            return None
        if len(self.buttons) > 10:
            errors["buttons"] = "At most 10 buttons."
            return None
        counts: dict[str, int] = {}
        out: list[dict[str, Any]] = []
        for index, button in enumerate(self.buttons):
            where = f"buttons[{index}]"
            kind = button.type.upper()
            if kind not in BUTTON_TYPES:
                errors[f"{where}.type"] = "Quick reply, link, phone number or copy code."
                continue
            counts[kind] = counts.get(kind, 0) + 1
            if counts[kind] > _BUTTON_LIMITS[kind]:
                errors[f"{where}.type"] = f"At most {_BUTTON_LIMITS[kind]} {_LABELS[kind]} button(s)."
            if kind == "COPY_CODE":
                out.append(self._copy_code_button(button, where, errors))
                continue
            text = button.text.strip()
            if not text:
                errors[f"{where}.text"] = "Every button needs a label."
            elif len(text) > 25:
                errors[f"{where}.text"] = f"At most 25 characters (this has {len(text)})."
            item: dict[str, Any] = {"type": kind, "text": text}
            if kind == "URL":
                self._url_button(button, item, where, errors)
            elif kind == "PHONE_NUMBER":
                phone = re.sub(r"[\s()-]", "", button.phone_number)
                if not _PHONE.match(phone):
                    errors[f"{where}.phone_number"] = "A phone number with + and country code, like +15550100."
                item["phone_number"] = phone
            out.append(item)
        kinds = ["QR" if b.type.upper() == "QUICK_REPLY" else "CTA" for b in self.buttons]
        if len([k for i, k in enumerate(kinds) if i == 0 or k != kinds[i - 1]]) > 2:
            errors.setdefault("buttons", "Keep quick replies together, before or after the link and phone buttons.")
        return {"type": "BUTTONS", "buttons": out}

    def _copy_code_button(self, button: ButtonDraft, where: str, errors: dict[str, str]) -> dict[str, Any]:
        """WhatsApp writes the label ("Copy offer code"); the template gives a sample code."""
        if self.category.upper() != "MARKETING":
            errors.setdefault(f"{where}.type", "Copy-code buttons are for marketing templates only.")
        if button.text.strip():
            errors[f"{where}.text"] = "WhatsApp labels copy-code buttons itself: leave the label out."
        code = button.example.strip()
        if not code:
            errors[f"{where}.example"] = f"Give a sample offer code (up to {OFFER_CODE_MAX} characters)."
        elif len(code) > OFFER_CODE_MAX:
            errors[f"{where}.example"] = f"At most {OFFER_CODE_MAX} characters (this has {len(code)})."
        return {"type": "COPY_CODE", "example": code}

    @staticmethod
    def _url_button(button: ButtonDraft, item: dict[str, Any], where: str, errors: dict[str, str]) -> None:
        url = button.url.strip()
        item["url"] = url
        if not url.startswith(("https://", "http://")) or len(url) > 2000:
            errors[f"{where}.url"] = "An http:// or https:// address."
            return
        names = _placeholders(url)
        if names and (names != ["1"] or not re.search(r"\{\{\s*1\s*\}\}$", url)):
            errors[f"{where}.url"] = "A link may hold one placeholder, {{1}}, at its very end."
        elif names and not button.example.strip():
            errors[f"{where}.example"] = "Give an example value for the {{1}} at the end of the link."
        elif button.example.strip() and not names:
            errors[f"{where}.example"] = "The link has no {{1}}, so it takes no example."
        elif names:
            item["example"] = [_PLACEHOLDER.sub(button.example.strip(), url)]

    def _authentication(self, errors: dict[str, str]) -> list[dict[str, Any]]:
        """Meta writes authentication templates' text itself; we only choose the copy-code button."""
        if self.body.strip() or self.header_format or self.footer.strip():
            errors["category"] = ("Authentication templates use WhatsApp's fixed one-time-code text: "
                                  "leave header, body and footer empty.")
        label = self.buttons[0].text.strip() if self.buttons else "Copy code"
        if len(label) > 25:
            errors["buttons[0].text"] = "At most 25 characters."
        body: dict[str, Any] = {"type": "BODY"}
        if self.add_security_recommendation is not False:
            body["add_security_recommendation"] = True
        components = [body]
        minutes = self.code_expiration_minutes
        if minutes is not None:
            low, high = CODE_EXPIRATION_MINUTES
            if isinstance(minutes, bool) or not isinstance(minutes, int) or not low <= minutes <= high:
                errors["footer.code_expiration_minutes"] = f"A whole number of minutes, {low} to {high}."
            components.append({"type": "FOOTER", "code_expiration_minutes": minutes})
        components.append({"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE", "text": label}]})
        return components


def _placeholders(text: str) -> list[str]:
    return [m.strip() for m in _PLACEHOLDER.findall(text or "")]


def _shown(names: list[str]) -> str:
    return ", ".join("{{" + n + "}}" for n in names)


def _placeholder_problem(text: str, names: list[str], fmt: str, limit: int | None = None) -> str | None:
    """Wrong placeholder syntax, numbering or naming; None when they are fine."""
    if text.count("{{") != len(names) or text.count("}}") != len(names):
        return "Every {{ needs a matching }} around a number or a name, like {{1}} or {{first_name}}."
    if limit is not None and len(names) > limit:
        return f"At most {limit} placeholder here."
    if fmt == "NAMED":
        bad = [n for n in names if not _NAMED.match(n)]
        if bad:
            return f"Named placeholders are lowercase letters, digits and underscores: {_shown(bad)} is not."
        if len(set(names)) != len(names):
            return "Each named placeholder may appear once."
    elif names != [str(i) for i in range(1, len(names) + 1)]:
        return f"Number placeholders {{{{1}}}}, {{{{2}}}} ... in order, each once (found {_shown(names)})."
    return None


def _placement_problem(text: str, names: list[str]) -> str | None:
    stripped = text.strip()
    if names and (stripped.startswith("{{") or stripped.endswith("}}")):
        return "A placeholder may not start or end the body: add words before and after it."
    if re.search(r"\}\}\s*\{\{", text):
        return "Two placeholders may not touch: put words or punctuation between them."
    return None


def _mismatch(names: list[str], given: list[str]) -> str:
    if not names:
        return "The body has no placeholders, so it takes no examples."
    return (f"The body has {len(names)} placeholder(s) ({_shown(names)}) but {len(given)} example(s) were given: "
            "give one example per placeholder.")


def _named_mismatch(names: list[str], given: list[str]) -> str:
    if not names:
        return "The body has no placeholders, so it takes no examples."
    missing = [n for n in names if n not in given]
    unexpected = [g for g in given if g not in names]
    found = "; ".join(part for part in (f"missing {_shown(missing)}" if missing else "",
                                        f"not in the body: {_shown(unexpected)}" if unexpected else "") if part)
    return f"Give one example for each of {_shown(names)} ({found})."


def examples_from_text(raw: str, named: bool) -> list[str] | dict[str, str]:
    """The form's examples box: one value per line, or ``name: value`` lines for named placeholders."""
    lines = [line for line in raw.splitlines() if line.strip()]
    if not named:
        return [line.strip() for line in lines]
    out: dict[str, str] = {}
    for line in lines:
        key, _, value = line.partition(":")
        out[key.strip().strip("{}").strip()] = value.strip()
    return out
