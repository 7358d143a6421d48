"""Test setup: a clean INBOX_* environment, our own Redis on a free port, apps on in-memory Mongo."""

from __future__ import annotations

import os
import re

# Settings are read from the environment: drop anything the developer's shell exported.
for _name in [n for n in os.environ if n.startswith("INBOX_")]:
    del os.environ[_name]

import pytest  # noqa: E402
import redis  # noqa: E402
from litestar.testing import AsyncTestClient  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from app.config import Settings  # noqa: E402
from app.embedded_redis import EmbeddedRedis  # noqa: E402
from app.main import create_app  # noqa: E402

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


@pytest.fixture
def settings(redis_server, tmp_path) -> Settings:
    return Settings(_env_file=None, redis_url=redis_server.url, secret_key=SecretStr(TEST_SECRET),
                    data_dir=tmp_path, public_url="http://testserver.local")


@pytest.fixture
def make_client(settings):
    """Builds an app with options and yields an AsyncTestClient that ran its lifespan."""
    clients = []

    async def factory(**options) -> AsyncTestClient:
        app_settings = settings.model_copy(update=options.pop("settings", {}))
        client = AsyncTestClient(create_app(app_settings, **options), base_url=app_settings.public_url)
        await client.__aenter__()
        clients.append(client)
        return client

    yield factory
    # teardown happens in the async fixture below


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
async def client(client_factory) -> AsyncTestClient:
    return await client_factory()


def csrf_from(html: str) -> str:
    match = re.search(r'name="_csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF field"
    return match.group(1)


async def sign_in(client: AsyncTestClient, email: str, password: str):
    page = await client.get("/login")
    return await client.post("/login", data={"email": email, "password": password, "_csrf_token": csrf_from(page.text)},
                             follow_redirects=False)
