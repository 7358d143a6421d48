"""HTTP helpers shared by the sandbox's graph and control routes.

JSON in and out goes through msgspec (Litestar's own codec) on raw bytes, so a malformed
body becomes Meta's 100 error instead of a framework 400, and the hot send path skips
Litestar's signature-model parsing altogether.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException

from app.sandbox.errors import GraphError, invalid_param
from app.sandbox.models import Faults

log = logging.getLogger("app.sandbox")
JSON = "application/json"
_encoder = msgspec.json.Encoder()


def json_response(obj: Any, status_code: int = 200) -> Response[bytes]:
    return Response(content=_encoder.encode(obj), media_type=JSON, status_code=status_code)


def error_response(error: GraphError) -> Response[bytes]:
    return json_response(error.body(), error.http_status)


async def json_body(request: Request[Any, Any, Any]) -> Any:
    """The decoded JSON body; 100 naming the problem when it is empty or malformed."""
    raw = await request.body()
    if not raw.strip():
        raise invalid_param("The request body is empty; expected a JSON object.",
                            message="(#100) The parameter messaging_product is required.")
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise invalid_param(f"Request body is not valid JSON: {exc}.", message="(#100) Invalid parameter") from None


def bearer_token(request: Request[Any, Any, Any]) -> str | None:
    """The access token from ``Authorization: Bearer`` or Graph's ``?access_token=``."""
    # Read the raw ASGI headers: building Litestar's Headers object costs more than the send.
    header = next((v.decode("latin-1") for k, v in request.scope["headers"] if k == b"authorization"), None)
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return token.strip() or None
    return request.query_params.get("access_token") or None


def exception_to_response(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Router-level handler: everything leaves the sandbox in Meta's error shape."""
    if isinstance(exc, GraphError):
        return error_response(exc)
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        # Framework-level rejections (oversize body, bad multipart, validation): bad input.
        code = 131053 if exc.status_code == 413 else 100
        detail = f"{exc.detail}" if exc.detail else "Invalid request."
        return error_response(GraphError(code, detail, http_status=400 if exc.status_code != 413 else 413))
    log.exception("sandbox: unexpected error on %s %s", request.method, request.url.path)
    return error_response(GraphError(1, "An unexpected error occurred in the sandbox; see its log.",
                                     message="An unknown error has occurred."))


# ---- faults -------------------------------------------------------------------------------

_DEFAULT_CODE = {401: 190, 404: 100, 429: 130429, 500: 131000, 503: 131016}


async def apply_faults(request: Request[Any, Any, Any], faults: Faults, state: Any) -> None:
    """Latency, held requests (client timeouts) and injected errors, in that order."""
    if faults.latency_ms:
        await asyncio.sleep(faults.latency_ms / 1000)
    if faults.timeout_rate and random.random() < faults.timeout_rate:
        await _hold(request, state)
        raise GraphError(2, "The sandbox held this request (timeout fault) and then released it.")
    if faults.error_rate and random.random() < faults.error_rate:
        status = faults.http_status
        code = faults.error_code
        if code is None:
            code = _DEFAULT_CODE.get(status or 500, 131000 if (status or 500) >= 500 else 100)
        raise GraphError(code, "Error injected by the sandbox (faults).", http_status=status)


async def _hold(request: Request[Any, Any, Any], state: Any) -> None:
    """Hold until the client gives up (disconnects), faults are cleared, or the hold cap."""
    try:
        await request.body()  # consume it, so the next receive() can only be the disconnect
    except Exception:  # noqa: BLE001 - a broken body is still a request to hold
        pass
    generation = state.fault_generation
    deadline = time.monotonic() + state.fault_hold_s

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnected())
    try:
        while not watcher.done() and generation == state.fault_generation and time.monotonic() < deadline:
            await asyncio.wait({watcher}, timeout=0.05)
    finally:
        watcher.cancel()
