"""Control routes for customers (BSUIDs, number changes) and groups, plus the body checker.

``GET  /control/users?phone_number_id=|waba_id=&wa_id=|user_id=|username=`` -> ``{"data": [customer]}``
(a phone always resolves: every WhatsApp user has a BSUID; without a filter, every customer of
the number's WABA).  ``POST /control/users/change_number`` -> the system message's identity.
``POST /control/groups`` (201), ``GET /control/groups``, ``POST /control/groups/{id}/participants``,
``DELETE /control/groups/{id}``: each posts the Groups webhook Meta would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Request, Response, delete, get, post
from litestar.params import FromPath

from app.sandbox.errors import invalid_param
from app.sandbox.http import json_body, json_response

if TYPE_CHECKING:
    from app.sandbox.state import SandboxState

Req = Request[Any, Any, Any]
_MISSING: Any = object()
_NUM = (int, float)


def fields(body: Any, spec: dict[str, tuple[type | tuple[type, ...], bool]]) -> dict[str, Any]:
    """Check ``body`` against {name: (types, required)}; null allowed only where types include None."""
    if not isinstance(body, dict):
        raise invalid_param("The request body must be a JSON object.")
    for key in body:
        if key not in spec:
            raise invalid_param(f'Unexpected key "{key}"; allowed: {", ".join(spec)}.')
    out: dict[str, Any] = {}
    for key, (types, required) in spec.items():
        value = body.get(key, _MISSING)
        if value is _MISSING:
            if required:
                raise invalid_param(f"The parameter {key} is required.")
            continue
        allowed = types if isinstance(types, tuple) else (types,)
        if isinstance(value, bool) and bool not in allowed:
            raise invalid_param(f"Param {key} has the wrong type (got a boolean).")
        if not isinstance(value, tuple(t for t in allowed if t is not type(None))) and not (
                value is None and type(None) in allowed):
            names = "/".join("null" if t is type(None) else t.__name__ for t in allowed)
            raise invalid_param(f"Param {key} must be {names}, got {type(value).__name__}.")
        if isinstance(value, str) and required and not value.strip():
            raise invalid_param(f"Param {key} must be non-empty.")
        out[key] = value
    return out


def _strings(value: list[Any], name: str) -> list[str]:
    if not all(isinstance(v, str) and v.strip() for v in value):
        raise invalid_param(f"Param {name} must be an array of phone numbers or business-scoped user IDs.")
    return value


def people_handlers(state: SandboxState) -> list[Any]:
    """The customer and group control handlers, bound to ``state``."""

    @get("/control/users")
    async def users(request: Req) -> Response[bytes]:
        query = request.query_params
        phone_number_id, waba_id = query.get("phone_number_id"), query.get("waba_id")
        if phone_number_id:
            number = state.numbers.get(phone_number_id)
            if number is None:
                raise invalid_param(f"Unknown phone_number_id {phone_number_id!r}; register it first.")
            waba_id = number.waba_id
        if not waba_id:
            raise invalid_param("The parameter phone_number_id (or waba_id) is required.")
        wa_id, user_id, username = query.get("wa_id"), query.get("user_id"), query.get("username")
        if wa_id is None and user_id is None and username is None:
            return json_response({"data": [c.view() for c in state.users.all(waba_id)]})
        found = state.customer(waba_id, wa_id=wa_id, user_id=user_id, username=username)
        return json_response({"data": [found.view()] if found is not None else []})

    @post("/control/users/change_number", status_code=200)
    async def change_number(request: Req) -> Response[bytes]:
        args = fields(await json_body(request), {
            "phone_number_id": (str, True), "wa_id": (str, False), "user_id": (str, False),
            "new_wa_id": (str, False), "share_number": (bool, False), "timestamp": (_NUM, False)})
        return json_response(state.change_number(args.pop("phone_number_id"), **args))

    @post("/control/groups", status_code=201)
    async def create_group(request: Req) -> Response[bytes]:
        args = fields(await json_body(request), {
            "phone_number_id": (str, True), "subject": (str, True), "description": (str, False),
            "participants": (list, True)})
        group, added = state.groups.create(args["phone_number_id"], args["subject"],
                                           _strings(args["participants"], "participants"), args.get("description"))
        return json_response({**group.view(), "added_participants": added}, 201)

    @get("/control/groups")
    async def list_groups(request: Req) -> Response[bytes]:
        wanted = request.query_params.get("phone_number_id")
        return json_response({"data": [g.view() for g in state.groups.of_number(wanted)]})

    @post("/control/groups/{group_id:str}/participants", status_code=200)
    async def participants(request: Req, group_id: FromPath[str]) -> Response[bytes]:
        args = fields(await json_body(request), {"action": (str, True), "participants": (list, True)})
        return json_response(state.groups.change_participants(
            group_id, args["action"], _strings(args["participants"], "participants")))

    @delete("/control/groups/{group_id:str}", status_code=200)
    async def delete_group(group_id: FromPath[str]) -> Response[bytes]:
        state.groups.delete(group_id)
        return json_response({"success": True})

    return [users, change_number, create_group, list_groups, participants, delete_group]
