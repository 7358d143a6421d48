"""Thin arq tasks: take the Runtime from ctx, call one service method."""

from __future__ import annotations

import time
from typing import Any

from app.queue import HEARTBEAT_KEY, HEARTBEAT_TTL_SECONDS
from app.runtime import Runtime


def runtime_of(ctx: dict[str, Any]) -> Runtime:
    """The typed Runtime stored in arq's ctx by on_startup."""
    return ctx["runtime"]


async def heartbeat(ctx: dict[str, Any]) -> None:
    """Proves to /health/ready that a worker is alive and taking jobs."""
    await runtime_of(ctx).redis.set(HEARTBEAT_KEY, f"{time.time():.3f}", ex=HEARTBEAT_TTL_SECONDS)
