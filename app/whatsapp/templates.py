"""Template messages: the ``template`` object, its placeholders, and parameter checks.

A template definition (as ``GET /{waba_id}/message_templates`` returns it) has ``{{1}}`` positional
or ``{{snake_name}}`` named placeholders (``parameter_format: "NAMED"``). Sending it needs matching
parameters per component; checking them here turns Meta's late 132000 into an immediate, precise
PayloadError the agent can fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.whatsapp.validation import PayloadError, require_list, require_mapping, require_text

NAME_MAX = 512
POSITIONAL = "POSITIONAL"
NAMED = "NAMED"

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
# Parameter type -> the key holding its value (they are the same name in Meta's format).
PARAMETER_TYPES = frozenset(
    {"text", "currency", "date_time", "image", "video", "document", "location", "payload", "action", "coupon_code",
     "product", "limited_time_offer", "tap_target_configuration", "order_status"}
)
# What may fill a {{placeholder}} in header or body text.
_TEXT_LIKE_TYPES = frozenset({"text", "currency", "date_time"})
_MEDIA_HEADER_FORMATS = {"IMAGE": "image", "VIDEO": "video", "DOCUMENT": "document", "LOCATION": "location"}
# Button kinds whose parameter is mandatory when sending (a URL suffix, a coupon or an OTP code).
_BUTTONS_NEEDING_PARAMETER = {"URL": "text", "COPY_CODE": "coupon_code", "OTP": "text"}
# Button kinds that may carry an optional parameter (our payload, flow action data, catalog thumbnail).
_BUTTONS_WITH_OPTIONAL_PARAMETER = {"QUICK_REPLY", "FLOW", "CATALOG", "MPM", "VOICE_CALL"}


@dataclass(frozen=True)
class ButtonSlot:
    """One button of a template definition and what a send must supply for it."""

    index: int
    kind: str  # QUICK_REPLY, URL, PHONE_NUMBER, COPY_CODE, FLOW, OTP ...
    placeholders: tuple[str, ...] = ()

    @property
    def required_parameter_type(self) -> str | None:
        """The parameter type a send must give this button, or None when nothing is required."""
        if self.kind == "URL" and not self.placeholders:
            return None  # a static URL takes no parameter
        return _BUTTONS_NEEDING_PARAMETER.get(self.kind)


@dataclass(frozen=True)
class TemplatePlaceholders:
    """What a template needs at send time. Names are ``"1"``, ``"2"`` ... for positional templates."""

    parameter_format: str
    header_format: str | None = None  # TEXT, IMAGE, VIDEO, DOCUMENT, LOCATION; None without header
    header: tuple[str, ...] = ()
    body: tuple[str, ...] = ()
    buttons: dict[int, ButtonSlot] = field(default_factory=dict)


def placeholders_in(text: str | None) -> tuple[str, ...]:
    """Distinct placeholders of ``text``: positional ones in numeric order, named ones as they appear."""
    found = list(dict.fromkeys(_PLACEHOLDER.findall(text or "")))
    if found and all(name.isdigit() for name in found):
        found.sort(key=int)
    return tuple(found)


def template_placeholders(definition: Mapping[str, Any]) -> TemplatePlaceholders:
    """The placeholders of a template definition (its ``components``), per component."""
    header_format: str | None = None
    header: tuple[str, ...] = ()
    body: tuple[str, ...] = ()
    buttons: dict[int, ButtonSlot] = {}
    for component in definition.get("components") or ():
        kind = str(component.get("type", "")).upper()
        if kind == "HEADER":
            header_format = str(component.get("format", "TEXT")).upper()
            header = placeholders_in(component.get("text")) if header_format == "TEXT" else ()
        elif kind == "BODY":
            body = placeholders_in(component.get("text"))
        elif kind == "BUTTONS":
            for index, button in enumerate(component.get("buttons") or ()):
                button_kind = str(button.get("type", "")).upper()
                buttons[index] = ButtonSlot(index, button_kind, placeholders_in(button.get("url")))
    declared = str(definition.get("parameter_format") or "").upper()
    names = header + body
    inferred = NAMED if any(not name.isdigit() for name in names) else POSITIONAL
    return TemplatePlaceholders(declared or inferred, header_format, header, body, buttons)


def text_parameters(values: Sequence[str] | Mapping[str, str]) -> list[dict[str, Any]]:
    """Text parameters from a list (positional, in order) or a mapping (named: ``parameter_name``)."""
    if isinstance(values, Mapping):
        return [{"type": "text", "parameter_name": name, "text": value} for name, value in values.items()]
    return [{"type": "text", "text": value} for value in values]


def template_object(
    name: str, language: str, components: Sequence[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """Meta's ``template`` object; ``components`` left out when there are none."""
    template: dict[str, Any] = {"name": name, "language": {"code": language}}
    if components:
        template["components"] = [dict(component) for component in components]
    return template


