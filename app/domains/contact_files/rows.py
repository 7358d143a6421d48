"""From a CSV row to a contact's fields: the column mapping (guessed from the header, checked when chosen)
and each cell read by the same rules as the page and the API.

- Phone numbers go through ``phonenumbers``: written with + and a country code, or national with the
  import's default country; the stored form is E.164. A number that is not valid for its country is
  refused with the reason, never guessed (no letters read as digits, no country assumed).
- Email and tags follow the contact editor's rules (app/domains/contacts/editing.py); attribute values
  the admin's typed definitions (``coerce_attribute``); the consent columns read yes / no words.
- A cell a spreadsheet export of ours escaped (``'=...``, ``'+44...``: see exporting.py) is read back
  without its apostrophe, so an export imports again as it was.

A row's problems are gathered into one reason (``RowRefused``) for the report; nothing of a refused
row is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import phonenumbers
from phonenumbers import NumberParseException, ValidationResult

from app.domains.catalog.models import ContactAttribute
from app.domains.contacts.attribute_values import AttributeValueError, coerce_attribute
from app.domains.contacts.editing import MAX_ATTRIBUTES, MAX_NAME, check_attribute_key, clean_email, clean_tags
from app.errors import ValidationFailed
from app.whatsapp.payloads import BSUID_PATTERN

ATTRIBUTE = "attributes."
FIELDS = {
    "phone": "Phone number",
    "name": "Name",
    "email": "Email",
    "user_id": "WhatsApp user id (BSUID)",
    "tags": "Tags (separated by , or ;)",
    "opted_out": "Opted out of marketing (yes = opted out)",
    "consent": "Agreed to marketing (yes = agreed)",
}
"""The contact fields a column can fill (besides ``attributes.<key>``); "" skips the column."""
IDENTIFIERS = ("phone", "user_id", "email")

_GUESSES = {
    "phone": {"phone", "phone number", "phonenumber", "mobile", "mobile number", "mobile phone", "cell", "cell phone",
              "cellphone", "whatsapp", "whatsapp number", "number", "tel", "telephone", "msisdn", "wa id", "contact number"},
    "name": {"name", "full name", "fullname", "contact name", "contact", "display name", "customer name", "customer"},
    "email": {"email", "e mail", "email address", "e mail address", "mail"},
    "user_id": {"user id", "userid", "bsuid", "whatsapp user id", "wa user id"},
    "tags": {"tags", "tag"},
    "opted_out": {"opted out", "opted out marketing", "opt out", "optout", "unsubscribed", "marketing opt out",
                  "do not contact", "dnc"},
    "consent": {"consent", "marketing", "marketing consent", "opted in", "opt in", "optin", "subscribed",
                "accepts marketing", "marketing opt in", "marketing opt-in"},
}
_YES = {"yes", "y", "true", "1", "x", "on", "oui", "si", "sí", "ja"}
_NO = {"no", "n", "false", "0", "off", "non", "nein"}
_OUT_WORDS = {"opted out", "opted-out", "unsubscribed", "out", "revoked", "denied", "withdrawn"}
_IN_WORDS = {"opted in", "opted-in", "subscribed", "in", "granted", "agreed", "given"}
_SCIENTIFIC = re.compile(r"^\d(\.\d+)?[eE]\+?\d+$")
_PHONE_CHARS = re.compile(r"^[+\d\s().\-/]+$")
_ESCAPED = re.compile(r"^'[=+\-@\t\r]")
_SPLIT_TAGS = re.compile(r"[,;]")


class RowRefused(ValueError):
    """Why a row cannot be imported, in words (several problems joined by "; ")."""


@dataclass
class RowValues:
    """What a row says about one contact; None (or empty) where its cells were blank: left as stored."""

    wa_id: str | None = None
    phone: str | None = None
    user_id: str | None = None
    email: str | None = None
    name: str | None = None
    tags: list[str] = field(default_factory=list)
    opted_out: bool | None = None
    explicit: bool = False
    """From a consent column ("agreed to marketing"): recorded even when the state does not change, on a
    contact with no consent history yet (an opted-out column only records changes of state)."""
    attributes: dict[str, Any] = field(default_factory=dict)


def _words(header: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", header.casefold()).split())


def guess_mapping(header: list[str], definitions: dict[str, ContactAttribute]) -> list[str]:
    """A field for each column whose name says which (the first such column wins), "" for the rest."""
    by_name = {}
    for key, definition in definitions.items():
        by_name.setdefault(_words(key), key)
        by_name.setdefault(_words(definition.name), key)
    taken: set[str] = set()
    mapping = []
    for name in header:
        words = _words(name)
        target = next((f for f, names in _GUESSES.items() if words in names), "")
        if not target and words.removeprefix("attributes ") in by_name:
            target = ATTRIBUTE + by_name[words.removeprefix("attributes ")]
        if target in taken:
            target = ""
        taken.add(target)
        mapping.append(target)
    return mapping


def check_mapping(mapping: list[str], header: list[str], definitions: dict[str, ContactAttribute]) -> list[str]:
    """The mapping as stored, one entry per column; 422 MAPPING_INVALID naming the columns at fault."""
    if len(mapping) != len(header):
        raise ValidationFailed(f"The mapping has {len(mapping)} entries; the file has {len(header)} columns.",
                               error_code="MAPPING_INVALID", details={"mapping": "one entry per column"})
    details: dict[str, str] = {}
    seen: dict[str, int] = {}
    cleaned = []
    for i, target in enumerate(mapping):
        target = (target or "").strip()
        column = header[i] or f"column {i + 1}"
        if target.startswith(ATTRIBUTE):
            try:
                target = ATTRIBUTE + check_attribute_key(target[len(ATTRIBUTE):])
            except ValidationFailed as error:
                details[column] = error.message
        elif target and target not in FIELDS:
            details[column] = f"Unknown field {target!r}: one of {', '.join(FIELDS)} or attributes.<key>."
        if target and target in seen:
            details[column] = f"{column!r} and {header[seen[target]] or 'another column'!r} both fill {target}."
        if target:
            seen.setdefault(target, i)
        cleaned.append(target)
    if not details and not any(t in IDENTIFIERS for t in cleaned):
        raise ValidationFailed("Choose the column with the phone numbers (or, to update existing contacts, "
                               "their WhatsApp user id or email).", error_code="MAPPING_INVALID",
                               details={"mapping": "no phone, user_id or email column"})
    if details:
        raise ValidationFailed("Some columns cannot be mapped that way.", error_code="MAPPING_INVALID",
                               details=details)
    return cleaned


def unescape(cell: str) -> str:
    """A cell as it was before a spreadsheet-safe export put an apostrophe before it (see exporting.py)."""
    return cell[1:] if _ESCAPED.match(cell) else cell


def parse_phone(text: str, default_country: str | None) -> tuple[str, str]:
    """(wa_id, E.164) of a number as written; RowRefused says why it is not one."""
    raw = text.strip()
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    if _SCIENTIFIC.match(raw):
        raise RowRefused(f"phone {text!r} was turned into a number by a spreadsheet (scientific notation): "
                         "format the column as text and export again")
    if not _PHONE_CHARS.match(raw) or not re.search(r"\d", raw):
        raise RowRefused(f"phone {text[:40]!r} is not a phone number (only digits, spaces, + - . ( ) allowed)")
    international = raw.startswith("+")
    if not international and not default_country:
        raise RowRefused(f"phone {text!r} has no country code: write it with + and the country code, "
                         "or choose a default country")
    try:
        number = phonenumbers.parse(raw, None if international else default_country)
    except NumberParseException as error:
        raise RowRefused(f"phone {text!r}: {_parse_words(error)}") from None
    if phonenumbers.is_valid_number(number):
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        return e164[1:], e164
    region = phonenumbers.region_code_for_country_code(number.country_code)
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible != ValidationResult.IS_POSSIBLE and possible != ValidationResult.IS_POSSIBLE_LOCAL_ONLY:
        words = {ValidationResult.TOO_SHORT: "too short", ValidationResult.TOO_LONG: "too long",
                 ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
                 ValidationResult.INVALID_LENGTH: "a wrong number of digits"}.get(possible, "not possible")
        raise RowRefused(f"phone {text!r} is {words} for {region}")
    raise RowRefused(f"phone {text!r} is not a valid number for {region}")


def _parse_words(error: NumberParseException) -> str:
    return {NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
            NumberParseException.NOT_A_NUMBER: "not a phone number",
            NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
            NumberParseException.TOO_SHORT_NSN: "too short",
            NumberParseException.TOO_LONG: "too long"}.get(error.error_type, "not a phone number")


def _flag(text: str, column: str, *, opted_out_column: bool) -> bool:
    """The contact's opted-out state a consent cell gives."""
    word = " ".join(text.casefold().split())
    if word in _OUT_WORDS:
        return True
    if word in _IN_WORDS:
        return False
    if word in _YES | _NO:
        yes = word in _YES
        return yes if opted_out_column else not yes
    raise RowRefused(f"{column}: write yes or no, not {text[:40]!r}")


