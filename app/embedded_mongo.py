"""The embedded database of `inbox run` and the tests: SecantusDB's MongoDB-wire-protocol server.

SecantusDB (PyPI, GPL-2.0-only) stores data in WiredTiger, the engine mongod ships, on disk under
``INBOX_DATA_DIR/db``. It runs only as a separate process that we talk to over the wire protocol,
exactly as we talk to mongod: it is never imported, it is not a runtime dependency (the
``embedded`` extra; `make run` and `make test` install it) and it is not in the production image.
It is single-node and its planner is slower than mongod's on large collections: it is for trying
the product and small single-machine use; production runs MongoDB (docker-compose.yml).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from app.embedded import EmbeddedServer, EmbeddedServerError


def secantus_binary() -> str:
    """The ``secantusd-py`` launcher of this environment (beside our Python, else on PATH)."""
    beside = Path(sys.executable).with_name("secantusd-py")
    if beside.exists():
        return str(beside)
    found = shutil.which("secantusd-py")
    if not found:
        raise EmbeddedServerError(
            "the embedded database needs SecantusDB (pip install 'wa-inbox[embedded]'), "
            "or set INBOX_MONGODB_URL to a MongoDB server")
    return found


class EmbeddedMongo(EmbeddedServer):
    """A SecantusDB server child process on a loopback port, its WiredTiger files in ``directory``."""

    kind = "database"
    stop_timeout = 20.0  # WiredTiger writes a checkpoint on a clean stop

    @property
    def url(self) -> str:
        # retryWrites=false: SecantusDB keeps a record per retryable write and sorts all of them on
        # every write, so with the driver's default inserts slow from 1 ms to 20+ ms after ~10,000
        # writes. A single node on loopback gains nothing from retrying. (mongod: keep the default.)
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true&retryWrites=false"

    def command(self) -> list[str]:
        config = self.directory / "secantusd.toml"
        if not config.exists():
            # Our own (empty) file: otherwise the launcher reads ./secantusd.toml or ~/.secantus/ if present.
            config.write_text("# wa-inbox's embedded database: every setting is given on the command line\n")
        return [
            secantus_binary(),
            "--config", str(config.resolve()),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--storage-path", str((self.directory / "data").resolve()),
            "--log-level", "WARNING",
        ]

    def answers(self) -> bool:
        client: MongoClient = MongoClient(self.url, serverSelectionTimeoutMS=250, connectTimeoutMS=250)
        try:
            client.admin.command("ping")
            return True
        except PyMongoError:
            return False
        finally:
            client.close()
