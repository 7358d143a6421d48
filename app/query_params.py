"""Unknown query parameters on /api answer 400 naming them, instead of being ignored.

An integrator who sends ``?offset=20`` or ``?start_date=...`` to an endpoint that does not take
them would otherwise get 200 with unfiltered data and believe it filtered. Each handler's query
parameters are read from its signature and those of the dependencies it takes (``Parameter(query=...)`` /
``QueryParameter(name=...)`` aliases included), once per handler.
"""

from __future__ import annotations

import weakref
from typing import Any

from litestar import Request

from app.errors import ClientError

_allowed: weakref.WeakKeyDictionary[Any, frozenset[str]] = weakref.WeakKeyDictionary()
"""Per handler object, for as long as it lives. (Keyed by ``id()`` it was wrong once a handler of an app that
was gone left its id to a new one: the tests build many apps in one process and got "Unknown query
parameter: filter" from GET /api/v1/contacts.)"""


def _query_names(handler: Any) -> frozenset[str]:
    names = _allowed.get(handler)
    if names is None:
        found: set[str] = set()
        dependencies = handler.resolve_dependencies()
        signatures = [handler.parsed_fn_signature]
        # A dependency the handler takes may declare query parameters of its own (the reports' period).
        signatures += [dependencies[name].parsed_fn_signature for name in handler.parsed_fn_signature.parameters
                       if name in dependencies and hasattr(dependencies[name], "parsed_fn_signature")]
        for signature in signatures:
            for name, parameter in signature.parameters.items():
                definition = parameter.kwarg_definition
                found.add(getattr(definition, "query", None) or getattr(definition, "name", None) or name)
        names = _allowed[handler] = frozenset(found)
    return names


async def refuse_unknown_query_parameters(request: Request[Any, Any, Any]) -> None:
    """``before_request``: /api only (pages take what HTMX and forms send)."""
    if not request.url.path.startswith("/api/") or not request.query_params:
        return
    unknown = sorted(set(request.query_params) - _query_names(request.route_handler))
    if unknown:
        raise ClientError(f"Unknown query parameter{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}.",
                          error_code="UNKNOWN_PARAMETER",
                          details={name: "not a parameter of this endpoint" for name in unknown})

