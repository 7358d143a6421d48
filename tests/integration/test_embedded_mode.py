"""`inbox run` on its embedded database, as a new user runs it: data kept across restarts and crashes.

Real subprocesses: `inbox run` starts SecantusDB and redis-server as its own children.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from app.embedded import _alive
from tests.support.process import INBOX, inbox_process
from tests.support.servers import free_port

DEMO_ADMIN = "admin@demo.wa-inbox.test"
DEMO_CUSTOMER = "+15550109999"


def _csrf(html: str) -> str:
    return re.search(r'name="_csrf_token" value="([^"]+)"', html).group(1)


def _sign_in(http: httpx.Client, email: str, password: str) -> httpx.Response:
    return http.post("/login", data={"email": email, "password": password, "_csrf_token": _csrf(http.get("/login").text)})


def _printed_login(proc: subprocess.Popen) -> tuple[str, str]:
    """Reads `inbox run --demo`'s output up to the login it prints: (password, the line about the demo data)."""
    seen = []
    for line in proc.stdout:
        seen.append(line)
        match = re.search(r"password: (\S+)", line)
        if match:
            return match.group(1), proc.stdout.readline()
    raise AssertionError("no login printed:\n" + "".join(seen))


def _demo_api_key(base: str, password: str) -> dict[str, str]:
    """Signs in as the demo admin and creates an API key on the admin screen, as a user would."""
    with httpx.Client(base_url=base, follow_redirects=True) as http:
        assert _sign_in(http, DEMO_ADMIN, password).url.path == "/inbox"
        created = http.post("/admin/api-keys/", data={"name": "integration", "role": "admin",
                                                      "_csrf_token": _csrf(http.get("/admin/api-keys/").text)})
    return {"Authorization": f"Bearer {re.search(r'(wai_[A-Za-z0-9_-]+)', created.text).group(1)}"}


def _server_pids(data_dir: Path) -> list[int]:
    return [int((data_dir / kind / "server.pid").read_text()) for kind in ("db", "redis")
            if (data_dir / kind / "server.pid").exists()]


