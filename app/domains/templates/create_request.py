"""The body of ``POST /api/v1/templates``, in either of its two shapes, as one ``TemplateDraft``.

Two shapes are read, and both become the same draft, so ``TemplateDraft.definition()`` is the one
set of WhatsApp's rules (drafts.py) whichever shape came in:

- ours (what the admin form fills too): ``{account_id, name, language, category, parameter_format?,
  header?: {format, text, example, handle}, body, body_examples, footer, buttons: [...]}``;
- Meta's own create body (``POST /{waba_id}/message_templates``): ``{account_id, name, language, category,
  parameter_format?, components: [{"type": "HEADER" | "BODY" | "FOOTER" | "BUTTONS", ...}]}``, with
  component, format and button types in upper or lower case.

Both take ``template_name`` for ``name`` and ``language_code`` for ``language`` (the original
integration spec); one of each pair, or both with the same value.

Every error is a 422 ``TEMPLATE_INVALID`` whose ``details`` name the field as the client wrote it:
the draft's keys (``body.examples``, ``buttons[1].text``) are moved to where that value was in a
Meta-shaped request (``components[1].example.body_text``, ``components[3].buttons[1].text``) by
:class:`RequestPaths`. A malformed body (components not a list, a component that is not an object,
an unknown type, an example of the wrong type ...) is named the same way, never a 500.

This module reads the request as a whole (aliases, which shape, our shape, the 422); Meta's
``components`` are read by :class:`~app.domains.templates.meta_components.MetaReader`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticError

from app.domains.templates.drafts import ButtonDraft, TemplateDraft
from app.domains.templates.meta_components import MetaReader
from app.errors import AppError, ValidationFailed

ERROR_CODE = "TEMPLATE_INVALID"
ALIASES = {"template_name": "name", "language_code": "language"}
"""Alternative field names (the original integration spec's) -> the field they stand for."""
_OURS_ONLY = frozenset({"header", "body", "body_examples", "footer", "buttons"})
_BUTTON_KEY = re.compile(r"^buttons\[(\d+)\]")


# -- our shape --------------------------------------------------------------------------------------


class HeaderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: str = Field(description="TEXT, IMAGE, VIDEO, DOCUMENT or LOCATION")
    text: str = ""
    example: str = Field("", description="Example value of the text header's placeholder")
    handle: str = Field("", description="A media header's sample: Meta's upload handle")


class ButtonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(description="QUICK_REPLY, URL, PHONE_NUMBER or COPY_CODE (marketing templates)")
    text: str = Field("", description="The label, at most 25 characters (none for COPY_CODE: WhatsApp writes it)")
    url: str = ""
    phone_number: str = ""
    example: str = Field("", description="URL: sample value of its trailing {{1}}; COPY_CODE: a sample offer code")


class TemplateIn(BaseModel):
    """A template to submit for review; checked against WhatsApp's rules first (422 with field errors)."""

    model_config = ConfigDict(extra="forbid")
    account_id: str = Field("", description="A number of the WABA the template is created in")
    name: str = ""
    language: str = ""
    category: str = ""
    parameter_format: str | None = None
    header: HeaderIn | None = None
    body: str = ""
    body_examples: list[str] | dict[str, str] = Field(
        default_factory=list, description="One example per {{n}} in order, or {name: example} for named ones")
    footer: str = ""
    buttons: list[ButtonIn] = Field(default_factory=list)

    def draft(self) -> TemplateDraft:
        header = self.header
        return TemplateDraft(
            account_id=self.account_id, name=self.name.strip(), language=self.language.strip(),
            category=self.category.strip(), body=self.body, body_examples=self.body_examples,
            parameter_format=self.parameter_format, header_format=header.format if header else None,
            header_text=header.text if header else "", header_example=header.example if header else "",
            header_handle=header.handle if header else "", footer=self.footer,
            buttons=[ButtonDraft(**b.model_dump()) for b in self.buttons])


# -- where each draft field was in the request ------------------------------------------------------


class RequestPaths:
    """Maps the draft's error keys to the request's own paths (see the module doc)."""

    def __init__(self) -> None:
        self.exact: dict[str, str] = {}
        self.buttons: str | None = None
        self.button_rows: list[int] = []
        """For the draft's i-th button: its index in the request's buttons list."""

    def at(self, key: str) -> str:
        if key in self.exact:
            return self.exact[key]
        if self.buttons is not None:
            if key == "buttons":
                return self.buttons
            match = _BUTTON_KEY.match(key)
            if match:
                index = int(match.group(1))
                row = self.button_rows[index] if index < len(self.button_rows) else index
                return f"{self.buttons}[{row}]{key[match.end():]}"
        return key

    def moved(self, details: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in details.items():
            out.setdefault(self.at(key), value)
        return out

    def point(self, error: AppError) -> AppError:
        """``error`` with its details keyed by the request's paths."""
        error.details = self.moved(error.details)
        return error


def _invalid(details: dict[str, str]) -> ValidationFailed:
    return ValidationFailed("The template is malformed or breaks WhatsApp's rules: details names each field.",
                            error_code=ERROR_CODE, details=details)


def template_draft(data: Any) -> tuple[TemplateDraft, RequestPaths]:
    """The draft a create body describes, and where its fields were; ValidationFailed on a malformed body."""
    if not isinstance(data, Mapping):
        raise ValidationFailed("The body must be a JSON object: a template in our shape or in Meta's.",
                               error_code=ERROR_CODE)
    data = dict(data)
    paths = RequestPaths()
    conflicts: dict[str, str] = {}
    for alias, name in ALIASES.items():
        if alias not in data:
            continue
        value = data.pop(alias)
        if name in data and _same(data[name]) != _same(value):
            conflicts[name] = f"{name} and {alias} differ: send one of them (or the same value in both)."
            conflicts[alias] = conflicts[name]
            continue
        if name not in data:
            paths.exact[name] = alias
        data[name] = value
    if conflicts:
        raise ValidationFailed("Conflicting fields: " + " ".join(sorted(set(conflicts.values()))),
                               error_code=ERROR_CODE, details=conflicts)
    if "components" not in data:
        return _from_ours(data, paths), paths
    mixed = sorted(set(data) & _OURS_ONLY)
    if mixed:
        raise _invalid({key: "Our shape's field; with components (Meta's shape) put it in a component instead."
                        for key in mixed})
    return _from_meta(data, paths), paths


def _same(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _from_ours(data: dict[str, Any], paths: RequestPaths) -> TemplateDraft:
    try:
        return TemplateIn.model_validate(data).draft()
    except PydanticError as error:
        details: dict[str, str] = {}
        for problem in error.errors():
            key, message = _pydantic_key(problem["loc"]), str(problem["msg"])
            if key == "body_examples":
                message = "A list of examples (one per {{n}}, in order), or {name: example} for named placeholders."
            details.setdefault(paths.at(key), message)
        raise _invalid(details) from None


def _pydantic_key(loc: tuple[Any, ...]) -> str:
    if loc and loc[0] == "body_examples":
        return "body_examples"
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        elif isinstance(part, str):
            key += ("." if key else "") + part
    return key or "request"


def _from_meta(data: dict[str, Any], paths: RequestPaths) -> TemplateDraft:
    reader = MetaReader(data, paths)
    draft = reader.read()
    if reader.errors:
        errors = dict(reader.errors)
        try:
            draft.definition()
        except ValidationFailed as failed:  # the rules' findings too, at once
            for key, message in failed.details.items():
                if key not in reader.malformed:
                    errors.setdefault(paths.at(key), message)
        raise _invalid(errors)
    return draft
