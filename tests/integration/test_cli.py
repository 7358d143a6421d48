"""The `inbox` command as users run it: real subprocesses."""

from __future__ import annotations

import os
import re
import subprocess

import httpx
import pytest

from tests.support.process import INBOX, inbox_process

ADMIN_ENV = {
    "INBOX_ADMIN_EMAIL": "ops@example.com",
    "INBOX_ADMIN_PASSWORD": "deploy password",
    "INBOX_ADMIN_API_KEY": "wai_ci-bootstrap-key-000000000001",
}


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INBOX_")}
    env.update(extra)
    return env


@pytest.mark.parametrize("command", ["web", "worker"])
def test_production_processes_refuse_without_required_settings(command):
    result = subprocess.run([INBOX, command], env=_clean_env(INBOX_REDIS_URL="redis://127.0.0.1:1/0"),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "INBOX_MONGODB_URL" in result.stderr and "INBOX_SECRET_KEY" in result.stderr
    assert "INBOX_REDIS_URL" not in result.stderr.split("not set")[0]  # only the missing ones are named


def test_create_user_needs_a_database_url():
    result = subprocess.run([INBOX, "create-user", "--email", "a@b.co", "--password", "12345678", "--role", "agent"],
                            env=_clean_env(), capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "INBOX_MONGODB_URL" in result.stderr


def test_run_with_sandbox_bootstraps_admin_and_api_key(tmp_path):
    with inbox_process("run", "--sandbox", env=ADMIN_ENV, data_dir=tmp_path) as (_, base):
        with httpx.Client(base_url=base, follow_redirects=True) as http:
            login = http.get("/login")
            assert login.status_code == 200
            token = re.search(r'name="_csrf_token" value="([^"]+)"', login.text).group(1)
            signed_in = http.post("/login", data={"email": "ops@example.com", "password": "deploy password",
                                                  "_csrf_token": token})
            assert signed_in.status_code == 200 and str(signed_in.url).endswith("/inbox")
            me = http.get("/api/v1/me", headers={"Authorization": "Bearer wai_ci-bootstrap-key-000000000001"})
            assert me.status_code == 200 and me.json()["role"] == "admin"
            # the sandbox is mounted with --sandbox
            assert http.get("/sandbox/control/sent", params={"phone_number_id": "none"}).status_code in (200, 404)
    # the generated secret key is kept for the next start
    assert (tmp_path / "secret_key").read_text().strip()


def test_run_without_sandbox_does_not_mount_it(tmp_path):
    with inbox_process("run", data_dir=tmp_path) as (_, base):
        assert httpx.get(base + "/sandbox/control/sent").status_code == 404


def test_demo_prints_url_and_login(tmp_path):
    with inbox_process("run", "--demo", data_dir=tmp_path) as (proc, base):
        pass
    output = proc.stdout.read()
    match = re.search(r"admin: (\S+)\s+agent: (\S+)\s+password: (\S+)", output)
    assert match, output
    assert f"{base}/login" in output
