"""Graph-compatible routes under ``/sandbox/graph/{version}/...`` and the media download URL.

Meta's paths are ambiguous (``/{phone_number_id}``, ``/{media_id}`` and ``/{template_id}``
share one shape), so one catch-all route takes every graph request and resolves the id by
looking it up in state, like the Graph API does.  Order per request: faults, then the token
(190), then the object (100 / subcode 33 when unknown or not visible to the token), then
the body.  The version segment is optional, as on graph.facebook.com.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from litestar import Request, Response, get, route
from litestar.datastructures import UploadFile
from litestar.params import FromPath

from app.sandbox.errors import GraphError, invalid_param, unknown_object
from app.sandbox.graph_templates import TEMPLATE_EDGES, get_template
from app.sandbox.http import apply_faults, bearer_token, json_body, json_response
from app.sandbox.media_store import download_url
from app.sandbox.models import PROFILE_FIELDS, Number
from app.sandbox.profile import update_profile
from app.sandbox.validation import parse_mark_read, parse_send
from app.whatsapp.media import MediaKind, kind_for_mime, max_bytes

if TYPE_CHECKING:
    from app.sandbox.state import SandboxState

_VERSION = re.compile(r"^v\d+\.\d+$")
_FIELD = re.compile(r"([A-Za-z_]+)(?:\{[^}]*\})?")
MAX_BODY_BYTES = 110 * 1024 * 1024  # documents may be 100 MB, plus multipart overhead
_DEFAULT_NUMBER_FIELDS = ("verified_name", "display_phone_number", "quality_rating", "id")

Req = Request[Any, Any, Any]


def visible_number(state: SandboxState, object_id: str, token: str | None, method: str) -> Number:
    number = state.numbers.get(object_id)
    if number is None or not state.token_opens(token, number.waba_id):
        raise unknown_object(object_id, method)
    return number


def _fault_scope(state: SandboxState, object_id: str, edge: str | None) -> str | None:
    if object_id in state.numbers:
        return object_id
    item = state.media.get(object_id)
    if item is not None:
        return item.phone_number_id
    if edge == "message_templates":
        numbers = state.numbers_of(object_id)
        return numbers[0].phone_number_id if numbers else None
    return None


async def dispatch(state: SandboxState, request: Req, rest: str) -> Response[bytes]:
    parts = [p for p in rest.split("/") if p]
    if parts and _VERSION.match(parts[0]):
        parts = parts[1:]
    method = request.method
    if not parts or len(parts) > 2:
        raise GraphError(2500, f"Unknown path components: /{'/'.join(parts)}",
                         message=f"(#2500) Unknown path components: /{'/'.join(parts)}")
    object_id, edge = parts[0], (parts[1] if len(parts) == 2 else None)
    if state.media_base_url is None:  # webhooks' media ``url`` needs the public address
        state.media_base_url = str(request.url_for("sandbox_media_download"))
    if state.faults:
        faults = state.faults_for(_fault_scope(state, object_id, edge))
        if faults is not None:
            await apply_faults(request, faults, state)
    token = bearer_token(request)
    if not state.token_known(token):
        raise GraphError(190, "Missing Authorization: Bearer token." if token is None else "Unknown access token.")
    if edge is None:
        return await _object(state, request, method, object_id, token)
    handler = _EDGES.get((method, edge)) or TEMPLATE_EDGES.get((method, edge))
    if handler is None:
        if (object_id in state.numbers or state.waba_known(object_id)) and method in ("GET", "POST", "DELETE"):
            raise GraphError(100, f"Unknown edge {edge!r} for this object.",
                             message=f"(#100) Tried accessing nonexisting field ({edge}) on node type "
                                     "(WhatsAppBusinessPhoneNumber)")
        raise unknown_object(object_id, method)
    return await handler(state, request, object_id, token)


# ---- /{object_id} -------------------------------------------------------------------------

async def _object(state: SandboxState, request: Req, method: str, object_id: str, token: str | None
                  ) -> Response[bytes]:
    if object_id in state.numbers and method == "GET":
        return _get_number(request, visible_number(state, object_id, token, method))
    item = state.media.get(object_id)
    if item is not None and state.token_opens(token, item.waba_id):
        owner = request.query_params.get("phone_number_id")
        if owner is not None and owner != item.phone_number_id:
            raise unknown_object(object_id, method)
        if method == "GET":
            url = download_url(str(request.url_for("sandbox_media_download")), item, state.media.issue_url(item))
            return json_response({"url": url, "mime_type": item.mime_type, "sha256": item.sha256_hex,
                                  "file_size": item.file_size, "id": item.id, "messaging_product": "whatsapp"})
        if method == "DELETE":
            state.media.delete(object_id)
            return json_response({"success": True})
    if method == "GET":
        template = get_template(state, object_id, token)
        if template is not None:
            return json_response(template.view())
    raise unknown_object(object_id, method)


def _get_number(request: Req, number: Number) -> Response[bytes]:
    available = number.graph_fields()
    fields = request.query_params.get("fields")
    names = _FIELD.findall(fields) if fields else list(_DEFAULT_NUMBER_FIELDS)
    for name in names:
        if name not in available:
            raise GraphError(100, f"Unknown field {name!r}.",
                             message=f"(#100) Tried accessing nonexisting field ({name}) on node type "
                                     "(WhatsAppBusinessPhoneNumber)")
    out = {name: available[name] for name in names}
    out["id"] = number.phone_number_id
    return json_response(out)


# ---- /{phone_number_id}/messages ------------------------------------------------------------

async def _post_messages(state: SandboxState, request: Req, object_id: str, token: str | None) -> Response[bytes]:
    number = visible_number(state, object_id, token, "POST")
    body = await json_body(request)
    if isinstance(body, dict) and "status" in body and "to" not in body:
        state.mark_read(number, parse_mark_read(body))
        return json_response({"success": True})
    parsed = parse_send(body)
    return json_response(state.accept_send(number, parsed, body))


# ---- /{phone_number_id}/media ---------------------------------------------------------------

async def _post_media(state: SandboxState, request: Req, object_id: str, token: str | None) -> Response[bytes]:
    number = visible_number(state, object_id, token, "POST")
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise invalid_param("Upload media as multipart/form-data with file, type and messaging_product.",
                            message="(#100) The parameter file is required.")
    form = await request.form()
    if form.get("messaging_product") != "whatsapp":
        raise invalid_param("The parameter messaging_product is required and must be 'whatsapp'.",
                            message="(#100) The parameter messaging_product is required.")
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise invalid_param("The parameter file is required (a file part).",
                            message="(#100) The parameter file is required.")
    mime = form.get("type") or upload.content_type
    if not isinstance(mime, str) or not mime.strip():
        raise invalid_param("The parameter type is required.", message="(#100) The parameter type is required.")
    kind = kind_for_mime(mime)
    if kind is None:
        raise invalid_param(f"Param type ({mime}) is not a supported media type.",
                            message="(#100) Param file must be a file with one of the following types: "
                                    "audio/aac, audio/amr, audio/mpeg, audio/mp4, audio/ogg, text/plain, "
                                    "application/pdf, application/msword, image/jpeg, image/png, image/webp, "
                                    "video/mp4, video/3gpp and Office documents.")
    data = await upload.read()
    if not data:
        raise invalid_param("Param file is empty.")
    animated = kind is MediaKind.STICKER and b"ANIM" in data[:256]
    limit = max_bytes(kind, animated=animated)
    if len(data) > limit:
        raise GraphError(131053, f"Uploaded file is {len(data)} bytes; {kind.value} ({mime}) may be at most "
                                 f"{limit} bytes.")
    item = state.media.add(state.new_id(), number, data, mime.strip(), filename=upload.filename or None)
    return json_response({"id": item.id})


# ---- /{phone_number_id}/whatsapp_business_profile --------------------------------------------

async def _get_profile(state: SandboxState, request: Req, object_id: str, token: str | None) -> Response[bytes]:
    number = visible_number(state, object_id, token, "GET")
    fields = request.query_params.get("fields")
    names = _FIELD.findall(fields) if fields else list(PROFILE_FIELDS)
    profile = {name: number.profile[name] for name in names if name in number.profile}
    profile["messaging_product"] = "whatsapp"
    return json_response({"data": [profile]})


async def _post_profile(state: SandboxState, request: Req, object_id: str, token: str | None) -> Response[bytes]:
    number = visible_number(state, object_id, token, "POST")
    update_profile(number, await json_body(request), str(request.base_url).rstrip("/"))
    return json_response({"success": True})


_EDGES = {
    ("POST", "messages"): _post_messages,
    ("POST", "media"): _post_media,
    ("GET", "whatsapp_business_profile"): _get_profile,
    ("POST", "whatsapp_business_profile"): _post_profile,
}


def graph_handlers(state: SandboxState) -> list[Any]:
    """The route handlers for the graph API and the media download URL, bound to ``state``."""

    @route("/graph/{rest:path}", http_method=["GET", "POST", "DELETE", "PUT", "PATCH"], name="sandbox_graph",
           request_max_body_size=MAX_BODY_BYTES, include_in_schema=False)
    async def graph(request: Req, rest: FromPath[str]) -> Response[bytes]:
        return await dispatch(state, request, rest)

    @get("/lookaside/whatsapp_business/attachments/", name="sandbox_media_download", include_in_schema=False)
    async def download(request: Req) -> Response[bytes]:
        token = bearer_token(request)
        media_id = request.query_params.get("mid", "")
        item = state.media.get(media_id)
        faults = state.faults_for(item.phone_number_id if item else None) if state.faults else None
        if faults is not None:
            await apply_faults(request, faults, state)
        if not state.token_known(token):
            raise GraphError(190, "The media download URL requires the bearer token.")
        item = state.media.resolve_url(request.query_params.get("hash", ""))
        if item is None or item.id != media_id or not state.token_opens(token, item.waba_id):
            raise GraphError(100, "This media URL has expired or does not exist; retrieve a new one with "
                                  "GET /{media_id}.", message="(#100) Invalid parameter", http_status=404)
        headers: dict[str, str] = {}
        if item.filename:
            headers["Content-Disposition"] = f'inline; filename="{item.filename}"'
        return Response(content=item.data, media_type=item.mime_type, headers=headers)

    return [graph, download]
