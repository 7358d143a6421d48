"""``POST /{phone_number_id}/whatsapp_business_profile``: Meta's fields and limits.

about 1-139 characters, address <= 256, description <= 512, email <= 128 and shaped like
an address, at most 2 websites (http/https, <= 256 each), vertical from Meta's list,
``profile_picture_handle`` from the resumable upload API (stored as a picture URL here).
"""

from __future__ import annotations

import re
from typing import Any

from app.sandbox.checks import get_list, get_str, require_keys, require_obj, value_invalid
from app.sandbox.errors import invalid_param
from app.sandbox.models import Number

VERTICALS = frozenset({
    "UNDEFINED", "OTHER", "AUTO", "BEAUTY", "APPAREL", "EDU", "ENTERTAIN", "EVENT_PLAN", "FINANCE", "GROCERY",
    "GOVT", "HOTEL", "HEALTH", "NONPROFIT", "PROF_SERVICES", "RETAIL", "TRAVEL", "RESTAURANT", "NOT_A_BIZ",
    "ALCOHOL", "ONLINE_GAMBLING", "PHYSICAL_GAMBLING", "OTC_DRUGS",
})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_KEYS = frozenset({"messaging_product", "about", "address", "description", "email", "websites", "vertical",
                   "profile_picture_handle"})


def update_profile(number: Number, body: Any, base_url: str) -> None:
    """Validate ``body`` and apply it to ``number.profile`` (all or nothing)."""
    body = require_obj(body, "root")
    require_keys(body, _KEYS, "root")
    if body.get("messaging_product") != "whatsapp":
        raise invalid_param("The parameter messaging_product is required and must be 'whatsapp'.",
                            message="(#100) The parameter messaging_product is required.")
    changes: dict[str, Any] = {}
    for key, max_len, min_len in (("about", 139, 1), ("address", 256, 0), ("description", 512, 0),
                                  ("email", 128, 0)):
        value = get_str(body, key, "", required=False, max_len=max_len, min_len=min_len, length_code=131009)
        if value is not None:
            changes[key] = value
    if changes.get("email") and not _EMAIL.match(changes["email"]):
        raise value_invalid("Param email is not a valid email address.")
    websites = get_list(body, "websites", "", required=False)
    if websites is not None:
        if len(websites) > 2:
            raise value_invalid("Param websites may contain at most 2 URLs.")
        for i, site in enumerate(websites):
            if not isinstance(site, str) or not site.startswith(("http://", "https://")) or len(site) > 256:
                raise value_invalid(f"Param websites[{i}] must be an http(s) URL of at most 256 characters.")
        changes["websites"] = websites
    vertical = get_str(body, "vertical", "", required=False)
    if vertical is not None:
        if vertical not in VERTICALS:
            raise value_invalid(f"Param vertical must be one of {', '.join(sorted(VERTICALS))}.")
        changes["vertical"] = vertical
    handle = get_str(body, "profile_picture_handle", "", required=False, min_len=1)
    if handle is not None:
        changes["profile_picture_url"] = f"{base_url}/sandbox/profile-pictures/{number.phone_number_id}"
    number.profile.update(changes)
