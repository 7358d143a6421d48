"""A subscriber endpoint for event-webhook tests: records every request, answers scripted statuses."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from tests.support.servers import read_body


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """ASGI app: ``statuses`` are answered in order (the last one repeats); default 200."""

    statuses: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, *statuses: int) -> None:
        with self._lock:
            self.statuses = list(statuses)

    def of_type(self, event_type: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.headers.get("x-inbox-event") == event_type]

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = await read_body(receive)
        with self._lock:
            self.requests.append(Received(scope["path"], {k.decode(): v.decode() for k, v in scope["headers"]}, body))
            status = self.statuses.pop(0) if len(self.statuses) > 1 else (self.statuses[0] if self.statuses else 200)
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})
