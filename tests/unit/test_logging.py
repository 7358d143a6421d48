"""Log lines never carry secrets, tracebacks included (console and JSON renderers)."""

from __future__ import annotations

import logging

import pytest

from app.logging import get_logger
from tests.support.logs import product_logging, quiet_logging

TOKEN = "-".join(("EAAG", "access", "token", "in", "a", "local"))  # built, so no source line shows it
SECRET = "-".join(("app", "secret", "in", "a", "local"))


def _send_with(access_token: str) -> None:
    app_secret = SECRET  # noqa: F841 - what a traceback with locals would print
    raise ConnectionError("Graph API unreachable")


@pytest.mark.parametrize("json", [False, True])
def test_a_logged_traceback_shows_the_error_but_no_local_variables(json, capsys):
    product_logging("INFO", json=json)
    try:
        try:
            _send_with(TOKEN)
        except ConnectionError:
            get_logger("tests").exception("send failed", access_token="EAAG-given-as-a-field")
        output = capsys.readouterr().err
    finally:
        quiet_logging()
    assert "send failed" in output and "ConnectionError: Graph API unreachable" in output and "_send_with" in output
    assert TOKEN not in output and SECRET not in output
    assert "EAAG-given-as-a-field" not in output
