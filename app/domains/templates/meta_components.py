"""Meta's own create body (``POST /{waba_id}/message_templates``) read into a ``TemplateDraft``.

``{account_id, name, language, category, parameter_format?, components: [{"type": "HEADER" | "BODY" |
"FOOTER" | "BUTTONS", ...}]}``, with component, format and button types in upper or lower case.
:class:`MetaReader` turns the components into the draft's fields, records every shape error (components
not a list, a component that is not an object, an unknown type, an example of the wrong type ...) at the
request's own path, and fills in :class:`~app.domains.templates.create_request.RequestPaths` so the
rules' errors on the draft can be moved there too. create_request.py decides which shape came in and
raises the 422.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from app.domains.templates.drafts import ButtonDraft, TemplateDraft

if TYPE_CHECKING:
    from app.domains.templates.create_request import RequestPaths

COMPONENT_TYPES = ("HEADER", "BODY", "FOOTER", "BUTTONS")
_META_FIELDS = frozenset({"account_id", "name", "language", "category", "parameter_format", "components"})
_COMPONENT_FIELDS = {
    "HEADER": frozenset({"type", "format", "text", "example"}),
    "BODY": frozenset({"type", "text", "example", "add_security_recommendation"}),
    "FOOTER": frozenset({"type", "text", "code_expiration_minutes"}),
    "BUTTONS": frozenset({"type", "buttons"}),
}
_BUTTON_FIELDS = frozenset({"type", "text", "url", "phone_number", "example", "otp_type"})
_NAMED_PLACEHOLDER = re.compile(r"\{\{\s*[A-Za-z_][A-Za-z0-9_]*\s*\}\}")
_LEAVE_OUT = "Not read by this API: leave it out."


class MetaReader:
    """Reads Meta's create body into draft fields, recording shape errors at the request's paths."""

    def __init__(self, data: dict[str, Any], paths: RequestPaths) -> None:
        self.data = data
        self.paths = paths
        self.errors: dict[str, str] = {}
        self.fields: dict[str, Any] = {}
        self.buttons: list[ButtonDraft] = []
        self.malformed: set[str] = set()
        """Draft keys whose value could not be read (already reported): the rules' word on them is noise."""

    # small typed reads ----------------------------------------------------------------------------

    def text(self, container: Mapping[str, Any], key: str, path: str) -> str:
        value = container.get(key)
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        self.errors[path] = "Must be a string."
        return ""

    def value(self, value: Any, path: str) -> str | None:
        """One example value: a string (a number is taken as its digits)."""
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        self.errors[path] = "Must be a string."
        return None

    def one_value(self, value: Any, path: str, like: str) -> str | None:
        """Meta's one-item example lists: ``["Summer Sale"]``."""
        if not isinstance(value, list) or len(value) != 1:
            self.errors[path] = f"A list holding one example value, like {like}."
            return None
        return self.value(value[0], f"{path}[0]")

    def named(self, value: Any, path: str) -> dict[str, str] | None:
        """``[{"param_name": "first_name", "example": "Ann"}, ...]`` -> ``{"first_name": "Ann"}``."""
        like = '[{"param_name": "first_name", "example": "Ann"}]'
        if not isinstance(value, list) or not value:
            self.errors[path] = f"A list of named examples, like {like}."
            return None
        out: dict[str, str] = {}
        for index, item in enumerate(value):
            where = f"{path}[{index}]"
            if not isinstance(item, dict):
                self.errors[where] = f"An object, like {like[1:-1]}."
                return None
            self.unknown(item, frozenset({"param_name", "example"}), where)
            name = item.get("param_name")
            if not isinstance(name, str) or not name.strip():
                self.errors[f"{where}.param_name"] = "The placeholder's name, like first_name for {{first_name}}."
                return None
            example = self.value(item.get("example"), f"{where}.example")
            if example is None:
                return None
            if name.strip() in out:
                self.errors[f"{where}.param_name"] = f"{name.strip()} is given twice."
                return None
            out[name.strip()] = example
        return out

    def unknown(self, container: Mapping[str, Any], known: frozenset[str], path: str) -> None:
        for key in container:
            if key not in known:
                self.errors[f"{path}.{key}" if path else str(key)] = _LEAVE_OUT

    def example_object(self, component: Mapping[str, Any], path: str, like: str,
                       draft_key: str) -> Mapping[str, Any] | None:
        example = component.get("example")
        if example is None:
            return None
        if not isinstance(example, dict):
            self.errors[f"{path}.example"] = f"An object, like {like}."
            self.malformed.add(draft_key)
            return None
        return example

    def named_placeholders(self, text: str) -> bool:
        declared = self.data.get("parameter_format")
        if isinstance(declared, str) and declared.strip():
            return declared.strip().upper() == "NAMED"
        return bool(_NAMED_PLACEHOLDER.search(text))

    # the body ---------------------------------------------------------------------------------------

    def read(self) -> TemplateDraft:
        data, errors = self.data, self.errors
        self.unknown(data, _META_FIELDS, "")
        top = {key: self.text(data, key, self.paths.at(key))
               for key in ("account_id", "name", "language", "category")}
        parameter_format = data.get("parameter_format")
        if parameter_format is not None and not isinstance(parameter_format, str):
            errors["parameter_format"] = "POSITIONAL or NAMED."
            parameter_format = None
        components = data.get("components")
        if not isinstance(components, list):
            errors["components"] = 'A list of components, like [{"type": "BODY", "text": "Hi {{1}}", ...}].'
            components = []
        seen: dict[str, int] = {}
        for index, component in enumerate(components):
            path = f"components[{index}]"
            if not isinstance(component, dict):
                errors[path] = "A component: an object with a type (HEADER, BODY, FOOTER or BUTTONS)."
                continue
            kind = component.get("type")
            if not isinstance(kind, str) or kind.strip().upper() not in COMPONENT_TYPES:
                errors[f"{path}.type"] = ("HEADER, BODY, FOOTER or BUTTONS (upper or lower case); other "
                                          "components (carousels, limited-time offers ...) are not supported here.")
                continue
            kind = kind.strip().upper()
            if kind in seen:
                errors[f"{path}.type"] = f"Only one {kind} component (components[{seen[kind]}] is one)."
                continue
            seen[kind] = index
            self.unknown(component, _COMPONENT_FIELDS[kind], path)
            getattr(self, f"_{kind.lower()}")(component, path)
        if "BODY" not in seen:
            self.paths.exact["body.text"] = "components"
            if top["category"].strip().upper() != "AUTHENTICATION" and "components" not in errors:
                errors["components"] = 'Add a BODY component ({"type": "BODY", "text": ...}): the body is required.'
        return TemplateDraft(
            account_id=top["account_id"], name=top["name"].strip(), language=top["language"].strip(),
            category=top["category"].strip(), parameter_format=parameter_format, buttons=self.buttons,
            **self.fields)

    def _header(self, component: Mapping[str, Any], path: str) -> None:
        exact = self.paths.exact
        exact.update({"header.format": f"{path}.format", "header.text": f"{path}.text",
                      "header.sample": f"{path}.example.header_handle"})
        kind = component.get("format")
        if not isinstance(kind, str) or not kind.strip():
            self.errors[f"{path}.format"] = "TEXT, IMAGE, VIDEO, DOCUMENT or LOCATION."
            kind = ""
        text = self.text(component, "text", f"{path}.text")
        # The format decides the draft's header; a header without a usable one is reported above.
        self.fields.update(header_format=kind.strip().upper() or None, header_text=text)
        key = "header_text_named_params" if self.named_placeholders(text) else "header_text"
        example = self.example_object(component, path, '{"header_text": ["Summer Sale"]}', "header.example")
        if example is not None:
            self.unknown(example, frozenset({"header_text", "header_text_named_params", "header_handle"}),
                         f"{path}.example")
            if "header_text" in example and "header_text_named_params" in example:
                self.errors[f"{path}.example"] = "Give header_text or header_text_named_params, not both."
                self.malformed.add("header.example")
            elif "header_text" in example:
                key = "header_text"
                value = self.one_value(example["header_text"], f"{path}.example.header_text", '["Summer Sale"]')
                self._set("header_example", value, "header.example")
            elif "header_text_named_params" in example:
                key = "header_text_named_params"
                self._set("header_example", self.named(example[key], f"{path}.example.{key}"), "header.example")
            if "header_handle" in example:
                handle = self.one_value(example["header_handle"], f"{path}.example.header_handle", '["4::aW..."]')
                self._set("header_handle", handle, "header.sample")
        exact["header.example"] = f"{path}.example.{key}"

    def _set(self, name: str, value: Any, draft_key: str) -> None:
        if value is None:
            self.malformed.add(draft_key)
        else:
            self.fields[name] = value

    def _body(self, component: Mapping[str, Any], path: str) -> None:
        exact = self.paths.exact
        exact.update({"body.text": f"{path}.text",
                      "body.add_security_recommendation": f"{path}.add_security_recommendation"})
        text = self.text(component, "text", f"{path}.text")
        self.fields["body"] = text
        recommendation = component.get("add_security_recommendation")
        if recommendation is not None:
            if isinstance(recommendation, bool):
                self.fields["add_security_recommendation"] = recommendation
            else:
                self.errors[f"{path}.add_security_recommendation"] = "true or false."
        key = "body_text_named_params" if self.named_placeholders(text) else "body_text"
        example = self.example_object(component, path, '{"body_text": [["Ann", "#1042"]]}', "body.examples")
        if example is not None:
            self.unknown(example, frozenset({"body_text", "body_text_named_params"}), f"{path}.example")
            if "body_text" in example and "body_text_named_params" in example:
                self.errors[f"{path}.example"] = "Give body_text or body_text_named_params, not both."
                self.malformed.add("body.examples")
            elif "body_text" in example:
                key = "body_text"
                self._set("body_examples", self._body_text(example[key], f"{path}.example.{key}"), "body.examples")
            elif "body_text_named_params" in example:
                key = "body_text_named_params"
                self._set("body_examples", self.named(example[key], f"{path}.example.{key}"), "body.examples")
        exact["body.examples"] = f"{path}.example.{key}"

    def _body_text(self, value: Any, path: str) -> list[str] | None:
        """Meta's ``[["Ann", "#1042"]]``: one list holding one example per placeholder, in order."""
        if not isinstance(value, list) or len(value) != 1 or not isinstance(value[0], list):
            self.errors[path] = 'A list holding one list of examples, one per placeholder: [["Ann", "#1042"]].'
            return None
        out: list[str] = []
        for index, item in enumerate(value[0]):
            text = self.value(item, f"{path}[0][{index}]")
            if text is None:
                return None
            out.append(text)
        return out

    def _footer(self, component: Mapping[str, Any], path: str) -> None:
        self.paths.exact.update({"footer": f"{path}.text",
                                 "footer.code_expiration_minutes": f"{path}.code_expiration_minutes"})
        self.fields["footer"] = self.text(component, "text", f"{path}.text")
        minutes = component.get("code_expiration_minutes")
        if minutes is None:
            return
        if isinstance(minutes, int) and not isinstance(minutes, bool):
            self.fields["code_expiration_minutes"] = minutes
        else:
            self.errors[f"{path}.code_expiration_minutes"] = "A whole number of minutes."

    def _buttons(self, component: Mapping[str, Any], path: str) -> None:
        where = f"{path}.buttons"
        self.paths.buttons = where
        buttons = component.get("buttons")
        if not isinstance(buttons, list):
            self.errors[where] = 'A list of buttons, like [{"type": "QUICK_REPLY", "text": "Stop"}].'
            return
        for index, button in enumerate(buttons):
            bpath = f"{where}[{index}]"
            if not isinstance(button, dict):
                self.errors[bpath] = "A button: an object with a type (QUICK_REPLY, URL, PHONE_NUMBER, COPY_CODE)."
                continue
            self.unknown(button, _BUTTON_FIELDS, bpath)
            kind = button.get("type")
            if not isinstance(kind, str):
                self.errors[f"{bpath}.type"] = "QUICK_REPLY, URL, PHONE_NUMBER or COPY_CODE (upper or lower case)."
                continue
            kind = kind.strip().upper()
            draft = ButtonDraft(type=kind, text=self.text(button, "text", f"{bpath}.text"),
                                url=self.text(button, "url", f"{bpath}.url"))
            if "phone_number" in button:
                draft.phone_number = _international(self.text(button, "phone_number", f"{bpath}.phone_number"))
            self._button_extras(button, kind, draft, bpath)
            self.paths.button_rows.append(index)
            self.buttons.append(draft)

    def _button_extras(self, button: Mapping[str, Any], kind: str, draft: ButtonDraft, bpath: str) -> None:
        otp_type = button.get("otp_type")
        if otp_type is not None and (kind != "OTP" or not isinstance(otp_type, str)
                                     or otp_type.strip().upper() != "COPY_CODE"):
            self.errors[f"{bpath}.otp_type"] = ("Only COPY_CODE one-time-code buttons (type OTP) are supported."
                                                if kind == "OTP" else "Only OTP buttons take an otp_type.")
        if "example" not in button:
            return
        example, path = button["example"], f"{bpath}.example"
        value: str | None = None
        if kind == "COPY_CODE":
            value = self.value(example, path)
        elif kind == "URL":
            value = self.one_value(example, path, '["https://shop.example/track/1042"]')
            if value is not None:
                value = self._url_suffix(draft.url, value, path)
        else:
            self.errors[path] = "Only URL and COPY_CODE buttons take an example."
            return
        if value is None:
            self.malformed.add(f"buttons[{len(self.buttons)}].example")
        else:
            draft.example = value

    def _url_suffix(self, url: str, example: str, path: str) -> str | None:
        """Meta's URL example is the whole link with {{1}} filled in (sometimes only the value);
        the draft takes the value of {{1}} and writes the whole link itself."""
        url = url.strip()
        start = url.find("{{")
        if start < 0:
            return example  # the draft says this link takes no example
        prefix = url[:start]
        if prefix and example.startswith(prefix):
            return example[len(prefix):]
        if example.startswith(("http://", "https://")):
            self.errors[path] = (f"The link with its {{{{1}}}} filled in (starting with {prefix}), "
                                 "or only the value of {{1}}.")
            return None
        return example


def _international(phone: str) -> str:
    """Meta writes button phone numbers as digits with the country code (``16467043595``)."""
    digits = re.sub(r"[\s()-]", "", phone)
    return "+" + digits if digits.isdigit() else phone
