"""Demo mode only: the "simulate customer" panel makes a sandbox customer write, send media, react or reply.

It calls the in-process SandboxState, which posts a signed webhook to the number's webhook URL:
the message then takes the real inbound path (webhook -> apply -> live push).
"""

from __future__ import annotations

from litestar import Controller, Request, Response, post
from litestar.di import NamedDependency

from app.auth import requires_login
from app.domains.inbox.context import error_fragment, html, me
from app.domains.inbox.service import InboxService
from app.errors import ClientError, NotFound, ValidationFailed
from app.runtime import Runtime


class SimulateController(Controller):
    path = "/inbox/simulate"
    guards = [requires_login]
    include_in_schema = False

    @post("/", status_code=200)
    async def simulate(self, request: Request, runtime: NamedDependency[Runtime]) -> Response[str]:
        sandbox = getattr(request.app.state, "sandbox", None)
        if sandbox is None or not getattr(request.app.state, "demo", False):
            raise NotFound("The customer simulator exists only in demo mode.", error_code="DEMO_ONLY")
        form = await request.form()
        try:
            await InboxService(runtime).simulate(sandbox, me(request).scope, str(form.get("customer") or ""),
                                                 str(form.get("kind") or "text"), str(form.get("text") or ""))
        except ClientError as error:
            return error_fragment(error)
        except Exception as exc:  # the sandbox answers Graph-style errors
            return error_fragment(ValidationFailed(str(exc)[:200], error_code="SANDBOX_ERROR"))
        return html("")
