"""Control routes under ``/sandbox/control/`` (never under ``/graph``): drive the simulation.

Thin wrappers over ``SandboxState``'s Python API.  Bodies are checked strictly (types,
required and unknown fields) and errors come back in the same ``{"error": {...}}`` shape as
the graph routes, so tools can treat both alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Request, Response, delete, get, post
from litestar.params import FromPath

from app.sandbox.control_people import fields as _fields
from app.sandbox.control_people import people_handlers
from app.sandbox.errors import GraphError, invalid_param
from app.sandbox.http import json_body, json_response

if TYPE_CHECKING:
    from app.sandbox.state import SandboxState

Req = Request[Any, Any, Any]
_NUM = (int, float)


_NONE = type(None)
_NUMBER_SPEC: dict[str, tuple[Any, bool]] = {
    "phone_number_id": (str, True), "waba_id": (str, True), "display_phone_number": (str, True),
    "access_token": (str, True), "app_secret": (str, True), "webhook_url": ((str, _NONE), False),
    "mps": (int, False), "delivered_after_ms": ((int, _NONE), False), "read_after_ms": ((int, _NONE), False),
    "verified_name": (str, False), "quality_rating": (str, False), "messaging_limit_tier": (str, False),
    "recipient_burst": (int, False), "recipient_interval_s": (_NUM, False), "groups_enabled": (bool, False),
}


_INBOUND_SPEC: dict[str, tuple[Any, bool]] = {
    "phone_number_id": (str, True), "from": (str, False), "user_id": (str, False), "username": (str, False),
    "parent_user_id": (str, False), "name": (str, False), "message": (dict, True), "timestamp": (_NUM, False),
    "group_id": (str, False),
}


def control_guard(state: SandboxState) -> Any:
    """Refuse /sandbox/control to peers not in ``state.control_from`` (Meta-shaped 403, code 10)."""
    def guard(connection: Any, _: Any) -> None:
        allowed = {p.strip() for p in state.control_from.split(",") if p.strip()}
        peer = connection.client.host if connection.client else None
        if "*" not in allowed and peer not in allowed:
            raise GraphError(10, f"The sandbox's control routes answer {', '.join(sorted(allowed))} only "
                                 "(INBOX_SANDBOX_CONTROL_FROM).", http_status=403)
    return guard


def control_handlers(state: SandboxState) -> list[Any]:
    """The control route handlers, bound to ``state`` (guarded by ``control_guard``)."""

    @post("/control/numbers", status_code=201)
    async def register_number(request: Req) -> Response[bytes]:
        args = _fields(await json_body(request), _NUMBER_SPEC)
        for key in ("delivered_after_ms", "read_after_ms", "recipient_burst"):
            if isinstance(args.get(key), int) and args[key] < 0:
                raise invalid_param(f"Param {key} must be >= 0.")
        if args.get("recipient_interval_s") is not None and args["recipient_interval_s"] <= 0:
            raise invalid_param("Param recipient_interval_s must be > 0.")
        number = state.register_number(
            args.pop("phone_number_id"), args.pop("waba_id"), args.pop("display_phone_number"),
            args.pop("access_token"), args.pop("app_secret"), args.pop("webhook_url", None),
            args.pop("mps", 80), **args,
        )
        return json_response(number.view(), 201)

    @get("/control/numbers")
    async def list_numbers() -> Response[bytes]:
        return json_response({"data": [n.view() for n in state.numbers.values()]})

    @post("/control/inbound", status_code=200)
    async def inbound(request: Req) -> Response[bytes]:
        args = _fields(await json_body(request), _INBOUND_SPEC)
        if state.media_base_url is None:
            state.media_base_url = str(request.url_for("sandbox_media_download"))
        if "from" not in args and "user_id" not in args and "username" not in args:
            raise invalid_param("The parameter from is required (or user_id, the customer's BSUID).")
        wamid, customer = state.inbound(
            args["phone_number_id"], args.get("from"), args.get("name"), args["message"],
            timestamp=args.get("timestamp"), user_id=args.get("user_id"), username=args.get("username"),
            parent_user_id=args.get("parent_user_id"), group_id=args.get("group_id"))
        return json_response({"wamid": wamid, "user_id": customer.user_id, "wa_id": customer.wa_id})

    @get("/control/sent")
    async def list_sent(request: Req) -> Response[bytes]:
        return json_response({"data": state.list_sent(request.query_params.get("phone_number_id"))})

    @delete("/control/sent", status_code=200)
    async def clear_sent() -> Response[bytes]:
        state.clear_sent()
        return json_response({"success": True})

    @post("/control/faults", status_code=200)
    async def set_faults(request: Req) -> Response[bytes]:
        args = _fields(await json_body(request), {
            "phone_number_id": ((str, _NONE), False), "error_rate": (_NUM, False),
            "http_status": ((int, _NONE), False), "error_code": ((int, _NONE), False),
            "latency_ms": (_NUM, False), "timeout_rate": (_NUM, False)})
        phone_number_id = args.pop("phone_number_id", None)
        faults = state.set_faults(phone_number_id, error_rate=float(args.get("error_rate", 0.0)),
                                  http_status=args.get("http_status"), error_code=args.get("error_code"),
                                  latency_ms=int(args.get("latency_ms", 0)),
                                  timeout_rate=float(args.get("timeout_rate", 0.0)))
        return json_response({"phone_number_id": phone_number_id, **faults.view()})

    @delete("/control/faults", status_code=200)
    async def clear_faults() -> Response[bytes]:
        state.clear_faults()
        return json_response({"success": True})

    @post("/control/templates", status_code=201)
    async def seed_template(request: Req) -> Response[bytes]:
        args = _fields(await json_body(request), {
            "waba_id": (str, True), "name": (str, True), "language": (str, True), "category": (str, True),
            "components": (list, True), "status": (str, False), "parameter_format": (str, False)})
        template_id = state.seed_template(args["waba_id"], args["name"], args["language"], args["category"],
                                          args["components"], args.get("status", "APPROVED"),
                                          parameter_format=args.get("parameter_format"))
        template = state.templates.get(template_id)
        assert template is not None
        return json_response({"id": template_id, "status": template.status, "category": template.category}, 201)

    @post("/control/templates/{template_id:str}/status", status_code=200)
    async def template_status(request: Req, template_id: FromPath[str]) -> Response[bytes]:
        args = _fields(await json_body(request), {"status": (str, True), "reason": ((str, _NONE), False),
                                                  "rejection_info": (dict, False)})
        info = args.get("rejection_info")
        if info is not None:
            info = _fields(info, {"reason": (str, True), "recommendation": (str, True)})
        state.set_template_status(template_id, args["status"], args.get("reason"), rejection_info=info)
        return json_response({"success": True, "id": template_id, "status": args["status"].upper()})

    @post("/control/media/expire_urls", status_code=200)
    async def expire_urls() -> Response[bytes]:
        state.media.expire_urls()
        return json_response({"success": True})

    @get("/control/deliveries")
    async def deliveries(request: Req) -> Response[bytes]:
        wanted = request.query_params.get("phone_number_id")
        data = [d for d in state.webhooks.deliveries if wanted is None or d["phone_number_id"] == wanted]
        return json_response({"data": data, "pending": state.webhooks.pending()})

    @post("/control/reset", status_code=200)
    async def reset() -> Response[bytes]:
        state.reset()
        return json_response({"success": True})

    return [register_number, list_numbers, inbound, list_sent, clear_sent, set_faults, clear_faults,
            seed_template, template_status, expire_urls, deliveries, reset, *people_handlers(state)]
