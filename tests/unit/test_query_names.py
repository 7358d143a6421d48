"""The allowed query parameters are those of the handler asked about, even when an earlier handler (of an app
that is gone) had the same ``id()``: the tests build many apps in one process, and GET /api/v1/contacts once
answered "Unknown query parameter: filter" with another handler's names."""

from __future__ import annotations

import gc
from typing import Annotated

from litestar import get
from litestar.params import QueryParameter

from app.query_params import _query_names


def _handler(param: str):
    if param == "filter":
        @get("/contacts")
        async def listing(filter_: Annotated[str | None, QueryParameter(name="filter")] = None) -> None: ...
    else:
        @get("/other")
        async def listing(other: str | None = None) -> None: ...
    return listing


def test_each_handler_gets_its_own_names_even_when_ids_are_reused():
    # CPython usually hands a freed handler's id to the next one made: the case that went wrong.
    for i in range(200):
        kind = "filter" if i % 2 else "other"
        handler = _handler(kind)
        assert _query_names(handler) == ({"filter"} if kind == "filter" else {"other"})
        del handler
        gc.collect()
