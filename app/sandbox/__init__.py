"""An offline, faithful simulator of Meta's WhatsApp Cloud API (graph.facebook.com).

Demo mode, tests and benchmarks run against it.  Mount it with ``SandboxPlugin`` (the
``/sandbox`` router plus webhook delivery hooks) or run it alone with
``create_sandbox_app()``; drive it over HTTP or in process through ``SandboxState``.
State lives in memory only.

Graph (``/sandbox/graph/{version}/``, version optional, bearer token required):
``POST {phone_number_id}/messages`` (sends and mark-as-read), ``POST {phone_number_id}/media``,
``GET|DELETE {media_id}``, ``GET|POST|DELETE {waba_id}/message_templates``, ``GET {template_id}``,
``GET {phone_number_id}?fields=``, ``GET|POST {phone_number_id}/whatsapp_business_profile``;
media download URLs live under ``/sandbox/lookaside/whatsapp_business/attachments/``.

Control (``/sandbox/control/``; the same names exist on ``SandboxState``):
``POST numbers`` (register / update, 201; ``groups_enabled``) · ``GET numbers`` · ``POST inbound``
(a customer writes: ``from`` and/or ``user_id``, ``username``, ``group_id``; answers
``{wamid, user_id, wa_id}``) · ``GET users`` · ``POST users/change_number`` · ``POST|GET groups``
· ``POST groups/{id}/participants`` · ``DELETE groups/{id}`` · ``GET|DELETE sent`` ·
``POST|DELETE faults`` · ``POST templates`` (seed, 201) · ``POST templates/{id}/status``
(``rejection_info``) · ``POST media/expire_urls`` · ``GET deliveries`` · ``POST reset``.

Shapes are Meta's 2026 ones: business-scoped user ids (``app.sandbox.users``), per-message
pricing (``app.sandbox.outcomes``), groups (``app.sandbox.groups``), sends by ``recipient``.
"""

from app.sandbox.plugin import SANDBOX_PATH, SandboxPlugin, create_sandbox_app, sandbox_router
from app.sandbox.state import SandboxState

__all__ = ["SANDBOX_PATH", "SandboxPlugin", "SandboxState", "create_sandbox_app", "sandbox_router"]
