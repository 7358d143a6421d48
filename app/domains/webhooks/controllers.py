"""``/webhooks/whatsapp/{account_key}``: Meta's verification (GET) and event delivery (POST). Public, no session."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from app.domains.webhooks.fastpath import answer_body, unknown_webhook_key
from app.domains.webhooks.services import MAX_BODY_BYTES, WebhookReceiver, body_too_large
from app.errors import PayloadTooLarge
from app.runtime import Runtime
from app.whatsapp.signature import HEADER


def _receiver(runtime: Runtime) -> WebhookReceiver:
    return runtime.webhooks


class WhatsAppWebhookController(Controller):
    path = "/webhooks/whatsapp"
    include_in_schema = False
    tags = ["webhooks"]

    @get("/{account_key:str}", media_type=MediaType.TEXT)
    async def verify(self, runtime: NamedDependency[Runtime], account_key: FromPath[str],
                     mode: Annotated[str | None, QueryParameter(name="hub.mode")] = None,
                     token: Annotated[str | None, QueryParameter(name="hub.verify_token")] = None,
                     challenge: Annotated[str | None, QueryParameter(name="hub.challenge")] = None) -> Response[str]:
        receiver = _receiver(runtime)
        endpoint = await receiver.endpoint(account_key)
        if endpoint is None:
            raise unknown_webhook_key()
        return Response(receiver.challenge(endpoint, mode, token, challenge), media_type=MediaType.TEXT)

    # Normally answered by fastpath.InboxApp before the router runs; the same steps
    # here keep the route complete in an app composed without it (and give POST a route to match).
    @post("/{account_key:str}", status_code=200, request_max_body_size=MAX_BODY_BYTES)
    async def receive(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        if body_too_large(request.headers.get("content-length")):
            raise PayloadTooLarge(f"Webhook bodies are at most {MAX_BODY_BYTES} bytes.")
        account_key = request.path_params["account_key"]
        receiver = _receiver(request.app.state.runtime)
        endpoint = await receiver.endpoint(account_key)
        if endpoint is None:
            raise unknown_webhook_key()
        body = await request.body()  # Litestar stops reading (413) past MAX_BODY_BYTES actually streamed
        receipt = await receiver.receive(account_key, endpoint, body, request.headers.get(HEADER))
        return Response(answer_body(receipt.duplicate), media_type=MediaType.JSON)
