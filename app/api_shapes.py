"""Documenting the JSON of /api handlers that build their answers as dicts (OpenAPI only).

Such a handler's return type is ``dict``, so Litestar writes a bare ``{"type": "object"}``. Passing
``responses=documented(code, Model, "...")`` to its decorator replaces that schema with ``Model``'s
while the handler keeps returning the same dict, byte for byte. Models derive from ``ApiShape``:
extra keys are allowed, so a real answer always conforms (schemathesis checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


class ApiShape(BaseModel):
    model_config = ConfigDict(extra="allow")


def documented(status_code: int, model: Any, description: str) -> dict[int, ResponseSpec]:
    """A handler's ``responses=`` that replaces Litestar's bare "object" success schema with ``model``."""
    return {status_code: ResponseSpec(data_container=model, description=description, generate_examples=False)}


def page_of(item: type[BaseModel], name: str) -> type[ApiShape]:
    """``{"data": [item], "next_cursor": str | null}`` as a named model."""
    from pydantic import create_model

    return create_model(name, __base__=ApiShape, data=(list[item], ...),  # type: ignore[valid-type]
                        next_cursor=(str | None, Field(None, description="Next page's cursor; null on the last")))


def _only_a_boolean(value: Any) -> Any:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


Flag = Annotated[bool, BeforeValidator(_only_a_boolean)]
"""A boolean the API takes only as JSON true / false: 0, 1, "false" or "no" are refused, not guessed.
(Field-level ``StrictBool`` is not enough: Litestar validates request bodies with ``strict=False``.)"""


def multipart(file: str, **fields: str) -> type[Operation]:
    """An ``operation_class=`` documenting a multipart/form-data body: a required ``file`` part (``file``: its
    description) and optional text ``fields`` (name: description), for handlers that stream the body themselves
    (app/domains/outbox/uploads.py) and so declare no body Litestar could document."""

    @dataclass
    class MultipartUpload(Operation):
        def __post_init__(self) -> None:
            properties = {"file": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY, description=file),
                          **{name: Schema(type=OpenAPIType.STRING, description=text) for name, text in fields.items()}}
            self.request_body = RequestBody(required=True, content={"multipart/form-data": OpenAPIMediaType(
                schema=Schema(type=OpenAPIType.OBJECT, required=["file"], properties=properties))})

    return MultipartUpload
