"""Shared setup of the outbound tests: the sandbox on a real port, our app with its worker, an API key.

Import the fixture into a test module with ``from tests.integration.outbound_env import outbound  # noqa``.
Only Meta is simulated (the sandbox); everything of ours is the real code.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from beanie import PydanticObjectId
from pydantic import SecretStr

from app.db import utcnow
from app.domains.accounts.models import WhatsAppAccount
from app.domains.accounts.services import NewAccount
from app.domains.contacts.services import ContactService
from app.domains.conversations.models import Conversation, MessagePreview
from app.domains.conversations.services import ConversationService
from app.domains.messages.models import Message
from app.domains.workspaces.models import Workspace
from app.sandbox import SandboxState, create_sandbox_app
from tests.support.servers import serve

API_KEY = "wa-inbox-test-key-0123456789abcdef0123456789"
FAST = {
    "send_backoff_scale": 0.01, "send_timeout_seconds": 1.0, "circuit_open_seconds": 0.3,
    "admin_email": "admin@example.com", "admin_password": SecretStr("a long test password"),
    "admin_api_key": SecretStr(API_KEY),
}
_ids = itertools.count(1)


@dataclass
class OutboundEnv:
    client: Any
    sandbox_url: str
    state: SandboxState
    control: httpx.AsyncClient
    workspace_id: PydanticObjectId = field(default=None)  # type: ignore[assignment]

    @property
    def runtime(self) -> Any:
        return self.client.app.state.runtime

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {API_KEY}"}

    async def add_number(self, *, mps: int = 80, sandbox_mps: int | None = None, token: str | None = None,
                         **sandbox: Any) -> WhatsAppAccount:
        n = next(_ids)
        pnid, waba = f"{1000 + n}{int(time.time() * 1000) % 10**6}", f"9{n}{int(time.time()) % 10**5}"
        token = token or f"token-{pnid}"
        answer = await self.control.post("/sandbox/control/numbers", json={
            "phone_number_id": pnid, "waba_id": waba, "display_phone_number": f"+1555{pnid[-7:]}",
            "access_token": token, "app_secret": "secret", "mps": sandbox_mps or mps, **sandbox})
        assert answer.status_code == 201, answer.text
        return await self.runtime.accounts.create(self.workspace_id, NewAccount(
            name=f"Number {n}", phone_number_id=pnid, waba_id=waba, display_phone_number=f"+1555{pnid[-7:]}",
            access_token=token, app_secret="secret", mps=mps))

    async def conversation(self, account: WhatsAppAccount, wa_id: str, *, window: bool = True) -> Conversation:
        contact, _ = await ContactService().upsert(self.workspace_id, wa_id=wa_id, profile_name="Customer")
        conversation, _ = await ConversationService().open_for(self.workspace_id, account.id, contact.id)
        if window:
            await ConversationService().record_inbound(conversation, utcnow() - timedelta(minutes=1),
                                                       MessagePreview(text="hi"))
        return await Conversation.get(conversation.id)

    async def send(self, conversation: Conversation, body: str = "hello", **extra: Any) -> httpx.Response:
        return await self.client.post(f"/api/v1/conversations/{conversation.id}/messages", headers=self.headers,
                                      json={"type": "text", "content": {"body": body}, **extra})

    async def sent(self, account: WhatsAppAccount | None = None) -> list[dict[str, Any]]:
        query = {"phone_number_id": account.phone_number_id} if account else {}
        answer = await self.control.get("/sandbox/control/sent", params=query)
        return answer.json()["data"]

    async def faults(self, **faults: Any) -> None:
        answer = await self.control.post("/sandbox/control/faults", json=faults)
        assert answer.status_code == 200, answer.text

    async def clear_faults(self) -> None:
        await self.control.delete("/sandbox/control/faults")


async def wait_for(check: Callable[[], Awaitable[Any]], timeout: float = 30.0, every: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy (no timing asserts: only a generous cap)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(every)


async def statuses(ids: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for message in await Message.find({"_id": {"$in": [PydanticObjectId(i) for i in ids]}}).to_list():
        counts[message.status.value] = counts.get(message.status.value, 0) + 1
    return counts


def max_per_window(sent: list[dict[str, Any]], window: float = 1.0) -> int:
    """The most sends any ``window``-second interval (closed on the left, like Meta's) holds."""
    times = sorted(s["accepted_at"] for s in sent)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


@pytest.fixture
def sandbox_server():
    state = SandboxState(webhook_retry_base_s=0.01, fault_hold_s=30)
    with serve(create_sandbox_app(state)) as url:
        yield url, state


@pytest.fixture
async def outbound(client_factory, sandbox_server):
    """Factory: ``await outbound(**settings)`` -> OutboundEnv with the worker running in-process."""
    url, state = sandbox_server
    controls: list[httpx.AsyncClient] = []

    async def make(inline_worker: bool = True, **settings: Any) -> OutboundEnv:
        client = await client_factory(settings={**FAST, "graph_api_url": f"{url}/sandbox/graph", **settings},
                                      inline_worker=inline_worker)
        control = httpx.AsyncClient(base_url=url, timeout=10)
        controls.append(control)
        env = OutboundEnv(client, url, state, control)
        workspace = await Workspace.find_one({})
        env.workspace_id = workspace.id
        return env

    yield make
    for control in controls:
        await control.aclose()


class ThreadWorker:
    """Another "worker process": a Runtime and an arq Worker on their own event loop in a thread,
    sharing only the database server with the app, as separate processes share MongoDB.

    ``kill()`` stops the loop dead, like SIGKILL: no finally block, no hand-over, the lease left
    to expire; its Redis sockets are shut down as a dead process's are (the kernel closes them), so
    Redis drops its blocked waits (a wait on the outbox's ready list would take numbers for ever). With ``supervised=True`` it runs what `inbox worker` runs: the product's
    WorkerSupervisor, which starts a new arq worker whenever one ends (e.g. Redis went away).
    """

    _graveyard: list[Any] = []  # killed loops and their tasks stay referenced: never finalised

    def __init__(self, settings: Any, database: Any, *, supervised: bool = False) -> None:
        import threading

        self.settings = settings
        self.database = database
        self.supervised = supervised
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.main: asyncio.Task[None] | None = None
        self.worker: Any = None
        self.supervisor: Any = None
        self.runtime: Any = None

    def start(self) -> ThreadWorker:
        self.thread.start()
        assert self.ready.wait(20), "worker thread did not start"
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        # Kept: the loop holds tasks only weakly, and while arq waits on a Redis read nothing else
        # holds this chain (a StreamReaderProtocol refers to its reader weakly), so an unreferenced
        # main task can be garbage-collected mid-await: the worker would silently stop.
        self.main = self.loop.create_task(self._main())
        self.loop.run_forever()

    async def _main(self) -> None:
        from app.runtime import Runtime
        from workers.settings import build_worker
        from workers.supervisor import WorkerSupervisor

        runtime = self.runtime = Runtime(self.settings)
        runtime.db = self.database
        await runtime.start()
        if self.supervised:
            self.supervisor = WorkerSupervisor(runtime, first_backoff=0.2, max_backoff=1.0)
            self.ready.set()
            await self.supervisor.run()
        else:
            self.worker = build_worker(runtime, handle_signals=False, owns_runtime=False)
            self.ready.set()
            await self.worker.async_run()

    def kill(self) -> None:
        import socket

        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        for client in (self.runtime.redis, self.runtime.arq):
            pool = client.connection_pool
            for connection in [*pool._available_connections, *pool._in_use_connections]:
                writer = getattr(connection, "_writer", None)
                if writer is not None:
                    with contextlib.suppress(OSError):
                        writer.transport.get_extra_info("socket").shutdown(socket.SHUT_RDWR)
        # The loop keeps its tasks only weakly: keep them too, or collecting them later would run
        # their finally blocks (closing sockets, awaiting) in whatever thread the GC happens in.
        ThreadWorker._graveyard.append((self.loop, asyncio.all_tasks(self.loop)))
