"""Helpers for the contact import and export tests: a workspace with an admin key and an agent key, CSV
uploads through the API, and worker slices run in the test's own loop (as the arq tasks run them)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from app.domains.catalog.models import ContactAttribute
from app.domains.contact_files.export_jobs import ContactExports
from app.domains.contact_files.importing import ContactImporter
from app.domains.contact_files.models import ContactExport, ContactImport
from app.domains.workspaces.models import Role
from app.runtime import Runtime
from tests.support.inbound import Setup, make_setup

AGENT_EMAIL = "agent@example.com"
AGENT_PASSWORD = "agent password 123"


@dataclass
class Env:
    client: Any
    setup: Setup
    agent_key: str

    @property
    def runtime(self) -> Runtime:
        return self.client.app.state.runtime

    @property
    def workspace_id(self):
        return self.setup.workspace_id

    @property
    def auth(self) -> dict[str, str]:
        return self.setup.auth

    @property
    def agent_auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.agent_key}"}


async def make_env(client_factory) -> Env:
    client = await client_factory(settings={"api_rate_limit_per_minute": 100_000})
    runtime = client.app.state.runtime
    setup = await make_setup(runtime)
    agent = await runtime.people.create_user(setup.workspace_id, AGENT_EMAIL, AGENT_PASSWORD, Role.AGENT, "Agent")
    _, agent_key = await runtime.people.create_api_key(setup.workspace_id, "agent key", "agent", agent.id)
    return Env(client, setup, agent_key)


async def define(env: Env, key: str, name: str, type_: str, options: list[str] | None = None) -> None:
    await ContactAttribute(workspace_id=env.workspace_id, key=key, name=name, type=type_, options=options or []).insert()


async def upload(env: Env, data: bytes, *, name: str = "contacts.csv", options: dict | None = None,
                 headers: dict[str, str] | None = None) -> httpx.Response:
    fields = {"options": json.dumps(options)} if options is not None else None
    return await env.client.post("/api/v1/contacts/imports", headers=headers or env.auth, data=fields,
                                 files={"file": (name, data, "text/csv")})


async def start(env: Env, import_id: str, **options: Any) -> httpx.Response:
    return await env.client.post(f"/api/v1/contacts/imports/{import_id}/start", headers=env.auth, json=options)


async def no_queue(import_id: str, generation: int) -> None:
    """Slices are run by the test itself (run_import), not through Redis."""


async def run_import(import_id: str, importer: ContactImporter | None = None, max_slices: int = 200) -> ContactImport:
    """Every slice until the import ends, as the worker runs them one after the other."""
    importer = importer or ContactImporter()
    for _ in range(max_slices):
        job = await ContactImport.get(import_id)
        if job.status != "running":
            return job
        await importer.run(import_id, job.generation, no_queue)
    raise AssertionError("the import did not end")


async def imported(env: Env, data: bytes, **options: Any) -> ContactImport:
    """Upload, start with ``options``, run to the end."""
    made = await upload(env, data, options=options)
    assert made.status_code == 201, made.text
    return await run_import(made.json()["id"])


async def run_export(export_id: str, exporter: ContactExports | None = None, max_slices: int = 200) -> ContactExport:
    exporter = exporter or ContactExports()
    for _ in range(max_slices):
        job = await ContactExport.get(export_id)
        if job.status != "running":
            return job
        await exporter.run(export_id, job.generation, no_queue)
    raise AssertionError("the export did not end")


def csv_bytes(rows: list[list[str]], *, delimiter: str = ",", encoding: str = "utf-8", newline: str = "\n") -> bytes:
    import csv
    import io

    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator=newline).writerows(rows)
    return buffer.getvalue().encode(encoding)
