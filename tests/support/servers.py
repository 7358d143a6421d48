"""Run an ASGI app on a real loopback port (in a background thread, or on the test's loop), for tests over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import uvicorn


async def read_body(receive) -> bytes:
    """The whole request body of a plain ASGI app (the test doubles that stand in for Meta or a receiver)."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(app, port: int | None = None) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread; yields its base URL, stops it on exit."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", ws="websockets-sansio")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.asynccontextmanager
async def serve_here(app, port: int | None = None, *, trusted_proxies: str | None = None) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on this event loop (a task), so the test can also query Documents:
    motor binds its client to the loop that first uses it. Yields the base URL.

    ``trusted_proxies``: run it with the product's own server configuration (app.cli.server_config)."""
    port = port or free_port()
    if trusted_proxies is not None:
        from app.cli import server_config

        config = server_config(app, "127.0.0.1", port, trusted_proxies)
    else:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                ws="websockets-sansio")
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # Ctrl-C stays pytest's
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 30
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            if task.done() and task.exception():
                raise RuntimeError("test server did not start") from task.exception()
            raise RuntimeError("test server did not start")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


async def scrape_metrics(app) -> httpx.Response:
    """GET /metrics as a scraper on this host would (the test client's peer is not local)."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 9090))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as scraper:
        return await scraper.get("/metrics")
