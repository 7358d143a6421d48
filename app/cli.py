"""The `inbox` command: run (all-in-one), web, worker, sandbox, create-user."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from pathlib import Path

import uvicorn
from pydantic import SecretStr

from app import tracing
from app.config import Settings, get_settings
from app.correlation import TrustedProxies
from app.logging import configure_logging, get_logger

log = get_logger("inbox")


def kept_secret(data_dir: Path, name: str, size: int = 48) -> str:
    """Generated once and kept under the data dir (0600), so it survives restarts."""
    path = data_dir / name
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(size)
    path.write_text(value)
    path.chmod(0o600)
    return value


def _fail(what: str, message: str, code: int = 3) -> int:
    """One line for the operator, no traceback."""
    print(f"inbox {what}: {message}", file=sys.stderr, flush=True)
    return code


def database_reachable(url: str, timeout_ms: int = 5000) -> str | None:
    """None when the MongoDB server at ``url`` answers a ping, else why not (one line)."""
    if url.startswith("mongomock://"):
        return None
    from pymongo import MongoClient
    from pymongo.errors import ConfigurationError, InvalidURI, PyMongoError

    from app.db import redact_url

    try:
        client: MongoClient = MongoClient(url, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms)
    except (ConfigurationError, InvalidURI, ValueError) as error:
        return f"INBOX_MONGODB_URL is not a valid MongoDB URL ({error})"
    try:
        client.admin.command("ping")
        return None
    except PyMongoError as error:
        return f"MongoDB at {redact_url(url)} is not reachable ({type(error).__name__})"
    finally:
        client.close()


def server_config(app, host: str, port: int, trusted_proxies: str = "") -> uvicorn.Config:
    """How our servers run under uvicorn. Forwarding headers are believed only from ``trusted_proxies``
    (INBOX_TRUSTED_PROXIES): uvicorn's default trusts any loopback peer, which let anyone on the host,
    or a proxy that passes the header through, choose the address sign-in throttles count by."""
    proxies = [p.strip() for p in trusted_proxies.split(",") if p.strip()]
    # Our own wrapper of uvicorn's proxy middleware: it also marks what a trusted proxy forwarded, whose X-Request-ID
    # is then believed (app/correlation.py).
    served = TrustedProxies(app, proxies) if proxies else app
    return uvicorn.Config(served, host=host, port=port, log_level="warning", log_config=None, ws="websockets-sansio",
                          proxy_headers=False, lifespan="on")


def _serve(app, host: str, port: int, trusted_proxies: str = "") -> None:
    server = uvicorn.Server(server_config(app, host, port, trusted_proxies))
    try:
        server.run()
    except KeyboardInterrupt:
        # uvicorn shuts down cleanly on Ctrl-C / SIGINT, then raises the signal again for the caller:
        # a clean stop, not an error to print a traceback for.
        pass


def cmd_run(args: argparse.Namespace) -> int:
    """Web + worker (+ sandbox) in one process; an embedded database and Redis where no URL is set."""
    from app.embedded import EmbeddedServerError, port_taken
    from app.embedded_mongo import EmbeddedMongo
    from app.embedded_redis import EmbeddedRedis

    base = get_settings()
    sandbox = args.sandbox or args.demo
    host = args.host or base.host
    port = args.port or base.port
    overrides: dict = {"host": host, "port": port}
    if port_taken(port) and host in ("127.0.0.1", "0.0.0.0", "localhost"):
        return _fail("run", f"port {port} is already in use (choose another with --port or INBOX_PORT)")
    try:
        if not base.secret_key:
            overrides["secret_key"] = SecretStr(kept_secret(base.data_dir, "secret_key"))
    except OSError as error:
        return _fail("run", f"data directory {base.data_dir} is not writable ({error.strerror or error})")
    if "INBOX_PUBLIC_URL" not in os.environ:
        overrides["public_url"] = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    if sandbox and "INBOX_GRAPH_API_URL" not in os.environ:
        overrides["graph_api_url"] = f"http://127.0.0.1:{port}/sandbox/graph"
    servers: list = []
    try:
        if base.mongodb_url:
            problem = database_reachable(base.mongodb_url)
            if problem:
                return _fail("run", problem)
        else:
            database = EmbeddedMongo(base.data_dir / "db", avoid={port}).start()
            servers.append(database)
            overrides["mongodb_url"] = database.url
            log.info("embedded database started", port=database.port, data=str(database.directory))
        if not base.redis_url:
            redis_server = EmbeddedRedis(base.data_dir / "redis", avoid={port}).start()
            servers.append(redis_server)
            overrides["redis_url"] = redis_server.url
            log.info("embedded redis started", port=redis_server.port)
        settings = base.model_copy(update=overrides)
        from app.main import create_app

        app = create_app(settings, sandbox=sandbox, inline_worker=True, demo=args.demo, freeze_startup_objects=True,
                         embedded=next((s for s in servers if isinstance(s, EmbeddedMongo)), None))
        _serve(app, host, port, settings.trusted_proxies)
    except EmbeddedServerError as error:
        return _fail("run", str(error))
    finally:
        for server in reversed(servers):
            server.stop()
    return 0


def _require_production_settings(settings: Settings, what: str) -> bool:
    missing = settings.missing_for_production()
    if missing:
        print(
            f"inbox {what}: refusing to start, {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set.\n"
            f"`inbox {what}` runs as a separate process that shares MongoDB and Redis with the others. "
            "Set them, or use `inbox run` for everything in one process.",
            file=sys.stderr,
        )
        return False
    return True


def cmd_web(args: argparse.Namespace) -> int:
    settings = get_settings()
    if not _require_production_settings(settings, "web"):
        return 2
    problem = database_reachable(settings.mongodb_url)
    if problem:
        return _fail("web", problem)
    from app.main import create_app

    port = args.port or settings.port
    _serve(create_app(settings.model_copy(update={"port": port}), freeze_startup_objects=True),
           args.host or settings.host, port, settings.trusted_proxies)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    settings = get_settings()
    if not _require_production_settings(settings, "worker"):
        return 2
    problem = database_reachable(settings.mongodb_url)
    if problem:
        return _fail("worker", problem)
    from workers.supervisor import run_worker_process

    # Reconnects by itself when Redis goes away (a new arq worker, with backoff); a failure to
    # start (Redis or MongoDB unreachable) raises, exiting non-zero for the process manager.
    return run_worker_process(settings)


def cmd_sandbox(args: argparse.Namespace) -> int:
    from app.sandbox import create_sandbox_app

    settings = get_settings()
    port = args.port or settings.port
    print(f"Cloud API sandbox on http://{args.host}:{port}/sandbox/graph/{settings.graph_api_version}/", flush=True)
    from app.sandbox.state import SandboxState

    _serve(create_sandbox_app(SandboxState(control_from=settings.sandbox_control_from)), args.host, port)
    return 0


def cmd_create_user(args: argparse.Namespace) -> int:
    settings = get_settings()
    if settings.mongodb_url is None:
        print("inbox create-user: set INBOX_MONGODB_URL (with `inbox run`, the embedded database's URL is in its log).",
              file=sys.stderr)
        return 2
    problem = database_reachable(settings.mongodb_url)
    if problem:
        return _fail("create-user", problem)

    async def create() -> str:
        from app.db import Database
        from app.domains.workspaces.models import Workspace
        from app.domains.workspaces.services import AccountsOfPeople

        db = Database(settings.mongodb_url, settings.mongodb_database)
        await db.connect()
        try:
            people = AccountsOfPeople()
            name = args.workspace or "My workspace"
            workspace = await Workspace.find_one(Workspace.name == name)
            if workspace is None:
                workspace = await Workspace(name=name).insert()
            user = await people.create_user(workspace.id, args.email, args.password, args.role)
            return f"created {user.role.value} {user.email} in workspace {workspace.name!r}"
        finally:
            db.close()

    from app.errors import AppError

    try:
        print(asyncio.run(create()))
    except AppError as error:
        print(f"inbox create-user: {error.message} {error.details or ''}".strip(), file=sys.stderr)
        return 1
    return 0


def cmd_reindex_search(args: argparse.Namespace) -> int:
    """Search tokens for contacts and messages stored before the inbox search used them."""
    settings = get_settings()
    if settings.mongodb_url is None:
        print("inbox reindex-search: set INBOX_MONGODB_URL.", file=sys.stderr)
        return 2
    problem = database_reachable(settings.mongodb_url)
    if problem:
        return _fail("reindex-search", problem)

    async def reindex() -> dict[str, int]:
        from app.db import Database
        from app.domains.conversations.search import backfill_search_tokens

        db = Database(settings.mongodb_url, settings.mongodb_database)
        await db.connect()
        try:
            return await backfill_search_tokens()
        finally:
            db.close()

    done = asyncio.run(reindex())
    print(f"search tokens added: {done['contacts']} contacts, {done['messages']} messages")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inbox", description="wa-inbox: a self-hosted WhatsApp Business inbox")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="web + worker (+ sandbox) in one process, embedded defaults")
    run.add_argument("--host")
    run.add_argument("--port", type=int)
    run.add_argument("--sandbox", action="store_true", help="mount the Cloud API sandbox at /sandbox")
    run.add_argument("--demo", action="store_true", help="seed a demo workspace on the sandbox (implies --sandbox)")
    run.set_defaults(func=cmd_run)

    web = sub.add_parser("web", help="the web process (production)")
    web.add_argument("--host")
    web.add_argument("--port", type=int)
    web.set_defaults(func=cmd_web)

    worker = sub.add_parser("worker", help="the background worker process (production)")
    worker.set_defaults(func=cmd_worker)

    sandbox = sub.add_parser("sandbox", help="the Cloud API sandbox alone")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int)
    sandbox.set_defaults(func=cmd_sandbox)

    create_user = sub.add_parser("create-user", help="add a user (creates the workspace if needed)")
    create_user.add_argument("--email", required=True)
    create_user.add_argument("--password", required=True)
    create_user.add_argument("--role", choices=["admin", "supervisor", "agent"], required=True)
    create_user.add_argument("--workspace")
    create_user.set_defaults(func=cmd_create_user)
    reindex = sub.add_parser("reindex-search", help="add inbox search tokens to contacts and messages stored before")
    reindex.set_defaults(func=cmd_reindex_search)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    tracing.setup()  # on when OTEL_EXPORTER_OTLP_ENDPOINT is set, before anything connects
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
