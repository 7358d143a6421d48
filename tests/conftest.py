"""Test setup: a clean INBOX_* environment, our own Redis and MongoDB-wire-protocol server on free ports.

One database server per test session (SecantusDB, the embedded server of `inbox run`) and a fresh
database per test, dropped afterwards. ``INBOX_TEST_DATABASE=mongomock`` runs the same tests on
mongomock-motor in this process instead: a quick local lane, not what CI runs.

Apps under test run on the test's own event loop (httpx's ASGI transport + asgi-lifespan), so a test
can query Documents directly: motor binds a client to the first loop that uses it, and Litestar's
AsyncTestClient would run the app on a second loop in a thread.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import traceback

# Settings are read from the environment: drop anything the developer's shell exported.
for _name in [n for n in os.environ if n.startswith("INBOX_")]:
    del os.environ[_name]

import itertools  # noqa: E402

import httpx  # noqa: E402
import pymongo  # noqa: E402
import pytest  # noqa: E402
import redis  # noqa: E402
from asgi_lifespan import LifespanManager  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from app.config import Settings  # noqa: E402
from app.embedded_mongo import EmbeddedMongo  # noqa: E402
from app.embedded_redis import EmbeddedRedis  # noqa: E402
from app.main import create_app  # noqa: E402
from tests.support.logs import STOPS_THAT_HUNG, quiet_logging  # noqa: E402

quiet_logging()

QUICK_LANE = os.environ.get("INBOX_TEST_DATABASE", "").lower() == "mongomock"
_database_names = itertools.count(1)

TEST_SECRET = "test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real redis-server this test session started; only this one is ever flushed."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _clean_redis(request):
    if "redis_server" in request.fixturenames:
        server = request.getfixturevalue("redis_server")
        redis.Redis.from_url(server.url).flushall()
    yield


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory):
    """The MongoDB-wire-protocol server of this test session (None in the mongomock quick lane)."""
    if QUICK_LANE:
        yield None
        return
    server = EmbeddedMongo(tmp_path_factory.mktemp("mongo")).start(timeout=60)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mongo_admin(mongo_server):
    """A plain pymongo client of the session's server, for dropping each test's database."""
    if mongo_server is None:
        yield None
        return
    client: pymongo.MongoClient = pymongo.MongoClient(mongo_server.url)
    yield client
    client.close()


@pytest.fixture
def mongodb(mongo_server, mongo_admin) -> tuple[str, str]:
    """(URL, database name): a fresh database for this test, dropped after it."""
    name = f"test_{os.getpid()}_{next(_database_names)}"
    if mongo_server is None:
        yield "mongomock://", name
        return
    yield mongo_server.url, name
    mongo_admin.drop_database(name)


@pytest.fixture
def settings(redis_server, mongodb, tmp_path) -> Settings:
    url, name = mongodb
    return Settings(_env_file=None, redis_url=redis_server.url, secret_key=SecretStr(TEST_SECRET),
                    mongodb_url=url, mongodb_database=name, data_dir=tmp_path, public_url="http://testserver.local")


class AppClient(httpx.AsyncClient):
    """An httpx client calling ``app`` in this event loop, after running its lifespan startup."""

    def __init__(self, app, base_url: str) -> None:
        super().__init__(transport=httpx.ASGITransport(app=app, client=("testclient", 50000)), base_url=base_url,
                         headers={"user-agent": "testclient"}, follow_redirects=True)
        self.app = app
        self._lifespan_task: asyncio.Task | None = None
        self._lifespan_end = ""

        async def watched(scope, receive, send):  # the task that runs the app's lifespan, for the diagnosis below
            self._lifespan_task = asyncio.current_task()
            try:
                await app(scope, receive, send)
            except BaseException as exc:  # how it ended, if not by the shutdown (a CancelledError: from where)
                self._lifespan_end = "".join(traceback.format_exception(exc, limit=-25))
                raise
            self._lifespan_end = "returned"

        self._lifespan = LifespanManager(watched, startup_timeout=60, shutdown_timeout=60)

    async def __aenter__(self) -> AppClient:
        await self._lifespan.__aenter__()
        await super().__aenter__()
        return self

    async def __aexit__(self, *exc) -> None:
        await super().__aexit__(*exc)
        try:
            await self._lifespan.__aexit__(*exc)
        except TimeoutError:
            # The app's shutdown hung: say where each of its tasks is waiting (to find what does not end),
            # in full here (the test's captured stderr) and in one line per task at the end of the run.
            SHUTDOWN_HANGS.append((os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0], _waiting_tasks()))
            lifespan = self._lifespan_task
            print(f"--- the app's lifespan task: {lifespan!r} done={lifespan.done() if lifespan else None} "
                  f"cancelled={lifespan.cancelled() if lifespan else None}; it ended: {self._lifespan_end or '-'}",
                  file=sys.stderr)
            if lifespan is not None and not lifespan.done():
                lifespan.print_stack(limit=20, file=sys.stderr)
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    print(f"--- task {task.get_name()} still running at the shutdown timeout:", file=sys.stderr)
                    task.print_stack(limit=12, file=sys.stderr)
            raise


SHUTDOWN_HANGS: list[tuple[str, list[str]]] = []
"""(test, where each task was waiting) for every app whose shutdown hung: printed by pytest_terminal_summary."""


def _waiting_tasks() -> list[str]:
    """One line per task still running: its name and where it waits."""
    from workers.supervisor import where_waiting

    return [where_waiting(t) for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]


def pytest_terminal_summary(terminalreporter):
    """Where hung shutdowns waited, just above the short summary (the part of a CI log people see): an app's
    that failed its test, and a worker's that its time bound ended (its test passed, but something hung)."""
    for test, tasks in SHUTDOWN_HANGS:
        terminalreporter.write_line(f"app shutdown hung in {test}; tasks still running:")
        for line in sorted(set(tasks))[:15]:
            terminalreporter.write_line(f"  {line}")
    for test, line in STOPS_THAT_HUNG[:5]:
        terminalreporter.write_line(f"a worker's stop hung in {test}: {line[:600]}")


@pytest.fixture
def make_client(settings):
    """Builds an app with options and returns a client that ran its lifespan (closed by client_factory)."""

    async def factory(**options) -> AppClient:
        app_settings = settings.model_copy(update=options.pop("settings", {}))
        client = AppClient(create_app(app_settings, **options), base_url=app_settings.public_url)
        await client.__aenter__()
        return client

    return factory


@pytest.fixture
async def client_factory(make_client):
    made = []

    async def factory(**options):
        client = await make_client(**options)
        made.append(client)
        return client

    yield factory
    for client in made:
        await client.__aexit__(None, None, None)


@pytest.fixture
async def client(client_factory) -> AppClient:
    return await client_factory()


def csrf_from(html: str) -> str:
    match = re.search(r'name="_csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF field"
    return match.group(1)


async def sign_in(client: AppClient, email: str, password: str):
    page = await client.get("/login")
    return await client.post("/login", data={"email": email, "password": password, "_csrf_token": csrf_from(page.text)},
                             follow_redirects=False)
