"""MongoDB: a motor client and Beanie initialisation.

The URL is a MongoDB server's (production: mongod; `inbox run` and the tests: the embedded server of
app.embedded_mongo). ``mongomock://`` selects mongomock-motor in this process: an opt-in quick lane
for local unit runs, with correctness shims only (app.mongomock_compat) and no speed work.

Every tenant-owned Document derives from ``WorkspaceDocument`` and is queried through its
``scoped()`` / ``get_scoped()`` helpers, so no query can forget the workspace.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Self

from beanie import Document, PydanticObjectId, init_beanie
from beanie.odm.queries.find import FindMany
from bson.errors import InvalidId
from pydantic import Field
from pymongo.errors import ConnectionFailure

from app.errors import AppError, NotFound
from app.logging import get_logger

log = get_logger(__name__)


def utcnow() -> datetime:
    """Timezone-aware now, rounded to Mongo's millisecond precision so round trips compare equal."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def stored_id(document: Any) -> PydanticObjectId:
    """The id of a document read from (or written to) the database, for the type checker: Beanie
    types ``id`` as optional because a document built in memory has none until it is inserted."""
    if document.id is None:
        raise RuntimeError(f"{type(document).__name__} has no id: it was never stored")
    return document.id


def as_utc(value: datetime) -> datetime:
    """Mongo drivers may hand back naive datetimes (always UTC); make them aware."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_object_id(value: str | PydanticObjectId | None) -> PydanticObjectId | None:
    """An ObjectId from user input, or None when it is not one (callers answer 404)."""
    if isinstance(value, PydanticObjectId):
        return value
    if value is None:  # ObjectId(None) would be a brand-new id
        return None
    try:
        return PydanticObjectId(value)
    except (InvalidId, TypeError, ValueError):
        return None


class WorkspaceDocument(Document):
    """A Document owned by one workspace. Query it only through the scoped helpers."""

    workspace_id: PydanticObjectId
    created_at: datetime = Field(default_factory=utcnow)

    @classmethod
    def scoped(cls, workspace_id: PydanticObjectId, *filters: Any, **kwargs: Any) -> FindMany[Self]:
        """``find()`` restricted to one workspace."""
        return cls.find(cls.workspace_id == workspace_id, *filters, **kwargs)

    @classmethod
    async def find_one_scoped(cls, workspace_id: PydanticObjectId, *filters: Any) -> Self | None:
        """``find_one()`` restricted to one workspace."""
        return await cls.find_one(cls.workspace_id == workspace_id, *filters)

    @classmethod
    async def get_scoped(cls, workspace_id: PydanticObjectId, document_id: str | PydanticObjectId | None) -> Self:
        """The document with that id in that workspace, or NotFound (also for other workspaces' ids)."""
        oid = parse_object_id(document_id)
        found = None
        if oid is not None:
            found = await cls.find_one({"_id": oid, "workspace_id": workspace_id})
        if found is None:
            raise NotFound(f"{cls.__name__.lower()} not found", details={"id": str(document_id)})
        return found


def document_models() -> list[type[Document]]:
    """Every Document of the product (imported here, late, to keep domains independent)."""
    from app.domains import all_documents

    return all_documents()


MONGOMOCK_URL = "mongomock://"


def _motor_client_class() -> type:
    from motor.motor_asyncio import AsyncIOMotorClient

    class AnyLoopMotorClient(AsyncIOMotorClient):
        """motor binds a client to the first event loop that uses it (its operations are pymongo calls run
        in a thread pool, resolved on that loop). This one resolves them on whichever loop awaits: Beanie
        binds every Document to one client per process, and a process may run more than one loop (the
        tests run simulated worker processes on loops of their own). pymongo's client is thread-safe."""

        def get_io_loop(self) -> Any:
            try:
                return asyncio.get_running_loop()
            except RuntimeError:  # called outside a coroutine (close, finalisers)
                return super().get_io_loop()

    return AnyLoopMotorClient


def journaled(url: str) -> dict[str, Any]:
    """Writes are acknowledged once they are in the server's journal (``j: true``), unless the URL says
    otherwise. A standalone mongod (docker-compose.yml) acknowledges ``w: 1`` writes before its journal
    reaches the disk (every 100 ms): a crash then loses what was acknowledged meanwhile, such as a
    webhook answered 200 or a send answered 202. Measured on the embedded server killed with SIGKILL
    under a stream of inserts: 205 acknowledged inserts lost in 3 runs without it, none with it. A
    replica set's default ``w: majority`` journals anyway."""
    options = url.partition("?")[2].lower()
    if "journal=" in options or "w=0" in options:
        return {}
    return {"journal": True}


class DatabaseUnavailable(RuntimeError):
    """The database server could not be reached: the message is one line for the operator."""


# What the driver raises when the server is gone (ServerSelectionTimeoutError, AutoReconnect,
# NetworkTimeout, a full pool's WaitQueueTimeoutError): the request can be tried again later.
DATABASE_DOWN = (ConnectionFailure,)


def database_unavailable() -> AppError:
    """The answer while the database server is unreachable: 503, so clients (and Meta) retry."""
    return AppError("The database is not reachable right now. Try again in a few seconds.",
                    error_code="DATABASE_UNAVAILABLE", status_code=503, headers={"Retry-After": "5"})


class Database:
    """The Mongo client of this process and the Beanie binding of every Document."""

    def __init__(self, url: str | None, name: str, *, timeout_ms: int = 3000) -> None:
        if not url:
            raise ValueError("no MongoDB URL: set INBOX_MONGODB_URL (`inbox run` starts an embedded server)")
        self.url = url
        self.name = name
        self.in_memory = url.startswith(MONGOMOCK_URL)
        if self.in_memory:
            from mongomock_motor import AsyncMongoMockClient

            from app.mongomock_compat import patch_mongomock

            patch_mongomock()
            self.client: Any = AsyncMongoMockClient()
        else:
            # Short timeouts: with the server gone, a request answers 503 in seconds instead of hanging
            # (pymongo's defaults wait 30 s to select a server and forever on a socket).
            self.client = _motor_client_class()(url, tz_aware=True, serverSelectionTimeoutMS=timeout_ms,
                                             connectTimeoutMS=timeout_ms, socketTimeoutMS=max(timeout_ms, 10_000),
                                             **journaled(url))

    async def connect(self) -> None:
        if self.in_memory:
            log.warning("in-memory MongoDB (mongomock): data is lost when the process stops")
        else:
            try:
                await self.ping()
            except Exception as error:  # the driver's errors are many; all mean "not reachable"
                raise DatabaseUnavailable(f"MongoDB at {redact_url(self.url)} is not reachable: "
                                          f"{type(error).__name__}") from None
        await init_beanie(database=self.client[self.name], document_models=document_models())

    async def ping(self) -> Mapping[str, Any]:
        return await self.client.admin.command("ping")

    def close(self) -> None:
        self.client.close()


def redact_url(url: str) -> str:
    """A MongoDB URL without its password, for logs and messages."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        rest = f"{credentials.split(':', 1)[0]}:***@{host}"
    return f"{scheme}{sep}{rest}"
