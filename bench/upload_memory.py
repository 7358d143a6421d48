"""Benchmark: the memory `inbox web` takes to receive a large upload.

    .venv/bin/python bench/upload_memory.py [--mb 60] [--uploads 3]

Starts its own Redis, the database (INBOX_MONGODB_URL when set, else an embedded SecantusDB server)
and `inbox web` as a child process, exactly as deployed (no worker: the sends stay queued, which
costs the web process nothing). Seeds, through the product's services, a workspace with an admin
and an API key, one number and one conversation whose customer wrote. Then uploads ``--uploads``
PDFs of ``--mb`` MB (different bytes each time: no deduplication) through each route:

- ``POST /api/v1/media`` (the JSON API, API key);
- ``POST /inbox/c/{id}/attachments`` (the agent's composer: signed in, CSRF header, as inbox.js).

For each upload it prints the web process's peak resident memory over its resident memory just
before the upload (Linux: ``/proc/<pid>/clear_refs`` resets the peak, ``VmHWM`` reads it), and the
time the answer took. One small upload per route warms the code paths first, not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import counting  # noqa: E402
from bench.sandbox import _free_port, wait_live  # noqa: E402

API_KEY = "bench-api-key-0123456789abcdefghijklmnopqrstuvwxyz"
SECRET_KEY = "u" * 48
EMAIL = "bench@example.com"
PASSWORD = "bench password 123"
MB = 1024 * 1024


async def seed(env: dict[str, str]) -> str:
    """The workspace (bootstrapped with its admin and API key), a number and a conversation; its id."""
    from app.config import Settings
    from app.db import utcnow
    from app.domains.accounts.services import NewAccount
    from app.domains.contacts.services import ContactService
    from app.domains.conversations.models import MessagePreview
    from app.domains.conversations.services import ConversationService
    from app.domains.workspaces.models import Workspace
    from app.logging import configure_logging
    from app.runtime import Runtime

    configure_logging("WARNING")
    settings = Settings(_env_file=None, mongodb_url=env["INBOX_MONGODB_URL"],
                        mongodb_database=env["INBOX_MONGODB_DATABASE"], redis_url=env["INBOX_REDIS_URL"],
                        secret_key=SecretStr(SECRET_KEY), data_dir=Path(env["INBOX_DATA_DIR"]),
                        admin_email=EMAIL, admin_password=SecretStr(PASSWORD), admin_api_key=SecretStr(API_KEY),
                        log_level="WARNING")
    runtime = Runtime(settings)
    await runtime.start()
    try:
        workspace = await Workspace.find_one({})
        account = await runtime.accounts.create(workspace.id, NewAccount(
            name="Bench", phone_number_id="770001", waba_id="660001", display_phone_number="+15553000001",
            access_token="bench-token", app_secret="bench-app-secret", mps=80))
        contact, _ = await ContactService().upsert(workspace.id, wa_id="15560000001")
        conversation, _ = await ConversationService().open_for(workspace.id, account.id, contact.id)
        await ConversationService().record_inbound(conversation, utcnow(), MessagePreview(text="hi"))
        return str(conversation.id)
    finally:
        await runtime.stop()


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def _reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # Linux >= 4.0: VmHWM starts again from VmRSS


def pdf(size: int) -> bytes:
    return b"%PDF-1.4\n" + os.urandom(size - 16) + b"\n%%EOF\n"


def measured(pid: int, send: Any) -> dict[str, float]:
    time.sleep(0.5)  # let the last answer's garbage go
    before = _status_kb(pid, "VmRSS")
    _reset_peak(pid)
    started = time.perf_counter()
    answer = send()
    elapsed = time.perf_counter() - started
    if answer.status_code >= 300:
        raise RuntimeError(f"upload refused: {answer.status_code} {answer.text[:200]}")
    peak = _status_kb(pid, "VmHWM")
    return {"rss_before_mb": before / 1024, "peak_growth_mb": (peak - before) / 1024, "seconds": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=60, help="size of each uploaded document")
    parser.add_argument("--uploads", type=int, default=3, help="uploads per route")
    args = parser.parse_args()
    if not Path("/proc/self/clear_refs").exists():
        raise SystemExit("this benchmark reads the web process's peak memory from /proc (Linux)")
    from app.embedded_redis import EmbeddedRedis

    tmp = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    web_port = _free_port()
    base = f"http://127.0.0.1:{web_port}"
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, tmp, True)  # last, once every server has stopped
        redis = stack.enter_context(EmbeddedRedis(tmp / "redis", persist=False))
        db = stack.enter_context(counting.database(tmp))
        counting.headline(f"upload memory benchmark ({args.mb} MB documents)", db)
        database = counting.database_name("upload")
        stack.callback(counting.drop_databases, db, [database])
        env = {k: v for k, v in os.environ.items() if not k.startswith("INBOX_")}
        env.update({"INBOX_MONGODB_URL": db.url, "INBOX_MONGODB_DATABASE": database, "INBOX_REDIS_URL": redis.url,
                    "INBOX_SECRET_KEY": SECRET_KEY, "INBOX_DATA_DIR": str(tmp / "data"), "INBOX_PUBLIC_URL": base,
                    "INBOX_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)})
        conversation_id = asyncio.run(seed(env))
        web = subprocess.Popen([sys.executable, "-c", "import sys; from app.cli import main; sys.exit(main(sys.argv[1:]))",
                                "web", "--port", str(web_port)], env=env, cwd=ROOT)

        def stop() -> None:
            web.terminate()
            try:
                web.wait(timeout=15)
            except subprocess.TimeoutExpired:
                web.kill()

        stack.callback(stop)
        wait_live(f"{base}/health/live", [web], "inbox web")

        api = stack.enter_context(httpx.Client(base_url=base, timeout=300,
                                               headers={"Authorization": f"Bearer {API_KEY}"}))
        agent = stack.enter_context(httpx.Client(base_url=base, timeout=300, follow_redirects=True))
        login = agent.get("/login")
        token = re.search(r'name="_csrf_token" value="([^"]+)"', login.text).group(1)
        agent.post("/login", data={"email": EMAIL, "password": PASSWORD, "_csrf_token": token}).raise_for_status()
        inbox = agent.get("/inbox")
        headers = {"X-CSRFToken": re.search(r'"X-CSRFToken": "([^"]+)"', inbox.text).group(1), "HX-Request": "true"}

        def via_api(data: bytes) -> httpx.Response:
            return api.post("/api/v1/media", files={"file": ("bench.pdf", data, "application/pdf")})

        def via_inbox(data: bytes) -> httpx.Response:
            return agent.post(f"/inbox/c/{conversation_id}/attachments", headers=headers,
                              files={"file": ("bench.pdf", data, "application/pdf")}, data={"caption": "bench"})

        routes = {"POST /api/v1/media": via_api, "POST /inbox/c/{id}/attachments": via_inbox}
        for send in routes.values():  # warm-up, not counted
            measured(web.pid, lambda send=send: send(pdf(64 * 1024)))
        print(f"web process: {_status_kb(web.pid, 'VmRSS') / 1024:.0f} MB resident after warm-up")
        worst = 0.0
        for name, send in routes.items():
            for k in range(args.uploads):
                data = pdf(args.mb * MB)
                figures = measured(web.pid, lambda send=send, data=data: send(data))
                worst = max(worst, figures["peak_growth_mb"])
                print(f"  {name:<34} upload {k + 1}: peak RSS +{figures['peak_growth_mb']:6.1f} MB over "
                      f"{figures['rss_before_mb']:.0f} MB, answered in {figures['seconds']:.2f} s", flush=True)
                del data
        print(f"largest peak RSS growth of `inbox web` for a {args.mb} MB upload: {worst:.1f} MB")


if __name__ == "__main__":
    main()
