"""Issue 8 item 4: /schema/openapi.json describes every /api/v1 answer and JSON request body.

A success answer must have a real schema (a $ref, or an object with properties, or a list/union
of those), not Litestar's bare ``{"type": "object"}`` for a handler that returns ``dict``.
"""

from __future__ import annotations

from typing import Any


def _described(schema: dict[str, Any] | None) -> bool:
    if not schema:
        return False
    if "$ref" in schema or schema.get("properties"):
        return True
    for key in ("oneOf", "anyOf", "allOf"):
        if key in schema:
            return all(_described(part) or part.get("type") == "null" for part in schema[key])
    if schema.get("type") == "array":
        return _described(schema.get("items"))
    return False


def _operations(document: dict[str, Any]):
    for path, item in document["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                yield method.upper(), path, operation


async def test_every_api_v1_answer_and_json_body_has_a_schema(client):
    document = (await client.get("/schema/openapi.json")).json()
    bare_answers, bare_bodies, seen = set(), [], 0
    for method, path, operation in _operations(document):
        seen += 1
        successes = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
        assert successes, (method, path)
        for response in successes.values():
            for media_type, body in (response.get("content") or {}).items():
                if "json" in media_type and not _described(body.get("schema")):
                    bare_answers.add((method, path))
        for media_type, body in operation.get("requestBody", {}).get("content", {}).items():
            if "json" in media_type and not _described(body.get("schema")):
                bare_bodies.append((method, path))
    assert seen >= 40
    assert bare_bodies == []
    assert bare_answers == set()
