"""An offline, faithful simulator of Meta's WhatsApp Cloud API (graph.facebook.com).

Demo mode, tests and benchmarks run against it.  Mount it with ``SandboxPlugin`` (the
``/sandbox`` router plus webhook delivery hooks) or run it alone with
``create_sandbox_app()``; drive it over ``/sandbox/control/...`` or in process through
``SandboxState`` (``register_number``, ``simulate_inbound``, ``list_sent``, ...).
State lives in memory only.
"""

from app.sandbox.plugin import SANDBOX_PATH, SandboxPlugin, create_sandbox_app, sandbox_router
from app.sandbox.state import SandboxState

__all__ = ["SANDBOX_PATH", "SandboxPlugin", "SandboxState", "create_sandbox_app", "sandbox_router"]