def validate_template(template: object, field: str = "template") -> None:
    """Structural checks of a ``template`` object: name, language, components and parameter shapes."""
    obj = require_mapping(template, field)
    require_text(obj.get("name"), f"{field}.name", max_length=NAME_MAX)
    language = require_mapping(obj.get("language"), f"{field}.language")
    require_text(language.get("code"), f"{field}.language.code")
    if obj.get("components") is None:
        return
    for c_index, component in enumerate(require_list(obj["components"], f"{field}.components")):
        path = f"{field}.components[{c_index}]"
        component = require_mapping(component, path)
        kind = require_text(component.get("type"), f"{path}.type")
        if kind == "button":
            require_text(component.get("sub_type"), f"{path}.sub_type")
            if _button_index(component.get("index")) is None:
                raise PayloadError(f"{path}.index", "must be the button's position, 0-9")
        if component.get("parameters") is None:
            continue
        for p_index, parameter in enumerate(require_list(component["parameters"], f"{path}.parameters")):
            _check_parameter(parameter, f"{path}.parameters[{p_index}]")


def _check_parameter(parameter: object, path: str) -> None:
    parameter = require_mapping(parameter, path)
    kind = require_text(parameter.get("type"), f"{path}.type")
    if kind not in PARAMETER_TYPES:
        return  # a parameter type newer than this table: Meta decides
    if parameter.get(kind) is None:
        raise PayloadError(f"{path}.{kind}", f"a {kind} parameter needs its value under {kind!r}")
    if kind == "text":
        require_text(parameter["text"], f"{path}.text")
    elif kind in ("image", "video", "document"):
        media = require_mapping(parameter[kind], f"{path}.{kind}")
        if not media.get("id") and not media.get("link"):
            raise PayloadError(f"{path}.{kind}", "needs an id or a link")


