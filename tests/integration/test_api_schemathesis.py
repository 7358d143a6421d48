"""Schemathesis against /schema/openapi.json: every /api/v1 operation, generated requests with a valid
admin key, on a real server (the Cloud API sandbox stands in for Meta). Must find 0 server errors and
0 answers off the schema (status codes, content types, headers, bodies).

Bounded: a few examples per operation (INBOX_SCHEMATHESIS_EXAMPLES raises it for a deeper run).
"""

from __future__ import annotations

import asyncio
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.config import Settings
from app.db import Database
from app.main import create_app
from tests.conftest import TEST_SECRET
from tests.support.api_world import build_world
from tests.support.servers import free_port, serve

EXAMPLES = int(os.environ.get("INBOX_SCHEMATHESIS_EXAMPLES", "6"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
KEY = "wai_schemathesis-key-000000000000000001"
# Operations that would cut the run's own branch: revoking keys or deactivating users could hit
# the key in use (ids are random, but a fuzzer may find the listed ones).
SKIP = {("DELETE", "/api/v1/api-keys/{key_id}")}


@pytest.fixture(scope="module")
def api_server(redis_server, mongo_server, mongo_admin, tmp_path_factory):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app_settings = Settings(_env_file=None, redis_url=redis_server.url, secret_key=SecretStr(TEST_SECRET),
                            mongodb_url=mongo_server.url if mongo_server else "mongomock://",
                            mongodb_database="schemathesis", data_dir=tmp_path_factory.mktemp("schemathesis"),
                            public_url=base, graph_api_url=f"{base}/sandbox/graph", api_rate_limit_per_minute=100_000)
    app = create_app(app_settings, sandbox=True)

    async def seed():
        # Before the server starts, through a client of this loop's own: motor binds a client to one loop,
        # and the server's lifespan (in its thread) then binds the Documents to the runtime's client.
        database = Database(app_settings.mongodb_url, app_settings.mongodb_database)
        await database.connect()
        try:
            return await build_world(app.state.runtime, key=KEY)
        finally:
            database.close()

    world = asyncio.run(seed())
    with serve(app, port=port):
        number = world.account
        app.state.sandbox.register_number(number.phone_number_id, number.waba_id, number.display_phone_number,
                                          world.token, world.app_secret, None)
        yield base, world
    if mongo_admin is not None:
        mongo_admin.drop_database("schemathesis")


def test_every_operation_conforms_to_the_schema(api_server):
    """One hypothesis run per operation (schemathesis' pytest plugin does not support pytest 9 yet)."""
    base, world = api_server
    schema = schemathesis.openapi.from_url(f"{base}/schema/openapi.json").include(path_regex="^/api/v1/")
    headers = {"Authorization": f"Bearer {KEY}"}
    ids = world.ids_by_collection()
    turn = {"n": 0}

    def real_ids(case) -> None:
        """Every other case gets this workspace's real ids in its path, so handlers get past the 404."""
        turn["n"] += 1
        if turn["n"] % 2 or not case.path_parameters:
            return
        segments = case.path.split("/")
        for name in case.path_parameters:
            at = segments.index("{" + name + "}")
            if segments[at - 1] in ids:
                case.path_parameters[name] = ids[segments[at - 1]]

    failures: dict[str, str] = {}
    statuses: dict[int, int] = {}
    tested = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP:
            continue

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def run(case):
            real_ids(case)
            response = case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then report them all
            failures[f"{operation.method.upper()} {operation.path}"] = str(exc)[:1500]
        tested += 1
    print(f"schemathesis: {tested} operations, answers by status: {dict(sorted(statuses.items()))}")
    assert tested >= 40 and sum(n for code, n in statuses.items() if code < 300) >= tested
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