def read_row(cells: list[str], header: list[str], mapping: list[str], definitions: dict[str, ContactAttribute],
             default_country: str | None) -> RowValues:
    """The values of one row; RowRefused with every problem found."""
    if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
        raise RowRefused(f"the row has {len(cells)} cells, the header {len(header)}: a delimiter inside "
                         "a cell that is not quoted?")
    values = RowValues()
    problems: list[str] = []
    for i, target in enumerate(mapping):
        if not target or i >= len(cells):
            continue
        text = unescape(cells[i].strip()).strip()
        if not text:
            continue
        column = header[i] or f"column {i + 1}"
        try:
            _read_cell(values, target, text, column, definitions, default_country)
        except RowRefused as error:
            problems.append(str(error))
        except ValidationFailed as error:
            problems.append(f"{column}: {error.message}")
        except AttributeValueError as error:
            problems.append(error.message)
    if len(values.attributes) > MAX_ATTRIBUTES:
        problems.append(f"more than {MAX_ATTRIBUTES} attributes")
    if problems:
        raise RowRefused("; ".join(problems))
    return values


def _read_cell(values: RowValues, target: str, text: str, column: str, definitions: dict[str, ContactAttribute],
               default_country: str | None) -> None:
    if target == "phone":
        values.wa_id, values.phone = parse_phone(text, default_country)
    elif target == "name":
        name = " ".join(text.split())
        if len(name) > MAX_NAME:
            raise RowRefused(f"{column}: names are at most {MAX_NAME} characters, this one has {len(name)}")
        values.name = name
    elif target == "email":
        values.email = clean_email(text)
    elif target == "user_id":
        if not BSUID_PATTERN.match(text):
            raise RowRefused(f"{column}: {text[:40]!r} is not a WhatsApp user id (like US.13491208655302741918)")
        values.user_id = text
    elif target == "tags":
        values.tags = clean_tags(_SPLIT_TAGS.split(text))
    elif target in ("opted_out", "consent"):
        values.opted_out = _flag(text, column, opted_out_column=target == "opted_out")
        values.explicit = target == "consent"
    else:
        key = target[len(ATTRIBUTE):]
        value = coerce_attribute(definitions.get(key), text, key=key)
        if isinstance(value, datetime):  # stored with Mongo's millisecond precision, so it compares equal later
            value = value.replace(microsecond=value.microsecond // 1000 * 1000)
        if value is not None:
            values.attributes[key] = value