def _button_index(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return value if isinstance(value, int) and 0 <= value <= 9 else None


def validate_template_parameters(
    template: Mapping[str, Any], definition: Mapping[str, Any], field: str = "template"
) -> None:
    """Check a ``template`` object's parameters against its definition: counts, names, types."""
    if definition.get("name") and template.get("name") != definition["name"]:
        raise PayloadError(f"{field}.name", f"does not match the template {definition['name']!r}")
    language = (template.get("language") or {}).get("code")
    if definition.get("language") and language != definition["language"]:
        raise PayloadError(f"{field}.language.code", f"the template exists in {definition['language']!r}")
    expected = template_placeholders(definition)
    sent: dict[tuple[str, int], tuple[int, Mapping[str, Any]]] = {}
    for c_index, component in enumerate(template.get("components") or ()):
        kind = str(component.get("type", "")).lower()
        position = (_button_index(component.get("index")) or 0) if kind == "button" else 0
        key = (kind, position)
        if key in sent:
            raise PayloadError(f"{field}.components[{c_index}]", f"repeats the {kind} component")
        sent[key] = (c_index, component)

    header_type = None
    if expected.header_format in _MEDIA_HEADER_FORMATS:
        header_type = _MEDIA_HEADER_FORMATS[expected.header_format]
    named = expected.parameter_format == NAMED
    _check_slots(sent.pop(("header", 0), None), "header", expected.header, header_type, named, field)
    _check_slots(sent.pop(("body", 0), None), "body", expected.body, None, named, field)
    for index, slot in expected.buttons.items():
        entry = sent.pop(("button", index), None)
        required = slot.required_parameter_type
        if required is not None:
            # Button variables are always positional ({{1}} in the URL), even in NAMED templates.
            _check_slots(entry, f"button {index}", slot.placeholders or ("1",), required, False, field)
        elif entry is not None and slot.kind not in _BUTTONS_WITH_OPTIONAL_PARAMETER:
            raise PayloadError(f"{field}.components[{entry[0]}]", f"button {index} ({slot.kind}) takes no parameters")
    for (kind, index), (c_index, component) in sent.items():
        if component.get("parameters") or kind == "button":
            what = f"button {index}" if kind == "button" else f"{kind}"
            raise PayloadError(f"{field}.components[{c_index}]", f"the template has no {what} parameters")


def _check_slots(
    entry: tuple[int, Mapping[str, Any]] | None,
    label: str,
    names: tuple[str, ...],
    single_type: str | None,
    named: bool,
    field: str,
) -> None:
    """One component's parameters.

    ``single_type`` asks for exactly one parameter of that type (media header, coupon, URL suffix);
    otherwise one text-like parameter per placeholder, matched by ``parameter_name`` when ``named``.
    """
    wanted = 1 if single_type in _MEDIA_HEADER_FORMATS.values() else len(names)
    if wanted == 0:
        if entry is not None and entry[1].get("parameters"):
            raise PayloadError(f"{field}.components[{entry[0]}].parameters", f"the {label} takes no parameters")
        return
    if entry is None:
        shown = ", ".join(f"{{{{{name}}}}}" for name in names) if wanted == len(names) else single_type
        raise PayloadError(f"{field}.components", f"the {label} needs {wanted} parameter(s): {shown}")
    c_index, component = entry
    path = f"{field}.components[{c_index}].parameters"
    parameters = list(component.get("parameters") or ())
    if len(parameters) != wanted:
        raise PayloadError(path, f"the {label} needs {wanted} parameter(s), got {len(parameters)}")
    if single_type is not None:
        if parameters[0].get("type") != single_type:
            raise PayloadError(f"{path}[0].type", f"the {label} needs a {single_type} parameter")
        return
    seen: set[str] = set()
    for p_index, parameter in enumerate(parameters):
        if parameter.get("type") not in _TEXT_LIKE_TYPES:
            raise PayloadError(f"{path}[{p_index}].type", f"must be one of {', '.join(sorted(_TEXT_LIKE_TYPES))}")
        if not named:
            continue
        name = parameter.get("parameter_name")
        if name not in names:
            raise PayloadError(f"{path}[{p_index}].parameter_name", f"must be one of {', '.join(names)}")
        if name in seen:
            raise PayloadError(f"{path}[{p_index}].parameter_name", f"{name!r} is given twice")
        seen.add(name)


def _parameter_text(parameter: Mapping[str, Any]) -> str:
    kind = parameter.get("type")
    if kind == "text":
        return str(parameter.get("text") or "")
    if kind in ("currency", "date_time"):
        value = parameter.get(kind)
        return str(value.get("fallback_value") or "") if isinstance(value, Mapping) else ""
    return ""


def render_template(template: Mapping[str, Any], definition: Mapping[str, Any]) -> dict[str, Any]:
    """What the customer reads: the definition's header, body, footer and buttons with ``template``'s
    parameters filled in (positional ``{{1}}`` by order, named ``{{name}}`` by ``parameter_name``).
    A media header shows as its kind in brackets. Placeholders without a value stay as written."""
    given: dict[str, dict[str, str]] = {}
    for component in template.get("components") or ():
        if not isinstance(component, Mapping):
            continue
        kind = str(component.get("type", "")).lower()
        values: dict[str, str] = {}
        for position, parameter in enumerate(component.get("parameters") or (), start=1):
            if isinstance(parameter, Mapping):
                values[str(parameter.get("parameter_name") or position)] = _parameter_text(parameter)
        given[kind] = values

    def fill(text: Any, kind: str) -> str:
        values = given.get(kind, {})
        return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), str(text or ""))

    rendered: dict[str, Any] = {"header": None, "body": "", "footer": None, "buttons": []}
    for component in definition.get("components") or ():
        kind = str(component.get("type", "")).upper()
        if kind == "HEADER":
            header_format = str(component.get("format", "TEXT")).upper()
            rendered["header"] = (fill(component.get("text"), "header") if header_format == "TEXT"
                                  else f"[{header_format.lower()}]")
        elif kind == "BODY":
            rendered["body"] = fill(component.get("text"), "body")
        elif kind == "FOOTER":
            rendered["footer"] = str(component.get("text") or "") or None
        elif kind == "BUTTONS":
            rendered["buttons"] = [str(b.get("text") or "") for b in component.get("buttons") or ()
                                   if isinstance(b, Mapping) and b.get("text")]
    return rendered
