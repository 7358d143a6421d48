"""Health checks and the signed-in app shell."""

from __future__ import annotations

import asyncio
import time

from litestar import Controller, MediaType, Request, Response, get
from litestar.di import NamedDependency
from litestar.response import Redirect

from app.queue import HEARTBEAT_KEY
from app.runtime import Runtime

_CHECK_TIMEOUT = 2.0


async def _check(coro) -> dict:
    try:
        await asyncio.wait_for(coro, _CHECK_TIMEOUT)
        return {"status": "ok"}
    except Exception as exc:  # any failure means "not ready"; name it, no stack trace
        failing = {"status": "failing", "error": type(exc).__name__}
        if isinstance(exc, ConnectionError) and str(exc):
            failing["detail"] = str(exc)
        return failing


async def _database_answers(runtime: Runtime) -> None:
    embedded = runtime.embedded_database
    if embedded is not None and not embedded.running():
        raise ConnectionError("the embedded database process is not running (restarting it)")
    await runtime.db.ping()


async def _worker_alive(runtime: Runtime) -> None:
    beat = await runtime.redis.get(HEARTBEAT_KEY)
    if beat is None:
        raise LookupError("no worker heartbeat in the last 30 s")
    age = time.time() - float(beat)
    if age > 30:
        raise LookupError(f"last worker heartbeat {age:.0f} s ago")


class HealthController(Controller):
    path = "/health"
    tags = ["health"]

    @get("/live", summary="The process is up")
    async def live(self) -> dict:
        return {"status": "ok", "checks": {"process": {"status": "ok"}}}

    @get("/ready", summary="MongoDB, Redis and a worker are reachable", media_type=MediaType.JSON)
    async def ready(self, runtime: NamedDependency[Runtime]) -> Response[dict]:
        mongo, redis_check, worker = await asyncio.gather(
            _check(_database_answers(runtime)), _check(runtime.redis.ping()), _check(_worker_alive(runtime))
        )
        checks = {"mongodb": mongo, "redis": redis_check, "worker": worker}
        ok = all(c["status"] == "ok" for c in checks.values())
        return Response({"status": "ok" if ok else "failing", "checks": checks}, status_code=200 if ok else 503)


class ShellController(Controller):
    """The pages every signed-in user sees."""

    @get("/", include_in_schema=False)
    async def home(self, request: Request) -> Redirect:
        return Redirect("/inbox" if request.user else "/login")
