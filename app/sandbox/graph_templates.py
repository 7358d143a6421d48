"""``/{waba_id}/message_templates``: list (Meta's cursor paging), create, delete.

GET takes ``limit`` (default 25, 1..1000), ``after`` / ``before`` cursors, and the ``name``
(substring), ``status``, ``language``, ``category`` and ``fields`` filters; the answer is
``{"data": [...], "paging": {"cursors": {"before", "after"}, "next"?, "previous"?}}`` with
absolute ``next`` / ``previous`` URLs, as graph.facebook.com returns them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from litestar import Request, Response

from app.sandbox.errors import invalid_param, unknown_object
from app.sandbox.http import json_body, json_response
from app.sandbox.templates import Template, encode_cursor, paginate

if TYPE_CHECKING:
    from app.sandbox.state import SandboxState

Req = Request[Any, Any, Any]
DEFAULT_LIMIT = 25


def get_template(state: SandboxState, template_id: str, token: str | None) -> Template | None:
    """The template behind ``GET /{template_id}``, if the token may see it."""
    template = state.templates.get(template_id)
    if template is not None and state.token_opens(token, template.waba_id):
        return template
    return None


def _visible_waba(state: SandboxState, waba_id: str, token: str | None, method: str) -> str:
    if not state.waba_known(waba_id) or not state.token_opens(token, waba_id):
        raise unknown_object(waba_id, method)
    return waba_id


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise invalid_param(f"Param limit must be an integer, got {raw!r}.") from None
    if not 1 <= limit <= 1000:
        raise invalid_param("Param limit must be between 1 and 1000.")
    return limit


def _page_url(request: Req, **cursor: str) -> str:
    params = {k: v for k, v in request.query_params.items() if k not in ("after", "before")}
    params.update(cursor)
    return f"{str(request.url).split('?', 1)[0]}?{urlencode(params)}"


async def _list(state: SandboxState, request: Req, waba_id: str, token: str | None) -> Response[bytes]:
    _visible_waba(state, waba_id, token, "GET")
    query = request.query_params
    items = state.templates.list(waba_id, name=query.get("name"), status=query.get("status"),
                                 language=query.get("language"), category=query.get("category"))
    page, has_next, has_previous = paginate(items, limit=_limit(query.get("limit")),
                                            after=query.get("after"), before=query.get("before"))
    fields = query.get("fields")
    wanted = {f.strip() for f in fields.split(",") if f.strip()} | {"id"} if fields else None
    data = [{k: v for k, v in t.view().items() if wanted is None or k in wanted} for t in page]
    if not page:
        return json_response({"data": []})
    before, after = encode_cursor(page[0].id), encode_cursor(page[-1].id)
    paging: dict[str, Any] = {"cursors": {"before": before, "after": after}}
    if has_next:
        paging["next"] = _page_url(request, after=after)
    if has_previous:
        paging["previous"] = _page_url(request, before=before)
    return json_response({"data": data, "paging": paging})


async def _create(state: SandboxState, request: Req, waba_id: str, token: str | None) -> Response[bytes]:
    _visible_waba(state, waba_id, token, "POST")
    template = state.templates.create(waba_id, await json_body(request))
    return json_response({"id": template.id, "status": template.status, "category": template.category})


async def _delete(state: SandboxState, request: Req, waba_id: str, token: str | None) -> Response[bytes]:
    _visible_waba(state, waba_id, token, "DELETE")
    name = request.query_params.get("name")
    if not name:
        raise invalid_param("The parameter name is required.", message="(#100) The parameter name is required.")
    state.templates.delete(waba_id, name, request.query_params.get("hsm_id"))
    return json_response({"success": True})


TEMPLATE_EDGES = {
    ("GET", "message_templates"): _list,
    ("POST", "message_templates"): _create,
    ("DELETE", "message_templates"): _delete,
}