def _wait(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_restart_keeps_users_sessions_numbers_keys_and_conversations(tmp_path):
    with inbox_process("run", "--demo", data_dir=tmp_path) as (proc, base):
        password, seeded = _printed_login(proc)
        assert "demo data seeded" in seeded
        api = _demo_api_key(base, password)
        with httpx.Client(base_url=base, follow_redirects=True) as http:
            _sign_in(http, DEMO_ADMIN, password)
            session_cookie = http.cookies.get("inbox_session")
        user = httpx.post(base + "/api/v1/users", headers=api, json={
            "email": "new.agent@example.com", "password": "a long password 1", "role": "agent", "name": "New Agent"})
        assert user.status_code == 201, user.text
        numbers = httpx.get(base + "/api/v1/accounts", headers=api).json()["data"]
        conversations = httpx.get(base + "/api/v1/conversations", headers=api).json()["data"]
        assert numbers and conversations

    with inbox_process("run", "--demo", data_dir=tmp_path) as (proc, base):
        again, kept = _printed_login(proc)
        assert again == password, "the printed login changed"
        assert "kept from the first start" in kept
        with httpx.Client(base_url=base, follow_redirects=True, cookies={"inbox_session": session_cookie}) as http:
            assert http.get("/inbox").url.path == "/inbox", "the session did not survive the restart"
        with httpx.Client(base_url=base, follow_redirects=True) as http:
            assert _sign_in(http, DEMO_ADMIN, password).url.path == "/inbox", "the printed login changed"
        with httpx.Client(base_url=base, follow_redirects=True) as http:
            assert _sign_in(http, "new.agent@example.com", "a long password 1").url.path == "/inbox"
        kept_numbers = httpx.get(base + "/api/v1/accounts", headers=api).json()["data"]
        assert [(n["id"], n["name"]) for n in kept_numbers] == [(n["id"], n["name"]) for n in numbers]
        again = httpx.get(base + "/api/v1/conversations", headers=api).json()["data"]
        assert [c["id"] for c in again] == [c["id"] for c in conversations]


def test_kill_9_of_run_leaves_no_orphan_and_the_queued_outbox_goes_out_after_restart(tmp_path):
    with inbox_process("run", "--demo", data_dir=tmp_path) as (proc, base):
        api = _demo_api_key(base, _printed_login(proc)[0])
        accepted = []
        with httpx.Client(base_url=base, headers=api) as http:
            for conversation in http.get("/api/v1/conversations", params={"limit": 50}).json()["data"]:
                # A slow number, so most of the sends are still queued when the process dies.
                assert http.patch(f"/api/v1/accounts/{conversation['account_id']}", json={"mps": 5}).status_code == 200
                first = http.post(f"/api/v1/conversations/{conversation['id']}/messages",
                                  json={"type": "text", "content": {"body": "queued before the crash 0"}})
                if first.status_code == 202:  # a conversation whose 24-hour window is open
                    break
            assert first.status_code == 202, first.text
            accepted.append(first.json()["id"])
            for i in range(1, 30):
                answer = http.post(f"/api/v1/conversations/{conversation['id']}/messages",
                                   json={"type": "text", "content": {"body": f"queued before the crash {i}"}})
                assert answer.status_code == 202, answer.text
                accepted.append(answer.json()["id"])
        pids = _server_pids(tmp_path)
        assert len(pids) == 2
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    # They stop cleanly on SIGTERM (their WiredTiger checkpoint): seconds, more under a loaded machine.
    _wait(lambda: not any(_alive(pid) for pid in pids), 40, "the embedded servers to stop with their parent")

    with inbox_process("run", "--demo", data_dir=tmp_path) as (proc, base):
        def states() -> dict[str, int]:
            found: dict[str, int] = {}
            for mid in accepted:
                state = httpx.get(base + f"/api/v1/messages/{mid}", headers=api).json()["status"]
                found[state] = found.get(state, 0) + 1
            return found

        gone_out = {"accepted", "sent", "delivered", "read"}
        try:
            _wait(lambda: set(states()) <= gone_out, 60, "every send answered 202 before the crash to go out")
        except AssertionError as error:
            failed = [httpx.get(base + f"/api/v1/messages/{mid}", headers=api).json() for mid in accepted]
            raise AssertionError(f"{error}: {states()} {[m['error'] for m in failed if m['error']]}") from None


def test_a_second_run_on_the_same_data_refuses_to_start(tmp_path):
    with inbox_process("run", data_dir=tmp_path):
        result = subprocess.run([INBOX, "run", "--port", str(free_port())], env=_env(tmp_path), capture_output=True,
                                text=True, timeout=60)
    assert result.returncode != 0
    assert "in use by another running process" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INBOX_")}
    env.update({"INBOX_DATA_DIR": str(data_dir), **extra})
    return env


@pytest.mark.parametrize("command", ["web", "worker"])
def test_unreachable_database_at_start_is_one_line_and_an_exit_code(command, tmp_path):
    env = _env(tmp_path, INBOX_MONGODB_URL="mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=500",
               INBOX_REDIS_URL="redis://127.0.0.1:9/0", INBOX_SECRET_KEY="x" * 40)
    result = subprocess.run([INBOX, command], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "MongoDB at mongodb://127.0.0.1:9" in lines[0] and "not reachable" in lines[0]


def test_unwritable_data_dir_and_taken_port_are_one_line_each(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = subprocess.run([INBOX, "run"], env=_env(blocker / "var"), capture_output=True, text=True, timeout=60)
    assert result.returncode == 3 and "Traceback" not in result.stderr
    assert "not writable" in result.stderr and len(result.stderr.strip().splitlines()) == 1

    with inbox_process("run", data_dir=tmp_path / "first") as (_, base):
        port = base.rsplit(":", 1)[1]
        result = subprocess.run([INBOX, "run", "--port", port], env=_env(tmp_path / "second"), capture_output=True,
                                text=True, timeout=60)
    assert result.returncode == 3 and "Traceback" not in result.stderr
    assert f"port {port} is already in use" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def _logged_login(log: Path) -> str:
    return _wait(lambda: (m := re.search(r"password: (\S+)", log.read_text(errors="replace"))) and m.group(1), 30,
                 "the demo login in the log")


def test_the_embedded_database_dying_is_reported_and_it_comes_back(tmp_path):
    log = tmp_path / "inbox.log"
    # The log goes to a file, read while the process runs: what an operator sees when it happens.
    with inbox_process("run", "--demo", data_dir=tmp_path / "data", log_path=log) as (proc, base):
        api = _demo_api_key(base, _logged_login(log))
        before = httpx.get(base + "/api/v1/conversations", headers=api).json()["data"]
        # Writes are acknowledged before the storage engine's log reaches the disk (w:1, j:false, as
        # mongod's default): a hard kill can lose the last fraction of a second. Let the API key be
        # flushed, as it would be seconds after a user made it.
        time.sleep(1.5)
        db_pid = int((tmp_path / "data" / "db" / "server.pid").read_text())
        # First it hangs (stopped): /health/ready says so once its check times out. A dead process alone
        # is restarted within the watcher's second, too fast for a poll to be sure to see it down.
        os.kill(db_pid, signal.SIGSTOP)
        ready = _wait(lambda: (r := httpx.get(base + "/health/ready", timeout=10)).status_code == 503 and r, 15,
                      "/health/ready to say the database is down")
        assert ready.json()["checks"]["mongodb"]["status"] == "failing"
        os.kill(db_pid, signal.SIGKILL)  # then it dies
        # `inbox run` starts it again on the same data: the API answers, with everything still there.
        _wait(lambda: httpx.get(base + "/health/ready", timeout=10).json()["checks"]["mongodb"]["status"] == "ok", 60,
              "the embedded database to be back")
        after = httpx.get(base + "/api/v1/conversations", headers=api, timeout=10)
        assert after.status_code == 200 and [c["id"] for c in after.json()["data"]] == [c["id"] for c in before]
        assert int((tmp_path / "data" / "db" / "server.pid").read_text()) != db_pid
        # The watcher logs "is back" once its own check answers, which may be just after /health/ready's.
        _wait(lambda: "embedded database is back" in log.read_text(errors="replace"), 30, "the log to say it is back")
        assert "embedded database stopped; starting it again" in log.read_text(errors="replace")
    assert "Traceback" not in log.read_text(errors="replace")  # Ctrl-C (SIGINT) is a clean stop
