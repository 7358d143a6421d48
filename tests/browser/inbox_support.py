"""Helpers for the inbox browser tests: a demo server, signing in, a simulated customer, a TCP proxy to cut."""

from __future__ import annotations

import re
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.demo import DEMO_ADMIN, DEMO_AGENT, DEMO_NUMBERS
from tests.support.process import inbox_process
from tests.support.servers import free_port

SALES = DEMO_NUMBERS[0]["phone_number_id"]


class DemoServer:
    def __init__(self, base: str, password: str) -> None:
        self.base = base
        self.password = password

    def customer_writes(self, wa_id: str, name: str, message: dict) -> str:
        answer = httpx.post(self.base + "/sandbox/control/inbound", timeout=10, json={
            "phone_number_id": SALES, "from": wa_id, "name": name, "message": message})
        assert answer.status_code == 200, answer.text
        return answer.json()["wamid"]

    def faults(self, **faults) -> None:
        answer = httpx.post(self.base + "/sandbox/control/faults", json=faults, timeout=10)  # every number
        assert answer.status_code == 200, answer.text

    def clear_faults(self) -> None:
        httpx.delete(self.base + "/sandbox/control/faults", timeout=10)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[DemoServer]:
    """`inbox run --demo` in a subprocess (web + worker + sandbox), as `make run` starts it."""
    data_dir: Path = tmp_path_factory.mktemp("demo")
    with inbox_process("run", "--demo", data_dir=data_dir) as (proc, base):
        output, deadline = "", time.monotonic() + 20
        while "password:" not in output and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                output += proc.stdout.readline()
        password = re.search(r"password: (\S+)", output)
        assert password, output
        yield DemoServer(base, password.group(1))


def sign_in(page, base: str, password: str, email: str = DEMO_AGENT) -> None:
    page.goto(base + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base + "/inbox")


def watch_console(page) -> dict[str, list]:
    """CSP violations, page errors and dialogs (an XSS would open one)."""
    seen: dict[str, list] = {"errors": [], "dialogs": []}
    page.on("console", lambda m: seen["errors"].append(f"{m.text} @ {m.location}") if m.type == "error" else None)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))

    def on_dialog(dialog) -> None:
        seen["dialogs"].append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return seen


def csp_violations(seen: dict[str, list]) -> list[str]:
    return [e for e in seen["errors"] if "Content Security Policy" in e or "Refused to" in e]


def settled(page) -> None:
    """Wait until HTMX has finished its request and swap: new content gets its hx- behaviour only when it
    settles (20 ms after the swap), and Playwright can act faster than a person."""
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")


__all__ = ["DEMO_ADMIN", "DEMO_AGENT", "DemoServer", "TcpProxy", "csp_violations", "demo", "settled", "sign_in",
           "watch_console"]


class TcpProxy:
    """A loopback TCP proxy whose connections can be cut (a dropped network) and restored."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.restore()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Close the listener (new connections are refused) and reset every open connection."""
        if self._listener is not None:
            try:  # wakes the thread blocked in accept() (close() alone does not, on Linux)
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            for conn in self._conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                conn.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        sockets = [a, b]
        try:
            while True:
                ready, _, _ = select.select(sockets, [], [], 1.0)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for s in sockets:
                try:
                    s.close()
                except OSError:
                    pass

    def close(self) -> None:
        self.cut()


# Browser notifications recorded instead of shown (add_init_script): window.__shown lists them.
NOTIFICATION_RECORDER = """
window.__shown = [];
window.Notification = class {
  constructor(title, options) { window.__shown.push({title, body: (options || {}).body || ""}); }
  static requestPermission() { return Promise.resolve("granted"); }
};
window.Notification.permission = "granted";
"""
